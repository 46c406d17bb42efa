"""Goals as code on the command line: renames, listed and confirmed deletes, --max-deletes.

Through `main()` (the entry point's function) and the real `fathom-events` entry point,
against FakeFathom over real HTTP; writes are counted from the fake's request log.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from fathom_events._cli import _export, _output
from fathom_events._cli._output import Output
from fathom_events._cli._syncfile import SyncFileError, parse_sync_file
from fathom_events.testing import FakeFathom, RecordedRequest
from tests.bulk.test_goals_history import repeating_listing
from tests.cli.test_cli import TOKEN, Cli, in_process_cli, run_cli, subprocess_env

RENAMING = """\
sites = ["SITE1", "SITE2"]

[[events]]
name = "Signed up"
renamed_from = ["Sign-up"]

[[events]]
name = "Purchased"
"""
PRUNING = """\
sites = ["SITE1", "SITE2"]

[[events]]
name = "Purchased"
"""


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    """SITE1 and SITE2, each with "Sign-up" (to be renamed), "Purchased" and "Old promo"."""
    fake = FakeFathom({TOKEN: ["*"]})
    for site in ("SITE1", "SITE2"):
        fake.add_event(site, "Sign-up")
        fake.add_event(site, "Purchased")
        fake.add_event(site, "Old promo")
    return fake


@pytest.fixture(name="url")
def _url(fake: FakeFathom) -> object:
    with fake.serve_in_thread() as url:
        yield url


@pytest.fixture(name="cli")
def _cli(capsys: pytest.CaptureFixture[str], url: str) -> Cli:
    return in_process_cli(capsys, url)


def writes(fake: FakeFathom) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method != "GET"]


def sync_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "goals.toml"
    path.write_text(text)
    return str(path)


def ids(fake: FakeFathom, site: str) -> dict[str, str]:
    return {e["name"]: e["id"] for e in fake.events(site)}


# --- renames ----------------------------------------------------------------------------------


def test_the_sync_file_reads_renamed_from() -> None:
    """`renamed_from` in an event table (or inline) becomes the spec's renamed_from."""
    parsed = parse_sync_file(
        RENAMING + '[site.SITE1]\nevents = [{ name = "B", renamed_from = ["A"] }]'
    )
    assert [s.renamed_from for s in parsed.events] == [("Sign-up",), ()]
    assert parsed.extras["SITE1"][0].renamed_from == ("A",)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            'sites = ["A"]\n[[events]]\nname = "B"\nrenamed_from = "A"\n',
            4,
            "`renamed_from` must be a list of the names the event had before",
        ),
        (
            'sites = ["A"]\n[[events]]\nname = "B"\nrenamed_from = ["C", " A"]\n',
            4,
            "renamed_from[1]: must not begin or end with whitespace",
        ),
        (
            'sites = ["A"]\n[[events]]\nname = "B"\nrenamed_from = ["C"]\n[[events]]\nname = "C"\n',
            6,
            "`events` entry 2: the event 'C' is wanted, but 'B' (in `events`) is renamed from it",
        ),
        (
            (
                'sites = ["A"]\n[[events]]\nname = "C"\n[site.A]\nevents = [\n  { name = "X" },\n'
                '  { name = "B", renamed_from = ["C"] },\n]\n'
            ),
            7,
            (
                "[site.A] events entry 2: renamed_from names the event 'C', which is also wanted"
                " (in `events`)"
            ),
        ),
        (
            (
                'sites = ["A"]\n[[events]]\nname = "B"\nrenamed_from = ["Z"]\n'
                '[[events]]\nname = "C"\nrenamed_from = ["Z"]\n'
            ),
            7,
            "'Z' is in the renamed_from of both 'B' (in `events`) and 'C'",
        ),
        ('sites = ["A"]\n[[events]]\nname = "B "\n', 3, "must not begin or end with whitespace"),
    ],
)
def test_a_bad_renamed_from_names_its_line(text: str, line: int, problem: str) -> None:
    """A renamed_from that is not a list of names, or contradicts the file, names its line."""
    with pytest.raises(SyncFileError) as raised:
        parse_sync_file(text, "goals.toml")
    assert raised.value.line == line, raised.value
    assert problem in raised.value.problem


def test_sync_renames_in_place_and_shows_it(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """A rename keeps each event's id, is shown as 'Old' -> 'New' under a header, and converges."""
    before = {site: ids(fake, site)["Sign-up"] for site in ("SITE1", "SITE2")}
    path = sync_file(tmp_path, RENAMING)
    dry = cli("sync", path, "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines()[:3] == [
        "site\tcreate\trename\tupdate (currency)\tdelete",
        "SITE1\t\t'Sign-up' -> 'Signed up'\t\t",
        "SITE2\t\t'Sign-up' -> 'Signed up'\t\t",
    ]
    assert "2 to rename" in dry.out
    ran = cli("sync", path)
    assert ran.code == 0, ran.err
    assert "sync: 0 created, 2 renamed, 0 updated, 0 deleted, 0 failed;" in ran.out
    assert f"renamed SITE1 {before['SITE1']} 'Sign-up' -> 'Signed up'" in ran.out
    assert {site: ids(fake, site)["Signed up"] for site in ("SITE1", "SITE2")} == before
    assert [(w.method, w.json) for w in writes(fake)] == [("POST", {"name": "Signed up"})] * 2
    assert cli("sync", path, "--check").code == 0  # a second plan is empty
    pruned = cli("sync", path, "--check", "--prune")
    assert pruned.code == 3  # "Old promo" is still there: only --prune would delete it
    assert "0 to rename" not in pruned.out
    assert "'Old promo'" in pruned.out


def test_sync_json_lists_renames(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """--json gives each rename with the event's id, its old and its new name."""
    ran = cli("sync", sync_file(tmp_path, RENAMING), "--dry-run", "--json")
    document = json.loads(ran.out)
    assert document["plan"]["rename"] == 2
    assert document["plan"]["changes"][0]["rename"] == [
        {
            "id": ids(fake, "SITE1")["Sign-up"],
            "from": "Sign-up",
            "to": "Signed up",
            "currency": None,
        }
    ]


def test_an_old_name_beside_the_new_one_is_said(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """Where the new name exists too, the plan says the old event is not renamed, and keeps it."""
    fake.add_event("SITE1", "Signed up")
    ran = cli("sync", sync_file(tmp_path, RENAMING), "--dry-run")
    assert ran.code == 0, ran.err
    assert (
        f"plan SITE1: 'Sign-up' ({ids(fake, 'SITE1')['Sign-up']}) is not renamed to 'Signed up':"
        " the site has 'Signed up' already; --prune would delete it"
    ) in ran.err


def test_an_old_name_left_because_another_was_renamed_is_said(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """Where another old name's event is renamed, the plan names it as the reason."""
    fake.add_event("SITE1", "Registered")
    text = RENAMING.replace(
        'renamed_from = ["Sign-up"]', 'renamed_from = ["Sign-up", "Registered"]'
    )
    ran = cli("sync", sync_file(tmp_path, text), "--dry-run")
    assert ran.code == 0, ran.err
    old = ids(fake, "SITE1")
    assert (
        f"plan SITE1: 'Registered' ({old['Registered']}) is not renamed to 'Signed up':"
        f" 'Sign-up' ({old['Sign-up']}) is renamed to it; --prune would delete it"
    ) in ran.err


def test_a_refused_rename_says_old_and_new(fake: FakeFathom, url: str, tmp_path: Path) -> None:
    """A rename the token may not make is named 'Old' -> 'New' on stderr and in JSON."""
    fake.add_token("READER", ["all-sites-readonly"])
    path = sync_file(tmp_path, RENAMING)
    ran = run_cli("sync", path, "--check", "--json", "--base-url", url, "--token", "READER")
    refused = json.loads(ran.out)["plan"]["refused"]
    assert {key: refused[0][key] for key in ("site_id", "action", "target", "to")} == {
        "site_id": "SITE1",
        "action": "rename",
        "target": "Sign-up",
        "to": "Signed up",
    }
    shown = run_cli("sync", path, "--check", "--base-url", url, "--token", "READER")
    assert "refused: rename 'Sign-up' -> 'Signed up': the token" in shown.err


# --- deletes: listed, confirmed, bounded ------------------------------------------------------


def test_a_sync_that_deletes_without_a_terminal_or_yes_sends_nothing(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """The real entry point, no terminal, no --yes: deletes listed, exit 2, zero writes."""
    path = sync_file(tmp_path, PRUNING)
    ran = run_cli("sync", path, "--prune", "--base-url", url, "--token", TOKEN)
    assert ran.code == 2, ran.err
    assert writes(fake) == []
    for site in ("SITE1", "SITE2"):
        old = ids(fake, site)
        assert f"'Sign-up' ({old['Sign-up']}), 'Old promo' ({old['Old promo']})" in ran.out
    assert ran.err.endswith(
        "fathom-events: sync: the plan deletes 4 events (listed above), and a delete cannot be"
        " undone; nothing was sent: pass --yes to delete them\n"
    )


def test_sync_yes_deletes_and_names_what_it_deleted(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """With --yes the deletes are made, and the summary names each (site, id, name)."""
    old = ids(fake, "SITE2")
    ran = cli("sync", sync_file(tmp_path, PRUNING), "--prune", "--yes")
    assert ran.code == 0, ran.err
    assert f"deleted SITE2 {old['Old promo']} 'Old promo'" in ran.out
    assert [e["name"] for e in fake.events("SITE2")] == ["Purchased"]


def test_sync_json_with_deletes_needs_yes(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """--json without --yes: one JSON document saying nothing was applied, exit 2, no write."""
    ran = cli("sync", sync_file(tmp_path, PRUNING), "--prune", "--json")
    assert ran.code == 2
    document = json.loads(ran.out)
    assert document["applied"] is False
    assert document["plan"]["delete"] == 4
    assert writes(fake) == []
    old = ids(fake, "SITE1")["Old promo"]
    done = cli("sync", sync_file(tmp_path, PRUNING), "--prune", "--json", "--yes")
    assert done.code == 0, done.err
    deleted = json.loads(done.out)["report"]["deleted_events"]
    assert {"site_id": "SITE1", "id": old, "name": "Old promo"} in deleted
    assert f"fathom-events: sync SITE1: deleting {old} 'Old promo'" in done.err


@pytest.mark.parametrize("mode", ["--check", "--dry-run"])
def test_check_and_dry_run_never_need_yes(
    cli: Cli, fake: FakeFathom, tmp_path: Path, mode: str
) -> None:
    """--check and --dry-run list the deletes, send no write and ask nothing."""
    ran = cli("sync", sync_file(tmp_path, PRUNING), "--prune", mode)
    assert ran.code == (3 if mode == "--check" else 0), ran.err
    assert "'Old promo'" in ran.out
    assert writes(fake) == []


def test_max_deletes_stops_before_anything_is_sent(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """--max-deletes N: a plan deleting more than N exits 2 with no write, even with --yes."""
    path = sync_file(tmp_path, PRUNING)
    ran = cli("sync", path, "--prune", "--yes", "--max-deletes", "3")
    assert ran.code == 2
    assert writes(fake) == []
    assert (
        "fathom-events: sync: the plan deletes 4 events, more than --max-deletes 3;"
        " nothing was sent\n"
    ) in ran.err
    check = cli("sync", path, "--prune", "--check", "--max-deletes", "3")
    assert check.code == 2
    ok = cli("sync", path, "--prune", "--yes", "--max-deletes", "4")
    assert ok.code == 0, ok.err
    assert len(writes(fake)) == 4


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")
@pytest.mark.parametrize(("answer", "code", "deleted"), [("y\n", 0, 4), ("n\n", 2, 0), ("", 2, 0)])
def test_on_a_terminal_a_sync_asks_before_deleting(
    fake: FakeFathom, url: str, tmp_path: Path, *, answer: str, code: int, deleted: int
) -> None:
    """On a terminal the sync lists the deletes and asks: only "y" deletes; else nothing is sent."""
    path = sync_file(tmp_path, PRUNING)
    main, terminal = pty.openpty()
    with subprocess.Popen(  # noqa: S603 - our own entry point
        [
            sys.executable,
            "-m",
            "fathom_events",
            "sync",
            path,
            "--prune",
            "--quiet",
            "--base-url",
            url,
            "--token",
            TOKEN,
        ],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    ) as process:
        os.close(terminal)
        try:
            assert process.stderr is not None
            seen = b""
            deadline = time.monotonic() + 30
            while b"[y/N]" not in seen:
                assert time.monotonic() < deadline, seen
                ready, _, _ = select.select([process.stderr], [], [], 1)
                if ready:
                    chunk = os.read(process.stderr.fileno(), 4096)
                    assert chunk, seen  # the command ended without asking
                    seen += chunk
            os.write(main, answer.encode() or b"\x04")  # b"\x04": Ctrl-D, the end of input
            out, err = process.communicate(timeout=30)
        finally:
            os.close(main)
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == code, (seen + err).decode()
    assert re.search(rb"delete 4 events for good\?", seen)
    # stdout is not the terminal here: the deletes are named on stderr, before the question.
    assert re.search(rb"sync SITE2: deleting \w+ 'Old promo'\n.*\[y/N\]", seen, re.DOTALL)
    assert b"'Old promo'" in out
    assert len([w for w in writes(fake) if w.method == "DELETE"]) == deleted
    if not deleted:
        assert writes(fake) == []


# --- progress ---------------------------------------------------------------------------------


def test_progress_counts_each_phases_own_requests_and_each_change(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """Plain progress: the plan phase counts its requests, the apply phase its own, per change."""
    ran = cli("sync", sync_file(tmp_path, RENAMING), "--prune", "--yes")
    assert ran.code == 0, ran.err
    progress = [line for line in ran.err.splitlines() if line.startswith(("plan:", "apply:"))]
    assert progress[-1] == "apply: 4/4 changes, 4 requests, 0 retries"
    assert "plan: 2/2 sites, 3 requests, 0 retries" in progress


def test_the_apply_bar_moves_as_each_change_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar of changes asks done() each time it is drawn, so it moves between sites' ends."""
    made: list[_output._PolledBars] = []

    class Recording(_output._PolledBars):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(_output, "_PolledBars", Recording)
    out = Output("plain", bars=True)
    out._err = Console(file=io.StringIO(), force_terminal=True, width=100)
    done = 0
    with out.progress("apply", 5, lambda: (done, 0), done=lambda: done):
        done = 3  # three changes ended; no site has, so no on_progress was called
        made[0].get_renderable()  # a draw, as rich's refresh thread makes ten times a second
        assert made[0].tasks[0].completed == 3
    assert made[0].tasks[0].completed == 5


@pytest.mark.parametrize("command", ["pull", "export"])
def test_pull_and_export_say_when_a_listing_repeats_an_event(
    cli: Cli, fake: FakeFathom, command: str
) -> None:
    """A listing that shows an event twice: pull and export write it once, and say so."""
    first = fake.events("SITE1")[0]["id"]
    repeating_listing(fake, "SITE1")
    ran = cli(command, "SITE1")
    assert ran.code == 0, ran.err
    assert (
        f"{command} SITE1: the listing showed 1 event more than once ({first}); each counts once"
    ) in ran.err
    if command == "pull":
        assert [e["id"] for e in json.loads(ran.out)["sites"]["SITE1"]].count(first) == 1
    else:
        assert ran.out.count('name = "Sign-up"') == 1


def test_export_never_replaces_a_file_made_while_it_ran(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that appears at --out after the first look is left as it is: exit 2."""
    target = tmp_path / "goals.toml"
    real = _export._out_path

    def looked_before_the_file_was_made(args: Any) -> Path | None:
        found = real(args)
        target.write_text("written by someone else\n")
        return found

    monkeypatch.setattr(_export, "_out_path", looked_before_the_file_was_made)
    ran = cli("export", "SITE1", "--out", str(target))
    assert ran.code == 2
    assert target.read_text() == "written by someone else\n"
    assert f"export: {target} appeared while exporting; give --force" in ran.err
