"""The sync file: which events which sites should have, in TOML.

::

    sites = ["CDBUGS", "WXYZ"]     # the sites to sync (required), or "all"

    [[events]]                     # an event every site should have
    name = "Signed up"

    [[events]]
    name = "Purchased"
    currency = "euro"              # optional: the currency it is created with

    [site.CDBUGS]                  # extra events for one site listed in `sites`
    events = [{ name = "Booked a demo" }]

A file without ``[[events]]`` must give every site events of its own, or say
``no_events = true`` in its ``[site.ID]`` table: the one way to give a site
none, written by ``export`` for a site that has none (with ``--prune``, every
event such a site gets is deleted, as the file says).

``sites = "all"`` syncs every site the token can list (found with
``client.sites.ids()`` when the sync runs), less an optional
``exclude = ["ID", ...]``; it needs ``[[events]]``, as every site it finds must
get some. A ``[site.ID]`` table is then checked against the account once its
sites are known: naming a site the account does not have is an error
(:meth:`SyncFile.sites_to_sync`), like naming one missing from a ``sites`` list.

Everything is checked before anything is sent, and a problem is reported as
``FILE:LINE: what is wrong``. tomllib does not say where a value came from,
so a small line scanner maps a key path back to the line that wrote it.

A hostile file is an input error like any other: one larger than
:data:`MAX_FILE_BYTES` is not read whole, and nesting deeper than
:data:`MAX_NESTING` (arrays, inline tables, dotted keys; a sync file needs a
handful) is refused at its line before tomllib, which recurses on nesting and
takes quadratic time over long dotted keys, ever sees it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import NoReturn

import attrs

from fathom_events import EventSpec, InvalidRequestError
from fathom_events._bulk_types import NameClaims
from fathom_events._checks import shown

from ._text import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "ALL_SITES",
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "SyncFile",
    "SyncFileError",
    "parse_sync_file",
    "read_sync_file",
]

KeyPath = tuple[str | int, ...]

#: A sync file names sites and events: 16 MiB is room for a million sites.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Arrays, inline tables and dotted-key parts open at once; a sync file needs about 6.
MAX_NESTING = 32

_BARE = r"[A-Za-z0-9_-]+"
_KEY_PART = rf"(?:{_BARE}|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY_PART)
_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
_EVENT_KEYS = ("name", "currency", "renamed_from")
# What the nesting scan must tell apart: strings and comments (whose brackets and dots
# are text; an unclosed one ends at its line's end) and the characters that nest.
_NESTING_TOKENS = re.compile(
    r'"""(?:[^\\]|\\.)*?"""'  # a multi-line basic string
    r"|'{3}.*?'{3}"  # a multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"?'  # a basic string
    r"|'[^'\n]*'?"  # a literal string
    r"|#[^\n]*"  # a comment
    r"|[\[\]{}=,.\n]",
    re.DOTALL,
)
_DIGITS = re.compile(r"[0-9A-Fa-f_]+")


class SyncFileError(UsageError):
    """A sync file that cannot be used: where (``line`` may be None) and what is wrong."""

    def __init__(self, filename: str, line: int | None, problem: str) -> None:
        self.filename = filename
        self.line = line
        self.problem = problem
        super().__init__(f"{filename}:{line}: {problem}" if line else f"{filename}: {problem}")


ALL_SITES = "all"


@attrs.frozen
class SyncFile:
    """A checked sync file: the sites, the events all of them get, and per-site extras.

    ``all_sites``: the file says ``sites = "all"`` (``sites`` is then empty and
    ``exclude`` holds the ids to leave out); the sites are found when the sync
    runs and given to :meth:`sites_to_sync`. ``lines`` holds the line of each
    ``[site.ID]`` table, for the errors that can only be found then.
    """

    sites: tuple[str, ...]
    events: tuple[EventSpec, ...]
    extras: Mapping[str, tuple[EventSpec, ...]]
    all_sites: bool = False
    exclude: tuple[str, ...] = ()
    filename: str = "<sync file>"
    lines: Mapping[str, int | None] = attrs.field(factory=dict, eq=False)

    def sites_to_sync(self, account: Sequence[str]) -> tuple[str, ...]:
        """Every site of ``account`` (the token's sites, oldest first) less the excluded ones.

        Raises :class:`SyncFileError` at the line of a ``[site.ID]`` table
        whose site is not in ``account``: a typo, or a site since removed,
        is said before anything is planned rather than skipped in silence.
        """
        known = dict.fromkeys(account)
        for site_id in self.extras:
            if site_id not in known:
                raise SyncFileError(
                    self.filename,
                    self.lines.get(site_id),
                    f"[{_table_name(site_id)}]: the account has no site {site_id!r}"
                    ' (sites = "all" found only the sites the token can list)',
                )
        excluded = set(self.exclude)
        return tuple(site for site in known if site not in excluded)

    def for_every_site(self) -> SyncFile:
        """The file as if it said ``sites = "all"`` (``sync --all-sites``); needs ``[[events]]``."""
        if self.all_sites:
            return self
        if not self.events:
            raise SyncFileError(
                self.filename,
                None,
                "--all-sites needs [[events]] in the file: every site it finds must get some",
            )
        return attrs.evolve(self, sites=(), all_sites=True)

    def desired(self, sites: Sequence[str] | None = None) -> dict[str, list[EventSpec]]:
        """What ``events.plan()`` takes: every site's events, common ones first.

        ``sites``: the sites to sync when the file says ``sites = "all"`` (from
        :meth:`sites_to_sync`); otherwise the file's own ``sites``.
        """
        chosen = self.sites if sites is None else sites
        return {site: [*self.events, *self.extras.get(site, ())] for site in chosen}


def read_sync_file(path: str) -> SyncFile:
    """Read and check the sync file at ``path``; raise :class:`SyncFileError`."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SyncFileError(path, None, f"cannot read it: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SyncFileError(
            path, None, f"is larger than {MAX_FILE_BYTES:,} bytes, too large for a sync file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SyncFileError(path, line, "is not UTF-8 text") from None
    return parse_sync_file(text, path)


def parse_sync_file(text: str, filename: str = "<sync file>") -> SyncFile:
    """Check the text of a sync file; raise :class:`SyncFileError` naming the line."""
    too_deep = _nesting_beyond(text, MAX_NESTING)
    if too_deep is not None:
        raise SyncFileError(filename, too_deep, _TOO_DEEP)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, problem = _decode_error(error, text)
        raise SyncFileError(filename, line, problem) from None
    except RecursionError:
        raise SyncFileError(filename, None, _TOO_DEEP) from None
    except ValueError:
        # tomllib lets int()'s limit on digits through (a ValueError of its own)
        longest = max(_DIGITS.finditer(text), key=lambda found: len(found[0]), default=None)
        where = None if longest is None else text.count("\n", 0, longest.start()) + 1
        raise SyncFileError(filename, where, "not valid TOML: a number too long to read") from None
    return _Checker(document, _Locator(text), filename).check()


_TOO_DEEP = (
    f"nested too deeply: more than {MAX_NESTING} arrays, inline tables or dotted key parts"
    " inside each other (a sync file needs a handful)"
)


def _nesting_beyond(text: str, limit: int) -> int | None:
    """The first line where brackets, braces and key dots open more than ``limit`` deep.

    A rough count (a float's dot counts too) that never looks inside strings
    or comments; a sync file is far below any limit it could trip.
    """
    line, depth, dots = 1, 0, 0
    for found in _NESTING_TOKENS.finditer(text):
        piece = found[0]
        if piece == ".":
            dots += 1
        elif piece in ("[", "{"):
            depth, dots = depth + 1, 0
        elif piece in ("]", "}"):
            depth, dots = max(0, depth - 1), 0
        else:
            if piece in ("=", ",", "\n"):
                dots = 0
            line += piece.count("\n")
            continue
        if depth + dots > limit:
            return line
    return None


def _last_line_with_content(text: str) -> int:
    """The number of the last line that is not blank (1 for a blank file)."""
    lines = text.splitlines()
    return next((n for n in range(len(lines), 0, -1) if lines[n - 1].strip()), 1)


def _decode_error(error: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    """The line and message of a TOML syntax error (older tomllibs only say it in the text).

    An error at the end of the document is put on the last line with content,
    where the unfinished thing is: parsers differ on where the end is (tomli
    counts the line after a final newline; tomllib gives no line at all).
    """
    message = str(error)
    found = _POSITION.search(message)
    line: int | None = getattr(error, "lineno", None)
    column: int | None = getattr(error, "colno", None)
    if found is not None:
        message = message[: found.start()]
        if found[1] is None:  # at end of document
            line, column = _last_line_with_content(text), None
        else:
            line, column = line or int(found[1]), column or int(found[2])
    line = line or _last_line_with_content(text)
    where = f" (column {column})" if column else ""
    return line, f"not valid TOML: {message[:1].lower()}{message[1:]}{where}"


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in _PART.finditer(dotted):
        part = match.group()
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


class _Locator:
    """Maps key paths (``("events", 2, "name")``) to the line of the text that wrote them."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._entries: list[tuple[int, KeyPath, bool]] = []  # line, path, is a [table] header
        table: KeyPath = ()
        tables_seen: dict[KeyPath, int] = {}
        for number, line in enumerate(self._lines, 1):
            if header := _HEADER.match(line):
                path: KeyPath = _key_parts(header[2])
                if header[1] == "[[":
                    index = tables_seen.get(path, 0)
                    tables_seen[path] = index + 1
                    path = (*path, index)
                table = path
                self._entries.append((number, table, True))
            elif key := _KEY.match(line):
                self._entries.append((number, (*table, *_key_parts(key[1])), False))
        # Each key path's every prefix, and the first line that wrote a path under it: a
        # path's line is then a few lookups, not a pass over the file per table.
        self._first: dict[KeyPath, int] = {}
        for number, path, _ in self._entries:
            for length in range(1, len(path) + 1):
                self._first.setdefault(path[:length], number)

    def line(self, path: KeyPath, needle: str | None = None, nth: int = 1) -> int | None:
        """The line that wrote ``path``, or failing that the line of its nearest parent.

        From a parent's line, ``needle`` (a regex) finds the value inside an
        inline array or table; ``nth`` counts its matches when the parent is
        the array that holds the wanted item and earlier items match too.
        """
        best_line, best_common = None, 0
        for length in range(len(path), 0, -1):  # the longest prefix any line wrote
            if (found := self._first.get(path[:length])) is not None:
                best_line, best_common = found, length
                break
        if best_line is None or best_common == len(path) or needle is None:
            return best_line
        indexes = [i for i, part in enumerate(path) if isinstance(part, int)]
        wanted = nth if indexes and best_common <= indexes[-1] else 1
        end = next(
            (n for n, _, header in self._entries if header and n > best_line), len(self._lines) + 1
        )
        pattern = re.compile(needle)
        seen = 0
        for number in range(best_line, end):
            seen += len(pattern.findall(self._lines[number - 1]))
            if seen >= wanted:
                return number
        return best_line


def _value_needle(value: object) -> str | None:
    if isinstance(value, str):
        escaped = re.escape(value)
        return rf"\"{escaped}\"|'{escaped}'"
    if isinstance(value, (bool, int, float)):
        try:
            text = repr(value).lower()
        except ValueError:  # an int of thousands of digits: no needle to look for
            return None
        return rf"(?<![\w.]){re.escape(text)}(?![\w.])"
    return None


def _key_needle(key: str) -> str:
    return rf"(?:^|[\s{{,])[\"']?{re.escape(key)}[\"']?\s*="


def _count_equal(items: Sequence[object], field: str, value: object) -> int:
    """How many of ``items`` are tables whose ``field`` is ``value``."""
    return sum(isinstance(item, dict) and item.get(field) == value for item in items)


def _table_name(site_id: str) -> str:
    return f"site.{site_id}" if re.fullmatch(_BARE, site_id) else f"site.{json.dumps(site_id)}"


class _Checker:
    """Checks a parsed document against the sync file's rules, failing at the first problem."""

    def __init__(self, document: dict[str, object], locator: _Locator, filename: str) -> None:
        self._document = document
        self._locator = locator
        self._filename = filename

    def _fail(
        self, path: KeyPath, problem: str, needle: str | None = None, nth: int = 1
    ) -> NoReturn:
        raise SyncFileError(self._filename, self._locator.line(path, needle, nth), problem)

    def check(self) -> SyncFile:
        for key in self._document:
            if key not in ("sites", "exclude", "events", "site"):
                self._fail(
                    (key,),
                    f"unknown key {key!r}: a sync file has `sites`, `exclude`, `events` and"
                    " [site.ID] tables",
                )
        all_sites = self._document.get("sites") == ALL_SITES
        sites = () if all_sites else self._sites()
        exclude = self._exclude(all_sites=all_sites)
        common = NameClaims()
        events = self._events(("events",), self._document.get("events", []), "`events`", common)
        extras, none = self._extras(None if all_sites else sites, common, exclude)
        if all_sites and not events:
            self._fail(
                ("sites",),
                'sites = "all" needs [[events]]: every site it finds must get some'
                " (with --prune every event of a site that gets none would be deleted)",
            )
        if not events and not any(extras.values()) and not none:
            self._fail((), "names no events: add [[events]] tables (or events to a [site.ID])")
        if events and none:
            site_id = next(iter(none))
            self._fail(
                ("site", site_id, "no_events"),
                f"[{_table_name(site_id)}]: `no_events = true`, but [[events]] gives every site"
                " events",
            )
        if not events:
            for index, site_id in enumerate(sites):
                if not extras.get(site_id) and site_id not in none:
                    # Refused with or without --prune: a sync file is read the
                    # same way whatever the command line says.
                    self._fail(
                        ("sites", index),
                        f"site {site_id!r} gets no events (no [[events]] and no events in"
                        f" [{_table_name(site_id)}]); with --prune every event of it would be"
                        f" deleted (if it should have none, say `no_events = true` in"
                        f" [{_table_name(site_id)}])",
                        _value_needle(site_id),
                    )
        lines = {site_id: self._locator.line(("site", site_id)) for site_id in extras}
        return SyncFile(
            sites,
            events,
            extras,
            all_sites=all_sites,
            exclude=exclude,
            filename=self._filename,
            lines=lines,
        )

    def _sites(self) -> tuple[str, ...]:
        if "sites" not in self._document:
            self._fail(
                (),
                'has no `sites`: name the sites to sync, e.g. sites = ["CDBUGS"], or say'
                ' sites = "all"',
            )
        value = self._document["sites"]
        if not isinstance(value, list) or not value:
            self._fail(("sites",), '`sites` must be a non-empty list of site ids, or "all"')
        return self._ids("sites", value, "`sites`", "is listed twice")

    def _ids(self, key: str, value: list[object], label: str, twice: str) -> tuple[str, ...]:
        """The site ids of the list at ``key``: each a non-empty string, none twice."""
        seen: dict[str, None] = {}  # a dict: ordered, and a million sites are checked at once
        for index, site_id in enumerate(value):
            if not isinstance(site_id, str) or not site_id:
                self._fail(
                    (key, index),
                    f"{label} entry {index + 1} must be a non-empty string, got {shown(site_id)}",
                    _value_needle(site_id),
                )
            if site_id in seen:
                self._fail(
                    (key, index),
                    f"site {site_id!r} {twice}",
                    _value_needle(site_id),
                    nth=2,
                )
            seen[site_id] = None
        return tuple(seen)

    def _exclude(self, *, all_sites: bool) -> tuple[str, ...]:
        if "exclude" not in self._document:
            return ()
        if not all_sites:
            self._fail(
                ("exclude",),
                '`exclude` goes with sites = "all" only: leave the sites out of `sites` instead',
            )
        value = self._document["exclude"]
        if not isinstance(value, list):
            self._fail(("exclude",), '`exclude` must be a list of site ids, e.g. ["CDBUGS"]')
        return self._ids("exclude", value, "`exclude`", "is excluded twice")

    def _events(
        self, path: KeyPath, value: object, label: str, claims: NameClaims
    ) -> tuple[EventSpec, ...]:
        """Check a list of event tables; ``claims`` holds the names (and old names) used."""
        if not isinstance(value, list):
            self._fail(path, f'{label} must be a list of tables like {{ name = "Signed up" }}')
        specs: list[EventSpec] = []
        for index, item in enumerate(value):
            where = (*path, index)
            entry = f"{label} entry {index + 1}"
            if not isinstance(item, dict):
                self._fail(where, f'{entry} must be a table like {{ name = "Signed up" }}')
            for key in item:
                if key not in _EVENT_KEYS:
                    self._fail(
                        (*where, key),
                        f"{entry}: unknown key {key!r} (an event has `name`, `currency` and"
                        " `renamed_from`)",
                        _key_needle(key),
                    )
            if "name" not in item:
                self._fail(where, f"{entry} has no `name`")
            old_names = item.get("renamed_from", [])
            if not isinstance(old_names, list):
                self._fail(
                    (*where, "renamed_from"),
                    f"{entry}: `renamed_from` must be a list of the names the event had before,"
                    ' e.g. renamed_from = ["Sign-up"]',
                    _key_needle("renamed_from"),
                )
            try:
                spec = EventSpec(item["name"], item.get("currency"), renamed_from=old_names)
            except InvalidRequestError as error:
                self._fail_at(
                    where, entry, error.field, str(error), item=item, earlier=value[:index]
                )
            if (conflict := claims.claim(spec, label)) is not None:
                field, problem = conflict
                self._fail_at(where, entry, field, problem, item=item, earlier=value[:index])
            specs.append(spec)
        return tuple(specs)

    def _fail_at(
        self,
        where: KeyPath,
        entry: str,
        field: str,
        problem: str,
        *,
        item: dict[str, object],
        earlier: list[object],
    ) -> NoReturn:
        """Fail at the line of ``field`` of the event entry ``item`` at ``where``.

        ``field`` may name one old name (``renamed_from[2]``). An inline entry is
        found on its line by its value, counting the ``earlier`` entries that hold it.
        """
        key, _, position = field.partition("[")
        value = item.get(key)
        nth = 1
        if position and isinstance(value, list):
            value = value[int(position.rstrip("]"))]
        else:
            nth = _count_equal(earlier, key, value) + 1
        self._fail((*where, key), f"{entry}: {problem}", _value_needle(value), nth=nth)

    def _check_site_table(
        self, site_id: str, name: str, sites: AbstractSet[str] | None, exclude: AbstractSet[str]
    ) -> None:
        """A ``[site.ID]`` must name a site in `sites` (when listed) and not an excluded one."""
        if sites is not None and site_id not in sites:
            self._fail(
                ("site", site_id), f"{name}: {site_id!r} is not in `sites`", re.escape(site_id)
            )
        if site_id in exclude:
            self._fail(
                ("site", site_id), f"{name}: {site_id!r} is in `exclude`", re.escape(site_id)
            )

    def _extras(
        self, sites: Sequence[str] | None, common: NameClaims, exclude: Sequence[str]
    ) -> tuple[dict[str, tuple[EventSpec, ...]], dict[str, None]]:
        """Each site table's events, and the sites whose table says ``no_events = true``.

        ``sites`` None: the file says ``sites = "all"``, checked when the sync runs.
        """
        value = self._document.get("site", {})
        if not isinstance(value, dict):
            self._fail(("site",), "`site` must hold one table per site, e.g. [site.CDBUGS]")
        extras: dict[str, tuple[EventSpec, ...]] = {}
        none: dict[str, None] = {}
        listed = None if sites is None else frozenset(sites)  # looked up once per table
        excluded = frozenset(exclude)
        for site_id, table in value.items():
            name = f"[{_table_name(site_id)}]"
            self._check_site_table(site_id, name, listed, excluded)
            if not isinstance(table, dict):
                self._fail(("site", site_id), f"{name} must be a table with `events`")
            for key in table:
                if key not in ("events", "no_events"):
                    self._fail(
                        ("site", site_id, key),
                        f"{name}: unknown key {key!r} (a site table has `events` or"
                        " `no_events = true`)",
                        _key_needle(key),
                    )
            extras[site_id] = self._events(
                ("site", site_id, "events"),
                table.get("events", []),
                f"{name} events",
                NameClaims(common),  # the common events' claims count; they are not copied
            )
            if "no_events" in table:
                if table["no_events"] is not True:
                    self._fail(
                        ("site", site_id, "no_events"),
                        f"{name}: `no_events` must be true (or left out),"
                        f" got {shown(table['no_events'])}",
                    )
                if extras[site_id]:
                    self._fail(
                        ("site", site_id, "no_events"),
                        f"{name}: `no_events = true`, but it has `events` too",
                    )
                none[site_id] = None
        return extras, none
