"""The library's private cattrs converter and JSON codec.

Never the global converter: a user's own cattrs hooks must not change how we
read Fathom's answers, and ours must not leak into theirs.

:func:`configure_converter` registers, on the converter it is given:

* ``str`` and ``bool``: strict structure hooks. cattrs would turn ``null``
  into ``"None"`` and ``"false"`` into ``True``; an answer of the wrong shape
  must fail instead.
* ``datetime``: parses ``"YYYY-MM-DD HH:MM:SS"`` (the current reference) and
  ISO 8601 with ``Z`` or an offset (the older reference); a naive value is UTC,
  an aware one is converted to UTC.
* ``Currency | str | None``: a known value becomes the enum member, an unknown
  string is kept as it is, ``null`` is ``None``.
* ``list[Event]``: requires a JSON array.
* :class:`~fathom_events.types.Event`, ``EventPage``, ``DeletedEvent``:
  generated dict hooks without detailed validation (faster; we wrap the first
  error ourselves) that ignore unknown keys.
* The private request bodies: unstructured with fields left at ``None``
  omitted, so an update sends only what the caller gave.

The JSON codec is orjson when it is installed (the ``speedups`` extra) and the
standard library otherwise; both give the same values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .types import Currency, DeletedEvent, Event, EventPage

try:  # pragma: no cover - which branch runs depends on the installed extras
    import orjson

    json_loads: Callable[[bytes | str], Any] = orjson.loads

    def json_dumps(value: Any) -> bytes:
        return cast("bytes", orjson.dumps(value))

except ImportError:  # pragma: no cover
    json_loads = json.loads

    def json_dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


__all__ = ["CreateEventBody", "UpdateEventBody", "configure_converter", "converter", "json_loads"]


@attrs.frozen
class CreateEventBody:
    """The JSON body of a create: a name, and a currency only when given."""

    name: str
    currency: Currency | None = None


@attrs.frozen
class UpdateEventBody:
    """The JSON body of an update: only the fields the caller gave."""

    name: str | None = None
    currency: Currency | None = None


_CURRENCY_FIELD = Currency | str | None
_UTC = timezone.utc


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.60}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected true or false, got {type(value).__name__} {value!r:.60}")


def parse_timestamp(value: object, _: object = None) -> datetime:
    """Read ``created_at`` in either documented form, always as aware UTC."""
    if type(value) is not str:
        raise TypeError(f"expected a timestamp string, got {type(value).__name__} {value!r:.60}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r:.60}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC)


_CURRENCIES = {member.value: member for member in Currency}


def _structure_currency(value: object, _: object) -> Currency | str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"expected a currency string or null, got {value!r:.60}")
    return _CURRENCIES.get(value, value)


def configure_converter(target: cattrs.Converter) -> None:
    """Register every hook listed in this module's docstring on ``target``."""
    target.register_structure_hook(str, _structure_str)
    target.register_structure_hook(bool, _structure_bool)
    target.register_structure_hook(datetime, parse_timestamp)
    target.register_structure_hook_func(lambda t: t == _CURRENCY_FIELD, _structure_currency)
    for cls in (Event, DeletedEvent):
        attrs.resolve_types(cls)
        target.register_structure_hook(cls, make_dict_structure_fn(cls, target))
    structure_event = target.get_structure_hook(Event)

    def structure_event_list(value: object, _: object) -> list[Event]:
        if type(value) is not list:
            raise TypeError(f"expected a list of events, got {type(value).__name__}")
        return [structure_event(item, Event) for item in value]

    target.register_structure_hook_func(lambda t: t == list[Event], structure_event_list)
    attrs.resolve_types(EventPage)
    target.register_structure_hook(EventPage, make_dict_structure_fn(EventPage, target))
    for body in (CreateEventBody, UpdateEventBody):
        attrs.resolve_types(body)
        target.register_unstructure_hook(
            body,
            make_dict_unstructure_fn(
                body,
                target,
                _cattrs_omit_if_default=True,
                currency=override(unstruct_hook=lambda c: None if c is None else c.value),
            ),
        )


converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
configure_converter(converter)
