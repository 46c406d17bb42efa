"""Reading a sync file takes work in proportion to its size, however many [site.ID] tables.

An export of thousands of sites is one ``[site.ID]`` table per site. Each test
here reads such a file of 20,000 tables and counts work instead of timing it:
the comparisons made between site ids, and the passes over the file's lines
that map a table back to its line. A step that looks each table up in a list
(or scans every line for each table) makes a number of them that grows with
the square of the tables, and fails at once past a linear budget.
"""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fathom_events._cli import _syncfile
from fathom_events._cli._syncfile import parse_sync_file

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

TABLES = 20_000
COMMON = ("Signed up", "Purchased", "Booked a demo")


def many_tables(count: int, *, all_sites: bool = False) -> str:
    """A sync file as export writes it: the sites, common events, then a table per site."""
    if all_sites:
        lines = ['sites = "all"', "exclude = [" + ", ".join(f'"X{i}"' for i in range(count)) + "]"]
    else:
        lines = ["sites = ["] + [f'  "S{i:06d}",' for i in range(count)] + ["]"]
    for name in COMMON:
        lines += ["", "[[events]]", f'name = "{name}"']
    for i in range(count):
        lines += ["", f"[site.S{i:06d}]", "events = [", f'  {{ name = "Own {i}" }},', "]"]
    return "\n".join(lines) + "\n"


@pytest.fixture(name="text", scope="module")
def _text() -> str:
    return many_tables(TABLES)


class CountedStr(str):
    """A string of the parsed document that counts each comparison with another string.

    Past ``budget`` comparisons in all it fails at once, so a quadratic step
    ends the test in a moment instead of running for minutes.
    """

    __slots__ = ()
    made: ClassVar[int] = 0
    budget: ClassVar[int] = 0

    def _count(self) -> None:
        CountedStr.made += 1
        if CountedStr.made > CountedStr.budget:
            raise AssertionError(f"more than {CountedStr.budget:,} comparisons of strings")

    def __eq__(self, other: object) -> bool:
        self._count()
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._count()
        return str.__ne__(self, other)

    __hash__ = str.__hash__


def counted(value: Any) -> Any:
    """``value`` (a parsed TOML document) with every string a fresh :class:`CountedStr`."""
    if isinstance(value, str):
        return CountedStr(value)
    if isinstance(value, list):
        return [counted(item) for item in value]
    if isinstance(value, dict):
        return {counted(key): counted(item) for key, item in value.items()}
    return value


@pytest.fixture(name="count_comparisons")
def _count_comparisons(monkeypatch: pytest.MonkeyPatch) -> type[CountedStr]:
    """The sync file reader reads documents of CountedStr; the count starts at 0."""
    reader = types.SimpleNamespace(
        loads=lambda text: counted(tomllib.loads(text)), TOMLDecodeError=tomllib.TOMLDecodeError
    )
    monkeypatch.setattr(_syncfile, "tomllib", reader)
    monkeypatch.setattr(CountedStr, "made", 0)
    monkeypatch.setattr(CountedStr, "budget", 30 * TABLES)
    return CountedStr


def test_many_site_tables_are_read_with_comparisons_in_proportion(
    text: str, count_comparisons: type[CountedStr]
) -> None:
    """20,000 [site.ID] tables are read with a bounded number of comparisons per table."""
    read = parse_sync_file(text, "big.toml")
    assert len(read.sites) == len(read.extras) == TABLES
    assert [spec.name for spec in read.extras["S019999"]] == ["Own 19999"]
    first_table = 2 + TABLES + 3 * len(COMMON) + 2
    assert read.lines["S000000"] == first_table
    assert read.lines["S019999"] == first_table + 5 * (TABLES - 1)
    assert 0 < count_comparisons.made <= count_comparisons.budget


def test_many_site_tables_beside_many_exclusions_are_read_in_proportion(
    count_comparisons: type[CountedStr],
) -> None:
    """A `sites = "all"` file's tables are checked against 20,000 exclusions without a scan."""
    read = parse_sync_file(many_tables(TABLES, all_sites=True), "big.toml")
    assert read.all_sites
    assert len(read.exclude) == len(read.extras) == TABLES
    assert 0 < count_comparisons.made <= count_comparisons.budget


class CountedScans(list[tuple[int, tuple[str | int, ...], bool]]):
    """The locator's entries, counting each pass over them."""

    scans = 0

    def __iter__(self) -> Any:
        self.scans += 1
        if self.scans > 1:
            raise AssertionError("the locator's lines were scanned again")
        return super().__iter__()


def test_the_locator_is_not_scanned_once_per_table(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding the line of each of 20,000 [site.ID] tables does not pass over every line."""
    made: list[CountedScans] = []
    build = _syncfile._Locator.__init__

    def counting(locator: _syncfile._Locator, text: str) -> None:
        build(locator, text)
        locator._entries = CountedScans(locator._entries)
        made.append(locator._entries)

    monkeypatch.setattr(_syncfile._Locator, "__init__", counting)
    read = parse_sync_file(text, "big.toml")
    assert len(read.lines) == TABLES
    assert [entries.scans for entries in made] == [0]


def nearest_by_scan(locator: _syncfile._Locator, path: tuple[str | int, ...]) -> int | None:
    """The reference: the first line whose key path shares the longest prefix with ``path``."""
    best_line, best_common = None, 0
    for number, entry, _ in locator._entries:
        common = 0
        for left, right in zip(entry, path, strict=False):
            if left != right:
                break
            common += 1
        if common > best_common:
            best_line, best_common = number, common
    return best_line


LOCATED = (
    'sites = ["A", "a b"]\n'
    "[[events]]\n"
    'name = "x"\n'
    "[[events]]\n"
    'name = "y"\n'
    'currency = "euro"\n'
    "[site.A]\n"
    "events = [{ name = 'q' }]\n"
    '[site."a b"]\n'
    "no_events = true\n"
    "[[site.A.more]]\n"
    "x.y.z = 1\n"
    "[site.A.deep]\n"
    "events = []\n"
)
PARTS = st.sampled_from(["sites", "events", "site", "A", "a b", "name", "currency", "more",
                         "x", "y", "z", "deep", "no_events", "B", 0, 1, 2])  # fmt: skip


@given(path=st.lists(PARTS, max_size=5).map(tuple))
def test_the_line_of_a_key_path_is_the_one_a_full_scan_finds(path: tuple[str | int, ...]) -> None:
    """For any key path, the locator names the line a pass over every line would."""
    locator = _syncfile._Locator(LOCATED)
    assert locator.line(path) == nearest_by_scan(locator, path)
