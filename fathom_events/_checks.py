"""Input checks and value display that every layer shares, each written once.

A check takes the field's name and the caller's value, gives the value back
(as the type it promises) and raises :class:`~fathom_events.InvalidRequestError`
naming the field and the rule otherwise. :func:`as_validator` makes any of
them an ``attrs`` validator. :func:`shown` is how a value appears in any
message, the caller's input or an answer's JSON alike; :func:`one_line` is how
a text (an error's message, an answer's words) does. What is particular to
the API (names, ids, page sizes, currencies) stays in ``_protocol``.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import SplitResult

import attrs

from .exceptions import InvalidRequestError

__all__ = [
    "MESSAGE_CHARS",
    "SHOWN_CHARS",
    "as_validator",
    "check_callable_or_none",
    "check_flag",
    "check_fraction",
    "check_int_at_least",
    "check_non_negative",
    "check_seconds_or_none",
    "finite_number",
    "one_line",
    "shown",
]

#: How many characters of a value a message shows.
SHOWN_CHARS: Final = 60
#: How many characters of a text (an error's message, say) :func:`one_line` keeps by default.
MESSAGE_CHARS: Final = 500

# Containers are shown through a bounded repr: a list nested thousands deep, or
# millions long (an answer's JSON may be either), costs next to nothing to show.
_BOUNDED = reprlib.Repr()
_BOUNDED.maxlevel = 3
_BOUNDED.maxstring = SHOWN_CHARS
_BOUNDED.maxother = SHOWN_CHARS
_CONTAINERS = (list, tuple, dict, set, frozenset)


def shown(value: object, width: int = SHOWN_CHARS) -> str:
    """``value`` in a message: its repr, cut to ``width`` characters; it never raises.

    An int of thousands of digits (whose repr raises), or an object whose repr
    fails, is described instead of shown; a container is shown only a few
    items and levels deep.
    """
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    try:
        if isinstance(value, str):
            text = repr(value[: width + 1])  # a long string's repr is cut anyway
        elif isinstance(value, _CONTAINERS):
            text = _BOUNDED.repr(value)
        else:
            text = repr(value)
    except Exception:  # noqa: BLE001 - a caller's object: its repr may do anything
        return f"a {type(value).__name__} that cannot be shown"
    return text if len(text) <= width else text[:width] + "..."


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` as one printable line of at most ``limit`` characters (and an ellipsis).

    Runs of whitespace (newlines included) become one space; any other
    character that cannot be shown as it is (a control character, a lone
    surrogate) is written as its escape, so a message can always be printed,
    logged and encoded.
    """
    text = " ".join(text[: limit * 4].split())
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def finite_number(value: object) -> float | None:
    """``value`` as a finite float if it is an int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def check_int_at_least(field: str, value: object, least: int = 1) -> int:
    """An int (not a bool, not a float) of at least ``least``."""
    if type(value) is not int or value < least:
        raise InvalidRequestError(field, f"must be an int >= {least}, got {shown(value)}")
    return value


def check_flag(field: str, value: object) -> bool:
    """A yes-or-no setting: True or False, nothing that merely looks like one."""
    if type(value) is not bool:
        raise InvalidRequestError(field, f"must be True or False, got {shown(value)}")
    return value


def check_non_negative(field: str, value: object) -> float:
    """A finite number (int or float, not a bool) of at least 0."""
    number = finite_number(value)
    if number is None or number < 0:
        raise InvalidRequestError(field, f"must be a finite number >= 0, got {shown(value)}")
    return number


def check_seconds_or_none(field: str, value: object) -> float | None:
    """A finite number of seconds above 0, as a float, or None (no limit)."""
    if value is None:
        return None
    seconds = finite_number(value)
    if seconds is None or seconds <= 0:
        raise InvalidRequestError(
            field, f"must be a finite number of seconds > 0, or None; got {shown(value)}"
        )
    return seconds


def check_fraction(field: str, value: object) -> float:
    """A finite number from 0 to 1, both included."""
    number = finite_number(value)
    if number is None or not 0 <= number <= 1:
        raise InvalidRequestError(field, f"must be between 0 and 1, got {shown(value)}")
    return number


def check_callable_or_none(field: str, value: object) -> Callable[..., Any] | None:
    """Something to call, or None."""
    if value is not None and not callable(value):
        raise InvalidRequestError(field, f"must be a callable or None, got {shown(value)}")
    return value


def check_url_port(field: str, parts: SplitResult, seen: str) -> None:
    """Refuse a URL (split) whose port is out of range or not a number; ``seen`` shows it."""
    try:
        port = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidRequestError(field, f"must have a port from 1 to 65535 if any, got {seen}")


def as_validator(check: Callable[[str, Any], object]) -> Callable[[Any, Any, Any], None]:
    """``check`` as an ``attrs`` validator: the attribute's name is the field."""

    def validate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check(attribute.name, value)

    return validate
