"""Goals as code: `export` writes a sync file that `sync` reads back as no change at all,
and `sync --check` tells CI whether the sites drifted from a file, sending no write.

The round trip runs the real code path: `main(["export", ...])` writes the file, the
sync file's reader reads it, and `events.plan` against the same served fake plans nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fathom_events import Client
from fathom_events._cli import _export, main
from fathom_events._cli._export import render_sync_file, toml_key, toml_string
from fathom_events._cli._syncfile import SyncFileError, parse_sync_file, read_sync_file
from fathom_events._cli._text import escape_controls
from fathom_events._protocol import name_key
from fathom_events.testing import FakeFathom

# `_url` and `_cli` are test_cli's fixtures `url` (this module's fake, served) and `cli`.
from tests.cli.test_cli import (
    TOKEN,
    Cli,
    _cli,  # noqa: F401 - a fixture, used by its name
    _url,  # noqa: F401 - a fixture, used by its name
    in_process_cli,
    run_cli,
)
from tests.support.readme import (
    DOCS,
    File,
    console_session,
    exit_code_shown,
    seeded_fake,
    shown_in_order,
    words,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

# Characters a TOML writer must take care of, and some a terminal must: quotes, the
# backslash, controls TOML forbids raw, DEL, a C1 CSI, line separators, a bidi override,
# TOML's own punctuation, a BOM, an emoji beyond the BMP.
HOSTILE = "\"'\\\n\r\t\x00\x08\x1b\x7f\x9b\u2028\u202e#[]{}=.,é\ufeff\U0001f600 "
NAMES = st.text(alphabet=st.sampled_from(HOSTILE + "ab"), min_size=1, max_size=8).filter(
    lambda name: name_key(name) != ""
)
SITE_TAILS = st.text(alphabet=st.sampled_from('ab-_ ."é\\'), max_size=4)
EXPORT_HEADER = re.compile(
    r"\A# A sync file written by `fathom-events export` \(fathom-events \S+\)\n"
    r"# on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC from \d+ sites? \(`sites` below\)\.\n"
)


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(2, 3)  # SITE1 and SITE2, the same three events each
    fake.add_event("SITE2", "Abandoned cart")
    return fake


def writes(fake: FakeFathom) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method != "GET"]


# -- writing TOML ----------------------------------------------------------------------------


@given(st.one_of(st.text(), NAMES))  # st.text() draws no lone surrogate
def test_toml_string_reads_back_exactly(text: str) -> None:
    """Any text without a lone surrogate is written as a TOML string that reads back as it."""
    written = toml_string(text)
    assert tomllib.loads(f"k = {written}")["k"] == text
    assert tomllib.loads(f"{toml_key(text)} = 1") == {text: 1}
    assert escape_controls(written) == written  # nothing in it moves a terminal's cursor


def test_toml_string_refuses_a_lone_surrogate() -> None:
    """A lone surrogate cannot be in a TOML string: writing one is refused, not mangled."""
    with pytest.raises(ValueError, match="lone surrogate at position 1"):
        toml_string("a\udc80b")


def test_site_ids_are_bare_keys_only_where_they_may_be() -> None:
    """A site id of letters, digits, - and _ is a bare key; any other is quoted."""
    assert toml_key("CDBUGS-1_x") == "CDBUGS-1_x"
    assert toml_key("my site") == '"my site"'
    assert toml_key("a.b") == '"a.b"'
    assert toml_key("é") == '"é"'


# -- the round trip --------------------------------------------------------------------------


@st.composite
def accounts(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    """Sites (tails of their ids) with 0..n events, names drawn from a small pool."""
    pool = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    sites = draw(
        st.lists(
            st.tuples(SITE_TAILS, st.lists(st.sampled_from(pool), max_size=5)),
            min_size=1,
            max_size=4,
        )
    )
    return [(f"S{index}{tail}", names) for index, (tail, names) in enumerate(sites)]


def test_sync_of_a_fresh_export_plans_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A fresh export syncs to no change; with --prune it deletes only the newer twins."""
    fake = FakeFathom({TOKEN: ["*"]})
    fresh = itertools.count()  # each example has sites of its own on the one served fake
    path = tmp_path / "goals.toml"
    with fake.serve_in_thread() as url, Client(TOKEN, url) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(accounts())
        def round_trip(account: list[tuple[str, list[str]]]) -> None:
            prefix = f"R{next(fresh)}"
            for tail, names in account:
                fake.add_site(prefix + tail)
                for name in names:
                    fake.add_event(prefix + tail, name)
            sites = [prefix + tail for tail, _ in account]
            code = main(["export", *sites, "--out", str(path), "--force", "-q",
                         "--base-url", url, "--token", TOKEN])  # fmt: skip
            assert code == 0, capsys.readouterr().err
            desired = read_sync_file(str(path)).desired()
            assert list(desired) == sites
            assert client.events.plan(desired).empty
            pruned = client.events.plan(desired, prune=True)
            newer_twins = []  # a second (third...) event of a name: --prune deletes it
            for site in sites:
                seen: set[str] = set()
                for event in fake.events(site):  # names compared without outer whitespace
                    if name_key(event["name"]) in seen:
                        newer_twins.append(event["id"])
                    seen.add(name_key(event["name"]))
            assert [e.id for s in pruned.sites for e in s.delete] == newer_twins
            assert pruned.requests == len(newer_twins)

        round_trip()
    capsys.readouterr()


# -- export through the real entry point ---------------------------------------------------


def test_export_writes_common_events_then_each_sites_own(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """`export` writes a header, the sites, common events under [[events]], the rest per site."""
    path = tmp_path / "goals.toml"
    ran = run_cli("export", "SITE1", "SITE2", "--out", str(path), "--base-url", url,
                  "--token", TOKEN, script=True)  # fmt: skip
    assert ran.code == 0, ran.err
    assert ran.out == f"exported 7 events of 2 sites into {path}\n"
    text = path.read_text()
    assert EXPORT_HEADER.match(text), text
    assert "Fathom does not tell an existing event's currency" in text
    assert "currency =" not in text.split("\n\n", 1)[1]  # none written, only the comment's
    document = tomllib.loads(text)
    assert document["sites"] == ["SITE1", "SITE2"]
    assert [e["name"] for e in document["events"]] == [e["name"] for e in fake.events("SITE1")]
    assert document["site"] == {"SITE2": {"events": [{"name": "Abandoned cart"}]}}
    assert writes(fake) == []


def test_export_refuses_to_replace_an_existing_file_without_force(
    cli: Cli, fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """An existing --out FILE is refused (exit 2, nothing sent, FILE untouched) unless --force."""
    path = tmp_path / "goals.toml"
    path.write_text("# my edits\n")
    before = path.stat()
    base = ["--base-url", url, "--token", TOKEN]
    refused = run_cli("export", "SITE1", "--out", str(path), *base, script=True)
    assert refused.code == 2
    assert refused.out == ""
    assert refused.err == (
        f"fathom-events: export: {path} already exists; give --force to replace it\n"
    )
    assert cli("--json", "export", "SITE1", "--out", str(path)).code == 2
    assert fake.requests == []
    assert path.read_text() == "# my edits\n"
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    forced = run_cli("export", "SITE1", "--out", str(path), "--force", *base)
    assert forced.code == 0, forced.err
    assert parse_sync_file(path.read_text()).sites == ("SITE1",)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and /dev/null are POSIX here")
def test_export_protects_a_file_behind_a_symlink_but_not_a_special_file(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """A symlink to a file guards that file; /dev/null and /dev/stdout need no --force."""
    real = tmp_path / "real.toml"
    real.write_text("kept\n")
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    base = ["--base-url", url, "--token", TOKEN]
    assert run_cli("export", "SITE1", "--out", str(link), *base).code == 2
    assert real.read_text() == "kept\n"
    assert fake.requests == []
    to_null = run_cli("export", "SITE1", "--out", os.devnull, *base)
    assert to_null.code == 0, to_null.err
    to_stdout = run_cli("export", "SITE1", "--out", "/dev/stdout", *base)
    assert to_stdout.code == 0, to_stdout.err
    assert parse_sync_file(to_stdout.out.split("exported ")[0]).sites == ("SITE1",)


def test_export_help_says_an_existing_file_needs_force(capsys: pytest.CaptureFixture[str]) -> None:
    """`export --help` says an existing FILE is refused without --force, and what is not a file."""
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--force" in text
    assert "An existing FILE is refused (exit 2) unless --force" in text
    assert "/dev/null" in text


def test_export_to_stdout_is_the_file_itself(cli: Cli, fake: FakeFathom) -> None:
    """Without --out the sync file is the output, the summary on stderr, and it parses."""
    ran = cli("export", "SITE2", "SITE2")
    assert ran.code == 0, ran.err
    assert EXPORT_HEADER.match(ran.out)
    desired = parse_sync_file(ran.out).desired()
    assert list(desired) == ["SITE2"]
    assert [s.name for s in desired["SITE2"]] == [e["name"] for e in fake.events("SITE2")]
    assert ran.err.endswith("exported 4 events of 1 site\n")


def test_export_json_gives_a_summary_and_needs_out(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """`--json` prints a summary of what `--out` got; without --out it is a usage error."""
    refused = cli("--json", "export", "SITE1")
    assert refused.code == 2
    assert "give --out FILE for the sync file" in refused.err
    assert fake.requests == []
    path = tmp_path / "goals.toml"
    ran = cli("--json", "export", "SITE1", "--out", str(path))
    assert ran.code == 0, ran.err
    assert json.loads(ran.out) == {"out": str(path), "sites": 1, "events": 3}


def test_export_marks_twins_and_sites_without_events(cli: Cli, fake: FakeFathom) -> None:
    """Two events of one name are written once, marked; a site with none says no_events."""
    fake.add_event("SITE1", 'Say "hi"\nagain')
    fake.add_event("SITE1", 'Say "hi"\nagain')
    fake.add_site("EMPTY")
    ran = cli("export", "SITE1", "EMPTY")
    assert ran.code == 0, ran.err
    assert '  { name = "Say \\"hi\\"\\nagain" },  # 2 events of this name\n' in ran.out
    assert "[site.EMPTY]\nno_events = true  # it has none\n" in ran.out
    assert "sync --prune deletes all but the oldest" in ran.out
    assert parse_sync_file(ran.out).desired()["EMPTY"] == []


def test_export_writes_a_padded_name_as_sync_compares_it(cli: Cli, fake: FakeFathom) -> None:
    """A name stored with outer whitespace is exported without it, and the header says so."""
    fake.add_event("PADDED", " Signed up\t")
    ran = cli("export", "PADDED")
    assert ran.code == 0, ran.err
    assert '[[events]]\nname = "Signed up"\n' in ran.out
    assert "# names are written (and matched by sync) without it." in ran.out
    assert [s.name for s in parse_sync_file(ran.out).events] == ["Signed up"]


def test_export_of_an_event_a_sync_file_cannot_name_writes_nothing(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """A name sync would refuse fails the export: exit 1, each named, the file as it was."""
    long = fake.add_event("SITE2", "x" * 256)
    blank = fake.add_event("SITE2", "   ")
    path = tmp_path / "goals.toml"
    path.write_text("kept\n")
    ran = cli("export", "SITE1", "SITE2", "--out", str(path), "--force")
    assert ran.code == 1
    assert ran.out == ""
    assert path.read_text() == "kept\n"
    assert (
        f"fathom-events: export SITE2: event {long['id']!r} cannot be written to a sync file:"
        " its name must be at most 255 characters, got 256\n"
    ) in ran.err
    assert f"event {blank['id']!r} cannot be written" in ran.err
    assert ran.err.endswith(
        f"fathom-events: export: 2 events cannot be written to a sync file; {path} was left"
        " as it was\n"
    )


def test_export_of_an_unreadable_site_writes_nothing(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """When a site cannot be read, export names it, writes nothing and exits 1."""
    path = tmp_path / "goals.toml"
    ran = cli("export", "SITE1", "GONE", "--out", str(path))
    assert ran.code == 1
    assert "fathom-events: export GONE: 404: " in ran.err
    assert "export: 1 site could not be read; " in ran.err
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_export_larger_than_sync_reads_writes_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync file larger than `sync` would read is not written: exit 1, saying why."""
    monkeypatch.setattr(_export, "MAX_FILE_BYTES", 100)
    path = tmp_path / "goals.toml"
    ran = cli("export", "SITE1", "--out", str(path))
    assert ran.code == 1
    assert "more than sync reads (100); " in ran.err
    assert not path.exists()


# -- sync --check ----------------------------------------------------------------------------


def exported(cli: Cli, path: Path, *sites: str) -> Path:
    ran = cli("export", *sites, "--out", str(path))
    assert ran.code == 0, ran.err
    return path


@pytest.mark.parametrize("prune", [[], ["--prune"]])
def test_check_exit_codes_through_the_real_entry_point(
    cli: Cli, fake: FakeFathom, url: str, tmp_path: Path, prune: list[str]
) -> None:
    """`sync --check` exits 0, 3 on drift, 1 unreadable, 2 bad file; it never writes."""
    path = exported(cli, tmp_path / "goals.toml", "SITE1", "SITE2")
    base = ["--base-url", url, "--token", TOKEN, *prune]
    fake.reset_requests()
    in_sync = run_cli("sync", str(path), "--check", *base, script=True)
    assert in_sync.code == 0, in_sync.err
    assert in_sync.out.endswith("nothing to change: every site has the file's events\n")
    gone = fake.events("SITE1")[0]
    fake.add_event("SITE1", "Added by hand")
    run_cli("delete", "SITE1", gone["id"], "--base-url", url, "--token", TOKEN)
    drift = run_cli("sync", str(path), "--check", *base)
    assert drift.code == 3, drift.err
    added = next(e["id"] for e in fake.events("SITE1") if e["name"] == "Added by hand")
    deleted = f"'Added by hand' ({added})" if prune else ""
    assert drift.out.startswith("site\tcreate\trename\tupdate (currency)\tdelete\n")
    assert f"SITE1\t{gone['name']!r}\t\t\t{deleted}\n" in drift.out
    assert drift.out.endswith(
        f"check: the sites differ from the file: {1 + bool(prune)} change"
        f"{'s' if prune else ''} to make (sync without --check makes them)\n"
    )
    path.write_text(path.read_text().replace('"SITE2",', '"SITE2",\n  "GONE",'))
    unreadable = run_cli("sync", str(path), "--check", *base)
    assert unreadable.code == 1
    assert "fathom-events: plan GONE: could not list its events: 404: " in unreadable.err
    path.write_text("sites = [\n")
    bad = run_cli("sync", str(path), "--check", *base)
    assert bad.code == 2
    assert "goals.toml:1: not valid TOML" in bad.err
    assert [r.method for r in fake.requests].count("DELETE") == 1  # the one sent by hand
    assert {r.method for r in fake.requests} == {"GET", "DELETE"}


def test_check_json_is_the_plan(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """`sync --check --json` prints the plan as a dry run does, marked as a check; exit 3."""
    path = tmp_path / "goals.toml"
    path.write_text('sites = ["SITE1"]\n[[events]]\nname = "Booked"\n')
    ran = cli("sync", str(path), "--check", "--json")
    assert ran.code == 3, ran.err
    document = json.loads(ran.out)
    assert document["check"] is True
    assert document["dry_run"] is True
    assert document["plan"]["changes"] == [
        {
            "site_id": "SITE1",
            "create": [{"name": "Booked", "currency": None}],
            "rename": [],
            "update": [],
            "delete": [],
            "not_renamed": [],
            "repeated": [],
        }
    ]
    assert writes(fake) == []


def test_a_site_with_no_events_round_trips_and_drift_on_it_is_seen(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """An empty site round-trips; an event added to it is drift only to --check --prune."""
    fake.add_site("EMPTY")
    path = exported(cli, tmp_path / "goals.toml", "EMPTY", "SITE1")
    assert cli("sync", str(path), "--check", "--prune").code == 0
    fake.add_event("EMPTY", "Stray")
    assert cli("sync", str(path), "--check").code == 0
    ran = cli("sync", str(path), "--check", "--prune")
    assert ran.code == 3
    stray = fake.events("EMPTY")[0]["id"]
    assert f"EMPTY\t\t\t\t'Stray' ({stray})\n" in ran.out
    assert writes(fake) == []


# -- the sync file's no_events ---------------------------------------------------------------


def test_no_events_gives_a_site_none() -> None:
    """`no_events = true` in a site's table gives it no events, even when no site gets any."""
    text = 'sites = ["A", "B"]\n[site.A]\nevents = [{ name = "x" }]\n[site.B]\nno_events = true\n'
    desired = parse_sync_file(text).desired()
    assert ([s.name for s in desired["A"]], desired["B"]) == (["x"], [])
    alone = parse_sync_file('sites = ["A"]\n[site.A]\nno_events = true\n')
    assert alone.desired() == {"A": []}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            'sites = ["A"]\n[[events]]\nname = "x"\n[site.A]\nno_events = true\n',
            5,
            "[site.A]: `no_events = true`, but [[events]] gives every site events",
        ),
        (
            'sites = ["A"]\n[site.A]\nno_events = false\n',
            3,
            "[site.A]: `no_events` must be true (or left out), got False",
        ),
        (
            'sites = ["A"]\n[site.A]\nno_events = true\nevents = [{ name = "x" }]\n',
            3,
            "[site.A]: `no_events = true`, but it has `events` too",
        ),
        (
            'sites = ["A", "B"]\n[site.A]\nevents = [{ name = "x" }]\n',
            1,
            (
                "with --prune every event of it would be deleted (if it should have none, say"
                " `no_events = true` in [site.B])"
            ),
        ),
    ],
)
def test_no_events_is_checked(text: str, line: int, problem: str) -> None:
    """`no_events` must be true, alone in its table, in a file without [[events]]."""
    with pytest.raises(SyncFileError) as caught:
        parse_sync_file(text, "s.toml")
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_render_puts_every_site_in_the_header_count() -> None:
    """The header counts the sites the file names; a file of no events still reads back."""
    now = datetime.now(timezone.utc)
    text = render_sync_file({"A": [], "B": []}, made_at=now)
    assert EXPORT_HEADER.match(text)
    assert " from 2 sites (`sites` below).\n" in text
    assert parse_sync_file(text).desired() == {"A": [], "B": []}
    every = render_sync_file({"A": []}, all_sites=True, made_at=now)
    assert " from every site the token can see, 1 site (`sites` below).\n" in every


# -- the goals-as-code guide's walk-through -------------------------------------------------


def test_goals_as_code_guide_walk_through_is_what_happens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `fathom-events` command of the goals-as-code guide, run in-process, does as shown."""
    steps = console_session(DOCS / "howto" / "goals-as-code.md")
    fake = seeded_fake({TOKEN: ["*"]})
    monkeypatch.chdir(tmp_path)
    ran = 0
    with fake.serve_in_thread() as url:
        cli = in_process_cli(capsys, url)
        for number, step in enumerate(steps):
            if isinstance(step, File):  # the guide's edit of the exported file
                Path(step.name).write_text(step.text)
                continue
            if not step.line.startswith("fathom-events "):
                continue
            result = cli(*shlex.split(step.line)[1:], "-q")
            assert result.code == exit_code_shown(steps, number), result.err
            printed = {words(line) for line in result.out.splitlines()}
            on_stdout = [line for line in step.shown if words(line) in printed]
            elsewhere = [line for line in step.shown if words(line) not in printed]
            assert shown_in_order(on_stdout, result.out) == []
            assert shown_in_order(elsewhere, result.err) == [], result.err
            ran += 1
    assert ran == 5
    names = {site: {e["id"]: e["name"] for e in fake.events(site)} for site in ("CDBUGS", "WXYZ")}
    for site, signed_up in (("CDBUGS", "7E2TJKBV"), ("WXYZ", "K3M9QX2P")):  # renamed, same id
        assert names[site][signed_up] == "Signed up to newsletter"
        assert sorted(names[site].values()) == ["Purchased", "Signed up to newsletter", "Upgraded"]
