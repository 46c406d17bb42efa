"""The shared input checks and value display (``_checks``): each rule written once, and right."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

import fathom_events
from fathom_events import InvalidRequestError
from fathom_events._bulk import check_concurrency
from fathom_events._bulk_types import check_max_events_per_site
from fathom_events._checks import (
    MESSAGE_CHARS,
    SHOWN_CHARS,
    as_validator,
    check_callable_or_none,
    check_flag,
    check_fraction,
    check_int_at_least,
    check_non_negative,
    check_seconds_or_none,
    finite_number,
    one_line,
    shown,
)
from tests.support.helpers import TOKEN

PACKAGE_DIR = Path(fathom_events.__file__).parent

#: The generic rules and helpers, each of which must be written in ``_checks.py`` only. The
#: fake Fathom (``testing/``) is left out on purpose: it is written from the API's
#: reference, not from the client's code, so that it can catch the client's mistakes.
WRITTEN_ONCE = [
    "must be an int >=",
    "must be True or False",
    "must be a finite number >=",
    "must be a finite number of seconds",
    "must be between 0 and 1",
    "must be a callable or None",
    "must be callable",
    "def shown(",
    "def _shown(",
    "def describe(",
    "def finite_number(",
    "def one_line(",
    "def check_flag(",
    "def _strict_bool(",
    "is not int or",
]


def package_sources() -> dict[str, str]:
    """The package's source, file by file, the fake Fathom aside."""
    return {
        str(path.relative_to(PACKAGE_DIR)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if path.relative_to(PACKAGE_DIR).parts[0] != "testing"
    }


@pytest.mark.parametrize("text", WRITTEN_ONCE)
def test_each_generic_check_is_written_in_one_place(text: str) -> None:
    """A generic rule or helper appears at most once in the package, and only in _checks."""
    places = [
        f"{name}:{number}"
        for name, source in package_sources().items()
        for number, line in enumerate(source.splitlines(), 1)
        if text in line
    ]
    assert len(places) <= 1, places
    assert all(place.startswith("_checks.py:") for place in places), places


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: fathom_events.RateLimit(0), "requests"),
        (lambda: fathom_events.AsyncClient(TOKEN, max_in_flight=0), "max_in_flight"),
        (lambda: fathom_events.Client(TOKEN, max_response_bytes=0), "max_response_bytes"),
        (lambda: check_concurrency(0, 8), "concurrency"),
        (lambda: check_max_events_per_site(0), "max_events_per_site"),
    ],
)
def test_every_int_from_one_setting_says_so_alike(make: Callable[[], object], field: str) -> None:
    """The settings that take an int >= 1 all refuse 0 with the one shared rule."""
    with pytest.raises(InvalidRequestError) as info:
        make()
    assert info.value.field == field
    assert info.value.rule == "must be an int >= 1, got 0"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eur", "'eur'"),
        (5, "5"),
        (None, "None"),
        (True, "True"),
        ([1, 2], "[1, 2]"),
        ("x" * 100, "'" + "x" * (SHOWN_CHARS - 1) + "..."),
        (10**5000, "an int of 16610 bits"),
    ],
    ids=["str", "int", "None", "bool", "list", "long str", "huge int"],
)
def test_shown_is_the_repr_cut_short(value: object, expected: str) -> None:
    """A value is shown as its repr, cut to SHOWN_CHARS; a huge int by its size in bits."""
    assert shown(value) == expected


def test_shown_never_raises_nor_follows_a_deep_or_long_container() -> None:
    """A failing repr is named by type; a deep or long container is shown a few levels/items."""

    class Unshowable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert shown(Unshowable()) == "a Unshowable that cannot be shown"
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert len(shown(deep)) <= SHOWN_CHARS + 3
    assert shown(list(range(1_000_000))).startswith("[0, 1, 2")
    assert shown([10**5000]) == "a list that cannot be shown"


def test_shown_takes_a_width() -> None:
    """``width`` sets how much of the repr is kept before the ellipsis."""
    assert shown("abcdef", width=3) == "'ab..."


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (2.5, 2.5), (True, None), ("1", None), (math.inf, None), (10**400, None)],
)
def test_finite_number(value: object, expected: float | None) -> None:
    """Only an int or a float (never a bool) that is finite as a float is a number."""
    assert finite_number(value) == expected


def refused(check: Any, *args: object) -> str:
    """The rule ``check`` states when it refuses ``args``, naming the field ``f``."""
    with pytest.raises(InvalidRequestError) as info:
        check("f", *args)
    assert info.value.field == "f"
    return info.value.rule


def test_int_at_least() -> None:
    """An int of at least the bound (1 by default) passes; a bool, float or smaller int does not."""
    assert check_int_at_least("f", 1) == 1
    assert check_int_at_least("f", 0, 0) == 0
    assert refused(check_int_at_least, 0) == "must be an int >= 1, got 0"
    assert refused(check_int_at_least, -1, 0) == "must be an int >= 0, got -1"
    assert refused(check_int_at_least, True) == "must be an int >= 1, got True"
    assert refused(check_int_at_least, 2.0) == "must be an int >= 1, got 2.0"


def test_flag() -> None:
    """Only True or False is a flag; 1, 'yes' and None are refused."""
    assert check_flag("f", True) is True
    assert check_flag("f", False) is False
    for value in (1, "yes", None):
        assert refused(check_flag, value) == f"must be True or False, got {value!r}"


def test_non_negative_and_fraction() -> None:
    """A non-negative number is finite and >= 0; a fraction is from 0 to 1, both ends kept."""
    assert check_non_negative("f", 0) == 0.0
    assert refused(check_non_negative, -0.5) == "must be a finite number >= 0, got -0.5"
    assert refused(check_non_negative, math.nan) == "must be a finite number >= 0, got nan"
    assert check_fraction("f", 0) == 0.0
    assert check_fraction("f", 1) == 1.0
    assert refused(check_fraction, 1.5) == "must be between 0 and 1, got 1.5"


def test_seconds_or_none() -> None:
    """Seconds are a finite number above 0, as a float, or None for no limit."""
    assert check_seconds_or_none("f", None) is None
    assert check_seconds_or_none("f", 2) == 2.0
    assert isinstance(check_seconds_or_none("f", 2), float)
    for value in (0, -1, math.inf, "1", False):
        assert refused(check_seconds_or_none, value) == (
            f"must be a finite number of seconds > 0, or None; got {value!r}"
        )


def test_callable_or_none() -> None:
    """A callable or None passes as it is; anything else is refused."""
    assert check_callable_or_none("f", None) is None
    assert check_callable_or_none("f", print) is print
    assert refused(check_callable_or_none, 3) == "must be a callable or None, got 3"


def test_as_validator_names_the_attribute() -> None:
    """A check made an attrs validator names the attribute as the field."""

    @attrs.frozen
    class Settings:
        count: int = attrs.field(validator=as_validator(check_int_at_least))

    assert Settings(2).count == 2
    with pytest.raises(InvalidRequestError, match=re.escape("must be an int >= 1, got 0")) as info:
        Settings(0)
    assert info.value.field == "count"


def test_one_line_makes_any_text_one_printable_line() -> None:
    """Whitespace runs become one space, unprintables their escapes, and long text is cut."""
    assert one_line("a\n\n b\tc") == "a b c"
    assert one_line("bell\x07 and \ud800") == "bell\\x07 and \\ud800"
    assert one_line("x" * 10, 4) == "xxxx..."
    assert len(one_line("y" * 10_000)) == MESSAGE_CHARS + 3
