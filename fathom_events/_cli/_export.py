"""``export SITE...``: write a sync file that gives the sites exactly what they have.

The file is the format ``sync FILE`` reads (see ``_syncfile``): events every
site has under ``[[events]]``, the rest under ``[site.ID]``, a site with no
events as ``no_events = true``. ``sync`` of a freshly exported file plans nothing
(with ``--prune`` too, unless a site has two events of one name: a sync file
names an event once, so ``sync --prune`` would delete all but the oldest).

Export is all or nothing: when a site cannot be read, or holds an event that
a sync file cannot name as it is (a name ``sync`` would refuse: empty, only
whitespace, longer than 255 characters, or not valid Unicode), each is named
on stderr, nothing is written and the exit code is 1. A file that silently
lacked a site or an event would be a wrong record of the account.
"""

from __future__ import annotations

import argparse
import re
import stat
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import attrs

from fathom_events import Event, EventSpec, InvalidRequestError, __version__
from fathom_events._protocol import name_key

from ._commands import check_out_path, connect, counters, every_site, named_sites, show_pulled
from ._output import Output, replace_file, tally
from ._syncfile import MAX_FILE_BYTES
from ._text import PROG, UsageError

__all__ = ["ExportError", "Unwritable", "export", "render_sync_file", "toml_key", "toml_string"]

# What a TOML basic string must escape (the quote, the backslash, controls but tab, DEL),
# and what is escaped besides so that the file is safe to show in a terminal or a diff:
# tab, C1 controls, line and paragraph separators, bidi embeddings, overrides and isolates
# (the characters ``_text.escape_controls`` escapes, lone surrogates aside: no TOML
# string can hold one).
_TOML_UNSAFE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]')
_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string that reads back as exactly ``text``.

    Raises ``ValueError`` for a lone surrogate, which no TOML string can hold.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"holds a lone surrogate at position {error.start}, which no TOML string can hold"
        ) from None
    escaped = _TOML_UNSAFE.sub(
        lambda found: _TOML_ESCAPES.get(found[0]) or f"\\u{ord(found[0]):04x}", text
    )
    return f'"{escaped}"'


def toml_key(key: str) -> str:
    """``key`` as a TOML key: bare when it may be, else a quoted string."""
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


@attrs.frozen
class Unwritable:
    """An event a sync file cannot name as it is, and why."""

    site_id: str
    event_id: str
    problem: str

    def __str__(self) -> str:
        return f"event {self.event_id!r} cannot be written to a sync file: {self.problem}"


class ExportError(Exception):
    """The sites hold events that a sync file cannot name as they are."""

    def __init__(self, unwritable: Sequence[Unwritable]) -> None:
        self.unwritable = tuple(unwritable)
        super().__init__(f"{tally(len(unwritable), 'event')} cannot be written to a sync file")


def _name_problem(name: str) -> str | None:
    """Why ``sync`` would not read ``name`` back as it is; None when it would."""
    try:
        EventSpec(name)  # what the sync file's reader makes of each name
    except InvalidRequestError as error:
        return f"its name {error.rule}"
    return None


def _unwritable(found: Mapping[str, Sequence[Event]]) -> list[Unwritable]:
    """Every event whose name (as ``sync`` compares it) ``sync`` would not read back."""
    return [
        Unwritable(site_id, event.id, problem)
        for site_id, events in found.items()
        for event in events
        if (problem := _name_problem(name_key(event.name))) is not None
    ]


def _names(events: Sequence[Event]) -> Counter[str]:
    """Each name the events hold, as ``sync`` compares names (outer whitespace aside), with
    how many hold it, in order of first appearance."""
    return Counter(name_key(event.name) for event in events)


def _duplicates(counts: Mapping[str, Counter[str]], name: str) -> str:
    """``events of this name: 2 on SITE1, 3 on "my site"``; empty when no site has two."""
    many = [f"{c[name]} on {toml_key(site_id)}" for site_id, c in counts.items() if c[name] > 1]
    return f"events of this name: {', '.join(many)}" if many else ""


def _header(
    counts: Mapping[str, Counter[str]], *, all_sites: bool, made_at: datetime, padded: bool
) -> list[str]:
    # The count is of the sites the file lists, each once, however they were found.
    source = f"{tally(len(counts), 'site')} (`sites` below)"
    if all_sites:
        source = f"every site the token can see, {source}"
    lines = [
        f"# A sync file written by `{PROG} export` ({PROG} {__version__})",
        f"# on {made_at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC from {source}.",
        f"# `{PROG} sync` of it changes nothing while the sites stay as they were.",
        "#",
        "# Fathom does not tell an existing event's currency, so no event here has one:",
        "# sync creates a missing event with Fathom's default (dollar) unless you add",
        '# currency = "..." to it, and changes an existing event\'s only with --set-currency.',
    ]
    if any(n > 1 for c in counts.values() for n in c.values()):
        lines += [
            "#",
            "# Some sites have more than one event of one name (marked below). A sync file",
            "# names an event once: sync keeps them all; sync --prune deletes all but the oldest.",
        ]
    if padded:
        lines += [
            "#",
            "# Some events have a name with outer whitespace, which Fathom no longer stores:",
            "# names are written (and matched by sync) without it.",
        ]
    if any(not c for c in counts.values()):
        lines += [
            "#",
            "# A site with no events says `no_events = true`: sync gives it none (and with",
            "# --prune deletes any it gets).",
        ]
    return lines


def render_sync_file(
    found: Mapping[str, Sequence[Event]], *, all_sites: bool = False, made_at: datetime
) -> str:
    """The sync file that gives each site of ``found`` (oldest events first) what it has.

    ``all_sites``: the sites are every site the token can see, and the header
    says so. Raises :class:`ExportError` when an event's name cannot be
    written as it is.
    """
    if unwritable := _unwritable(found):
        raise ExportError(unwritable)
    counts = {site_id: _names(events) for site_id, events in found.items()}
    first = next(iter(counts.values()), Counter[str]())
    common = [name for name in first if all(name in c for c in counts.values())]
    padded = any(name_key(e.name) != e.name for events in found.values() for e in events)
    lines = _header(counts, all_sites=all_sites, made_at=made_at, padded=padded)
    lines += ["", "sites = ["] + [f"  {toml_string(site_id)}," for site_id in counts] + ["]"]
    if common:
        lines += ["", "# Events every site has."]
    for index, name in enumerate(common):
        if index:
            lines.append("")
        if note := _duplicates(counts, name):
            lines.append(f"# {note}")
        lines += ["[[events]]", f"name = {toml_string(name)}"]
    shared = set(common)
    for site_id, names in counts.items():
        own = [name for name in names if name not in shared]
        if not own and common:
            continue  # the common events are all it has
        lines += ["", f"[site.{toml_key(site_id)}]"]
        if not own:
            lines.append("no_events = true  # it has none")
            continue
        lines.append("events = [")
        for name in own:
            note = f"  # {names[name]} events of this name" if names[name] > 1 else ""
            lines.append(f"  {{ name = {toml_string(name)} }},{note}")
        lines.append("]")
    return "\n".join(lines) + "\n"


def _out_path(args: argparse.Namespace) -> Path | None:
    """Where the sync file goes (None: stdout), checked before any request."""
    target = check_out_path(args.out)
    if target is None and args.json:
        raise UsageError("--json prints JSON on stdout: give --out FILE for the sync file")
    if target is not None and not args.force and _is_a_file(target):
        raise UsageError(f"export: {target} already exists; give --force to replace it")
    return target


def _is_a_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (through any symlink): what ``--force`` guards.

    A special file (``/dev/null``, ``/dev/stdout``, a pipe) holds nothing to
    lose, and is written to as it is.
    """
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:  # missing (or a dangling symlink): nothing there yet
        return False


async def export(args: argparse.Namespace, out: Output) -> int:
    """Run ``export SITE...``: 0 when the file was written, 1 when nothing could be.

    ``--out FILE`` is refused, before any request, when FILE exists (unless
    ``--force``); it is written whole, and only when every site was read and
    every event can be written; otherwise it is left as it was.
    """
    target = _out_path(args)
    named = named_sites(args)
    async with connect(args) as client:
        # With --all-sites the ids come from client.sites.ids() (oldest first, each once)
        # and the header says so; the file still lists them in `sites`, so that it
        # reproduces exactly the sites it was made from.
        sites = named or await every_site(client, out)
        if not sites:
            out.problem("export: the token can see no site; nothing written")
            return 1
        with out.progress("export", len(sites), counters(client)) as on_progress:
            result = await client.events.pull(sites, on_progress=on_progress)
    kept = "nothing written" if target is None else f"{target} was left as it was"
    show_pulled(out, result, "export")
    if result.failed:
        out.problem(f"export: {tally(len(result.failed), 'site')} could not be read; {kept}")
        return 1
    try:
        text = render_sync_file(
            result, all_sites=args.all_sites, made_at=datetime.now(timezone.utc)
        )
    except ExportError as error:
        for event in error.unwritable:
            out.problem(f"export {event.site_id}: {event}")
        out.problem(f"export: {error}; {kept}")
        return 1
    data = text.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        out.problem(
            f"export: the sync file would be {len(data):,} bytes, more than sync reads"
            f" ({MAX_FILE_BYTES:,}); {kept}"
        )
        return 1
    events = sum(len(found) for found in result.values())
    summary = f"exported {tally(events, 'event')} of {tally(len(result), 'site')}"
    if target is None:
        out.document(text)  # the sync file is the answer
        out.note(summary)
        return 0
    if not args.force and _is_a_file(target):  # made while the sites were read
        out.problem(f"export: {target} appeared while exporting; give --force to replace it")
        return 2
    replace_file(target, [data])
    if out.json_mode:
        out.json({"out": str(target), "sites": len(result), "events": events})
    else:
        out.result(f"{summary} into {target}")
    return 0
