"""The command line, `fathom-events`: every command through its real entry point, then details.

Subprocess tests run the installed script or `python -m fathom_events` against
a FakeFathom served from a thread of this process, and check exit codes,
output and what the fake received. In-process tests call `main()` for the
finer points (and so that coverage sees the code).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Protocol

import aiohttp
import attrs
import pytest

from fathom_events import RateLimit, SyncReport
from fathom_events._cli import EXTRA_HINT, _fakeserver, _syncfile, main
from fathom_events._cli._app import _parse, build_parser
from fathom_events._cli._fakeserver import run_fake_server
from fathom_events._cli._output import Output, duration
from fathom_events._cli._sync import estimate_seconds, report_json, show_report
from fathom_events._cli._syncfile import SyncFileError, parse_sync_file
from fathom_events.testing import FakeFathom, Fault

TOKEN = "cli-test-token-s3cret"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SCRIPT = Path(sys.executable).parent / "fathom-events"
NAMES = [
    "Signed up to newsletter #1",
    "Purchased product #2",
    "Started free trial #3",
    "Downloaded whitepaper #4",
]
SYNC_FILE = """\
sites = ["SITE1", "SITE2"]

[[events]]
name = "Signed up to newsletter #1"

[[events]]
name = "Booked a demo"
currency = "euro"

[site.SITE2]
events = [{ name = "Abandoned cart" }]
"""


@attrs.frozen
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(3, 4)  # SITE1..SITE3, four events each
    return fake


@pytest.fixture(name="url")
def _url(fake: FakeFathom) -> Iterator[str]:
    with fake.serve_in_thread() as url:
        yield url


class Cli(Protocol):
    def __call__(self, *args: str) -> Ran: ...


def in_process_cli(capsys: pytest.CaptureFixture[str], url: str) -> Cli:
    """`main()` in this process, pointed at ``url`` with the token."""

    def run(*args: str) -> Ran:
        code = main([*args, "--base-url", url, "--token", TOKEN])
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture(name="cli")
def _cli(capsys: pytest.CaptureFixture[str], url: str) -> Cli:
    """`main()` in this process, pointed at the fake with its token."""
    return in_process_cli(capsys, url)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FATHOM_API_TOKEN", "TTY_COMPATIBLE")}
    return {**env, **extra}


def run_cli(*args: str, script: bool = False, env: dict[str, str] | None = None) -> Ran:
    """Run the real entry point: the installed script, or `python -m fathom_events`."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "fathom_events"]
    done = subprocess.run(  # noqa: S603 - our own entry point, with our arguments
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or subprocess_env(),
        check=False,
    )
    assert TOKEN not in done.stdout + done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def fake_server_process(
    *args: str, exports: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`fake-server ARGS` run by the installed script: the process and its ready line.

    The `export` lines printed after it are read too (into ``exports`` if given):
    the base URL's, and the token's unless `--token` was given.
    """
    process = subprocess.Popen(  # noqa: S603 - our own entry point
        [str(SCRIPT), "fake-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "no serving line"
        line = process.stdout.readline()
        printed = [process.stdout.readline() for _ in range(1 if "--token" in args else 2)]
        if exports is not None:
            exports += printed
        yield process, line
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def fake_server_args(**given: object) -> argparse.Namespace:
    """The arguments `fake-server` runs with when no option is given, but for `given`."""
    args = _parse(["fake-server"])
    for name, value in given.items():
        setattr(args, name, value)
    return args


def names(fake: FakeFathom, site: str) -> list[str]:
    return [event["name"] for event in fake.events(site)]


# -- every command through the real entry point ---------------------------------------


def test_list_prints_tab_separated_events(fake: FakeFathom, url: str) -> None:
    """`fathom-events list` prints one id, name, created_at line per event, oldest first."""
    ran = run_cli("list", "SITE1", "--base-url", url, "--token", TOKEN, script=True)
    assert ran.code == 0, ran.err
    rows = [line.split("\t") for line in ran.out.splitlines()]
    assert rows == [
        [event["id"], event["name"], event["created_at"].isoformat()]
        for event in fake.events("SITE1")
    ]
    assert ran.err == ""


def test_get_of_a_missing_event_is_one_line_and_exit_1(fake: FakeFathom, url: str) -> None:
    """A 404 on `get` is one line on stderr naming the error, exit 1, no traceback."""
    env = subprocess_env(FATHOM_API_TOKEN=TOKEN)
    ran = run_cli("get", "SITE1", "NOPE", "--base-url", url, env=env)
    assert ran.code == 1
    assert ran.out == ""
    assert ran.err.count("\n") == 1
    assert ran.err.startswith("fathom-events: NotFoundError: 404: ")
    assert "/sites/SITE1/events/NOPE" in ran.err
    assert fake.requests[0].token == TOKEN  # the token came from FATHOM_API_TOKEN


def test_create_with_json_prints_the_event(fake: FakeFathom, url: str) -> None:
    """`create --currency euro --json` creates the event and prints it as JSON."""
    ran = run_cli(
        "--json",
        "create",
        "SITE1",
        "Booked",
        "--currency",
        "euro",
        "--base-url",
        url,
        "--token",
        TOKEN,
    )
    assert ran.code == 0, ran.err
    shown = json.loads(ran.out)
    stored = fake.events("SITE1")[-1]
    assert shown == {
        "id": stored["id"],
        "name": "Booked",
        "currency": "euro",
        "created_at": stored["created_at"].isoformat(),
    }
    assert stored["currency"] == "euro"


def test_update_renames_the_event(fake: FakeFathom, url: str) -> None:
    """`update --name` renames the event and prints it with its currency."""
    event_id = fake.events("SITE1")[0]["id"]
    ran = run_cli(
        "update",
        "SITE1",
        event_id,
        "--name",
        "Renamed",
        "--base-url",
        url,
        "--token",
        TOKEN,
        script=True,
    )
    assert ran.code == 0, ran.err
    assert ran.out.split("\t")[:2] == [event_id, "Renamed"]
    assert names(fake, "SITE1")[0] == "Renamed"


def test_delete_removes_the_event(fake: FakeFathom, url: str) -> None:
    """`delete` deletes the event and says so."""
    event_id = fake.events("SITE2")[1]["id"]
    ran = run_cli("delete", "SITE2", event_id, "--base-url", url, "--token", TOKEN)
    assert ran.code == 0, ran.err
    assert ran.out == f"deleted {event_id}\n"
    assert names(fake, "SITE2") == [NAMES[0], *NAMES[2:]]


def test_pull_writes_csv_and_reports_a_failed_site(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """`pull` writes every site it could read as CSV; a missing site is a line and exit 1."""
    out = tmp_path / "events.csv"
    ran = run_cli(
        "pull",
        "SITE1",
        "NOSUCH",
        "SITE2",
        "--out",
        str(out),
        "--base-url",
        url,
        "--token",
        TOKEN,
        script=True,
    )
    assert ran.code == 1
    lines = out.read_text().splitlines()
    assert lines[0] == "site_id,id,name,currency,created_at"
    expected = [
        f"{site},{e['id']},{e['name']},,{e['created_at'].isoformat()}"
        for site in ("SITE1", "SITE2")
        for e in fake.events(site)
    ]
    assert lines[1:] == expected
    assert ran.out == f"pulled 8 events from 2 sites; 1 failed into {out}\n"
    assert "fathom-events: pull NOSUCH: 404: " in ran.err
    assert "pull: 3/3 sites" in ran.err  # plain progress lines: stderr is not a terminal


def test_sync_applies_the_file(fake: FakeFathom, url: str, tmp_path: Path) -> None:
    """`sync FILE` creates what the file names and each site lacks, with plain progress lines."""
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    ran = run_cli("sync", str(path), "--base-url", url, "--token", TOKEN)
    assert ran.code == 0, ran.err
    assert names(fake, "SITE1") == [*NAMES, "Booked a demo"]
    assert names(fake, "SITE2") == [*NAMES, "Booked a demo", "Abandoned cart"]
    assert fake.events("SITE1")[-1]["currency"] == "euro"
    assert ran.out.splitlines() == [
        "plan: 2 sites: 3 to create, 0 to update, 0 to delete, 8 unchanged",
        "sync: 3 created, 0 updated, 0 deleted, 0 failed; 3 requests, 0 retries",
    ]
    progress = ran.err.splitlines()
    # Planning asks the token's abilities first (one request), then lists each site.
    assert re.fullmatch(r"plan: 1/2 sites, [23] requests, 0 retries", progress[0])
    assert progress[1] == "plan: 2/2 sites, 3 requests, 0 retries"
    # Each phase counts its own requests; applying counts changes, not sites.
    assert re.fullmatch(r"apply: [12]/3 changes, [12] requests, 0 retries", progress[2])
    assert progress[3:] == ["apply: 3/3 changes, 3 requests, 0 retries"]


def test_sync_dry_run_prints_plan_count_and_time(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """`sync --dry-run` shows each change, the request count and the time the rate limit costs."""
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    ran = run_cli(
        "sync",
        str(path),
        "--dry-run",
        "--rate-limit",
        "3/10",
        "--base-url",
        url,
        "--token",
        TOKEN,
        script=True,
    )
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        "site\tcreate\trename\tupdate (currency)\tdelete",
        "SITE1\t'Booked a demo'\t\t\t",
        "SITE2\t'Booked a demo', 'Abandoned cart'\t\t\t",
        "plan: 2 sites: 3 to create, 0 to update, 0 to delete, 8 unchanged",
        # The token and 2 list requests were sent: 3 + 3 requests are two bursts of 3, the
        # second 10 s after the answers to the first.
        (
            "dry run: applying would send 3 requests, about 10 s under the rate limit"
            " (3 requests per 10 s: 2 bursts of at most 3, each 10 s after the answers to"
            " the one before)"
        ),
    ]
    assert {r.method for r in fake.requests} == {"GET"}
    assert names(fake, "SITE1") == NAMES


def test_malformed_sync_file_names_the_line_and_sends_nothing(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """A bad currency on line 8 is reported as FILE:8, exit 2, and no request is sent."""
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE.replace('"euro"', '"eur"'))
    ran = run_cli("sync", str(path), "--base-url", url, "--token", TOKEN)
    assert ran.code == 2
    assert ran.err == (
        f"fathom-events: {path}:8: `events` entry 2: currency: must be one of dollar, pound,"
        " euro, yuan, peso, shekel, yen, won, hryvnia, franc, rupee, integer, none; got 'eur'\n"
    )
    assert ran.out == ""
    assert fake.requests == []


def read_lines_in_thread(stream: IO[str]) -> tuple[list[str], threading.Thread]:
    """Collect the lines of ``stream`` from a thread, so they can be waited for with a deadline."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()
    return lines, reader


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_interrupted_sync_says_what_was_done_and_exits_130(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """Ctrl-C during a sync prints the partial report, names the change in flight, exits 130."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background (`pytest &`): the command inherits SIGINT ignored, as a
        # background job should, and Ctrl-C could not reach it.
        pytest.skip("SIGINT is ignored in this process, and so in the command it starts")
    fake.inject(Fault.hang(), method="POST", path="/v1/sites/SITE1/events")
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    with subprocess.Popen(  # noqa: S603 - our own entry point
        [
            sys.executable,
            "-m",
            "fathom_events",
            "sync",
            str(path),
            "--base-url",
            url,
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        err_lines, reader = read_lines_in_thread(process.stderr)
        try:
            deadline = time.monotonic() + 20
            # SITE1's create hangs; SITE2's two creates go through, and the
            # progress line says the command has their answers (not only that
            # the fake stored them).
            while not (
                any(line.startswith("apply: 2/3 changes") for line in err_lines)
                and fake.requests_for("POST", "*/SITE1/*")
            ):
                assert time.monotonic() < deadline, f"the sync did not get going: {err_lines}"
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            out = process.stdout.read()
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(timeout=20)
    err = "".join(err_lines)
    assert process.returncode == 130, err
    assert "interrupted after 2 created, 0 updated, 0 deleted, 0 failed;" in out
    assert err.endswith(
        "fathom-events: sync SITE1: in flight when interrupted (may have taken effect):"
        " create 'Booked a demo'\n"
        "fathom-events: interrupted\n"
    )
    assert "Traceback" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_fake_server_serves_until_interrupted(stop: signal.Signals) -> None:
    """`fake-server` says where it serves, answers HTTP, and exits 0 on SIGINT or SIGTERM."""
    args = ("--port", "0", "--sites", "2", "--events-per-site", "3", "--token", TOKEN)
    with fake_server_process(*args) as (process, line):
        found = re.match(r"serving a fake Fathom API at (http://127\.0\.0\.1:\d+/v1): ", line)
        assert found, line
        assert "2 sites (SITE1..SITE2), 3 events each" in line
        request = urllib.request.Request(  # noqa: S310 - a loopback URL the test chose
            f"{found[1]}/sites/SITE2/events",
            headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert [e["name"] for e in json.load(answer)["data"]] == NAMES[:3]
        process.send_signal(stop)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert out == "stopped after 1 request\n"
    assert err == ""


# -- output modes ------------------------------------------------------------------------


def test_missing_cli_extra_is_a_one_line_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without rich installed the command prints the install hint and exits 2."""
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich now raises ImportError
    assert main(["list", "SITE1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == EXTRA_HINT + "\n"
    assert "pip install 'fathom-events[cli]'" in captured.err
    assert captured.out == ""


def test_json_list_and_get(cli: Cli, fake: FakeFathom) -> None:
    """`--json` prints events as {id, name, currency, created_at}, before or after the command."""
    listed = cli("list", "SITE3", "--json")
    assert listed.code == 0
    first = fake.events("SITE3")[0]
    assert json.loads(listed.out)[0] == {
        "id": first["id"],
        "name": NAMES[0],
        "currency": None,
        "created_at": first["created_at"].isoformat(),
    }
    assert len(json.loads(listed.out)) == 4
    got = cli("--json", "get", "SITE3", first["id"])
    assert json.loads(got.out)["name"] == NAMES[0]


def test_quiet_gives_plain_lines_on_a_terminal(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--quiet` on a terminal gives plain progress lines and results, no bars or tables."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    out = tmp_path / "events.json"
    ran = cli("pull", "SITE1", "SITE2", "--quiet", "--out", str(out))
    assert ran.code == 0
    assert (
        ran.err
        == "pull: 1/2 sites, 2 requests, 0 retries\npull: 2/2 sites, 2 requests, 0 retries\n"
    )
    assert ran.out == f"pulled 8 events from 2 sites into {out}\n"
    document = json.loads(out.read_text())
    assert list(document["sites"]) == ["SITE1", "SITE2"]
    assert document["failed"] == {}
    listed = cli("-q", "list", "SITE1")
    assert listed.out.splitlines()[0].split("\t")[1] == NAMES[0]


def test_pull_to_stdout_in_json(cli: Cli) -> None:
    """`pull` without --out prints the JSON document on stdout, the summary on stderr."""
    ran = cli("pull", "SITE1", "SITE1", "SITE2")
    assert ran.code == 0
    document = json.loads(ran.out)
    assert [len(events) for events in document["sites"].values()] == [4, 4]
    assert ran.err.endswith("pulled 8 events from 2 sites\n")


def test_terminal_gets_tables_and_progress_bars(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a terminal, results are a table and long work shows a bar with sites and requests."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    listed = cli("list", "SITE1")
    assert listed.code == 0
    table = ANSI.sub("", listed.out)
    assert re.search(r"┃ id +┃ name +┃ created_at +┃", table)
    assert f"│ {NAMES[3]} " in table
    pulled = cli("pull", "SITE1", "SITE2", "--out", str(tmp_path / "x.json"))
    assert pulled.code == 0
    bars = ANSI.sub("", pulled.err)
    assert re.search(r"pull +━+ 2/2 sites 2 requests, 0 retries", bars)


def test_debug_shows_the_traceback(cli: Cli) -> None:
    """`--debug` prints the traceback before the one-line error; without it there is none."""
    plain = cli("get", "SITE1", "NOPE")
    assert "Traceback" not in plain.err
    debug = cli("get", "SITE1", "NOPE", "--debug")
    assert debug.code == 1
    assert debug.err.startswith("Traceback (most recent call last):")
    assert debug.err.splitlines()[-1] == plain.err.strip()


def test_debug_logs_retries(cli: Cli, fake: FakeFathom) -> None:
    """With `--debug` each retry is logged on stderr; the call still succeeds."""
    fake.inject(Fault.rate_limited("0"), method="GET")
    ran = cli("list", "SITE1", "--debug")
    assert ran.code == 0
    assert re.search(r"^fathom-events: retrying GET .* 429", ran.err, re.MULTILINE)


def test_single_commands_in_plain_lines(cli: Cli, fake: FakeFathom) -> None:
    """create, update, get and delete print tab-separated lines; an empty list says so."""
    fake.add_site("EMPTY")
    created = cli("create", "EMPTY", "Booked", "--currency", "pound")
    assert created.code == 0
    event_id, name, currency, _ = created.out.rstrip("\n").split("\t")
    assert (name, currency) == ("Booked", "pound")
    updated = cli("update", "EMPTY", event_id, "--currency", "yen", "--name", "Booked!")
    assert updated.out.split("\t")[1:3] == ["Booked!", "yen"]
    got = cli("get", "EMPTY", event_id)
    assert got.out.split("\t")[:2] == [event_id, "Booked!"]  # get carries no currency
    assert cli("delete", "EMPTY", event_id).out == f"deleted {event_id}\n"
    emptied = cli("list", "EMPTY")
    assert (emptied.code, emptied.out, emptied.err) == (0, "", "EMPTY has no events\n")


def test_pull_csv_to_stdout(cli: Cli, fake: FakeFathom) -> None:
    """`pull --format csv` without --out prints the CSV on stdout."""
    ran = cli("pull", "SITE3", "--format", "csv")
    assert ran.code == 0
    assert ran.out.splitlines()[1].startswith(f"SITE3,{fake.events('SITE3')[0]['id']},")
    assert len(ran.out.splitlines()) == 5


def test_dry_run_on_a_terminal_shows_a_table(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a terminal a dry run shows each site's changes as a table, and needs no waiting."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "160")
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    ran = cli("sync", str(path), "--dry-run")
    assert ran.code == 0
    shown = ANSI.sub("", ran.out)
    assert re.search(r"┃ site +┃ create +┃ rename +┃ update \(currency\) +┃ delete +┃", shown)
    assert re.search(r"│ SITE2 +│ 'Booked a demo', 'Abandoned cart' +│", shown)
    assert shown.endswith(
        "dry run: applying would send 3 requests, within the burst of the rate limit"
        " (2,000 requests per 1 h): no waiting\n"
    )


# -- usage and input errors: exit 2, nothing sent ------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "fathom-events: the following arguments are required: COMMAND"),
        (["list"], "fathom-events list: the following arguments are required: SITE"),
        (["list", "S", "--rate-limit", "10/x"], "'10/x' is not N/SECONDS (e.g. 2000/3600)"),
        (
            ["list", "S", "--rate-limit", "10"],
            (
                "argument --rate-limit: '10' is not N/SECONDS (e.g. 2000/3600) or 'off':"
                " say the seconds too (10/3600 is 10 an hour)"
            ),
        ),
        (["list", "S", "--rate-limit", "10/"], "'10/' is not N/SECONDS (e.g. 2000/3600) or 'off'"),
        (
            ["list", "S", "--rate-limit", "fast"],
            "'fast' is not N/SECONDS (e.g. 2000/3600) or 'off' (",
        ),
        (["list", "S", "--rate-limit", "10/ "], "'10/ ' is not N/SECONDS (e.g. 2000/3600)"),
        (["list", "S", "--rate-limit", "/60"], "'/60' is not N/SECONDS (e.g. 2000/3600)"),
        (["list", "S", "--rate-limit", "0/60"], "'0/60' is not N/SECONDS (e.g. 2000/3600)"),
        (["list", "S", "--max-in-flight", "0"], "'0' is not a whole number >= 1"),
        (["pull", "S", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["--base-url", "http://x", "demo"], "--base-url does not apply to demo"),
        (["--max-in-flight", "2", "fake-server"], "--max-in-flight does not apply to fake-server"),
        (["fake-server", "--latency", "-1"], "'-1' is not a number of seconds >= 0"),
        (["list", "S"], "fathom-events: no API token: pass --token or set FATHOM_API_TOKEN"),
        (
            ["list", "S", "--token", "t", "--base-url", "ftp://x"],
            "fathom-events: --base-url: must be an http(s) URL",
        ),
        (
            ["list", "S", "--token", "t", "--base-url", "http://fathom.example/v1"],
            (
                "fathom-events: --base-url http://fathom.example/v1: plain http:// would send"
                " the API token unencrypted; use https://, a loopback host, or pass"
                " --allow-insecure-http if you really mean it"
            ),
        ),
        (["list", "S", "--token", ""], "fathom-events list: argument --token: must not be empty"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad arguments give one line on stderr and exit code 2."""
    monkeypatch.delenv("FATHOM_API_TOKEN", raising=False)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "limit"),
    [("2000/3600", RateLimit(2000, 3600)), ("10/1.5", RateLimit(10, 1.5)), ("off", None)],
)
def test_rate_limit_is_n_per_seconds_or_off(text: str, limit: RateLimit | None) -> None:
    """`--rate-limit N/SECONDS` is N requests per SECONDS; `off` is no limit."""
    args = build_parser().parse_args(["list", "S", "--rate-limit", text])
    assert args.rate_limit == limit


@pytest.mark.skipif(sys.platform == "win32", reason="0.0.0.0 reaches loopback on POSIX")
def test_allow_insecure_http_sends_over_plain_http(
    fake: FakeFathom, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--allow-insecure-http` lets a plain http:// URL to a host that is not loopback be used."""
    # 0.0.0.0 is not a loopback address, yet a connection to it reaches this host.
    insecure = url.replace("127.0.0.1", "0.0.0.0")  # noqa: S104 - a client, not a server
    args = ["list", "SITE1", "--token", TOKEN, "--base-url", insecure]
    assert main(args) == 2
    assert "--allow-insecure-http" in capsys.readouterr().err
    assert fake.requests == []
    assert main([*args, "--allow-insecure-http"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split("\t")[1] == NAMES[0]
    assert len(fake.requests) == 1


def test_fake_server_refuses_an_empty_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fake-server --token ""` is a usage error (exit 2), not a fake with the default token."""

    def never(args: argparse.Namespace, out: Output) -> int:
        pytest.fail(f"the fake server started with token {args.token!r}")

    monkeypatch.setattr(_fakeserver, "fake_server", never)
    assert main(["fake-server", "--token", ""]) == 2
    assert capsys.readouterr().err == (
        "fathom-events fake-server: argument --token: must not be empty"
        " (leave --token out for the default) (see fathom-events fake-server --help)\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["create", "SITE1", " "],
        ["create", "SITE1", "X", "--currency", "bitcoin"],
        ["update", "SITE1", "EVENT"],
        ["pull", "SITE1", "--out", "/no/such/dir/x.json"],
        ["pull", "SITE1", "--format", "csv", "--json"],
        ["sync", "/no/such/sync.toml"],
    ],
)
def test_bad_input_exits_2_before_sending(cli: Cli, fake: FakeFathom, args: list[str]) -> None:
    """Input the API would refuse (or cannot be read or written) exits 2 with nothing sent."""
    ran = cli(*args)
    assert ran.code == 2
    assert ran.err.startswith("fathom-events: ")
    assert ran.err.count("\n") == 1
    assert fake.requests == []


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` and `--version` print and exit 0."""
    assert main(["--version"]) == 0
    assert re.match(r"fathom-events \d", capsys.readouterr().out)
    assert main(["sync", "--help"]) == 0
    assert "--dry-run" in capsys.readouterr().out


# -- sync ----------------------------------------------------------------------------------


def test_sync_prune_and_set_currency(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """--prune deletes events the file does not name; --set-currency rewrites currencies."""
    path = tmp_path / "sync.toml"
    path.write_text(
        'sites = ["SITE1"]\n[[events]]\nname = "Purchased product #2"\ncurrency = "yen"\n'
        '[[events]]\nname = "New"\n'
    )
    ran = cli("sync", str(path), "--prune", "--set-currency", "--yes")
    assert ran.code == 0, ran.err
    assert [(e["name"], e["currency"]) for e in fake.events("SITE1")] == [
        ("Purchased product #2", "yen"),
        ("New", "dollar"),
    ]
    assert "sync: 1 created, 1 updated, 3 deleted, 0 failed; 5 requests, 0 retries" in ran.out
    again = cli("sync", str(path), "--prune")
    assert again.out.endswith("nothing to change: every site has the file's events\n")


def test_sync_with_a_failed_change_exits_1(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """A change the API refuses is reported on stderr; the others are made; exit 1."""
    fake.inject(Fault.respond(422, json={"error": "No."}), method="POST", path="*/SITE2/*")
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    ran = cli("sync", str(path), "--json")
    assert ran.code == 1
    report = json.loads(ran.out)["report"]
    assert (report["created"], report["failed"], report["ok"]) == (2, 1, False)
    assert report["failures"][0]["site_id"] == "SITE2"
    assert "fathom-events: sync SITE2: create 'Booked a demo': 422: No." in ran.err


def test_report_names_changes_in_flight_when_interrupted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Changes cut off by an interrupt are named on stderr and listed in the JSON report."""
    report = SyncReport(cancelled=True)
    report.site("SITE1").interrupted.append("create 'Booked'")
    report.site("SITE2").interrupted.append("delete 'Old'")
    show_report(Output("plain"), report)
    captured = capsys.readouterr()
    assert captured.out.startswith("interrupted after 0 created,")
    assert captured.err == (
        "fathom-events: sync SITE1: in flight when interrupted (may have taken effect):"
        " create 'Booked'\n"
        "fathom-events: sync SITE2: in flight when interrupted (may have taken effect):"
        " delete 'Old'\n"
    )
    assert report_json(report)["interrupted"] == [
        {"site_id": "SITE1", "change": "create 'Booked'"},
        {"site_id": "SITE2", "change": "delete 'Old'"},
    ]


def test_sync_reports_a_site_it_cannot_list(cli: Cli, tmp_path: Path) -> None:
    """A site that cannot be listed is named on stderr; the others are synced; exit 1."""
    path = tmp_path / "sync.toml"
    path.write_text('sites = ["SITE1", "GONE"]\n[[events]]\nname = "X"\n')
    ran = cli("sync", str(path))
    assert ran.code == 1
    assert "fathom-events: plan GONE: could not list its events: 404: " in ran.err
    assert "sync: 1 created" in ran.out


def test_sync_dry_run_json(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """`--dry-run --json` gives the plan's counts, changes and estimate, and changes nothing."""
    path = tmp_path / "sync.toml"
    path.write_text(SYNC_FILE)
    ran = cli("sync", str(path), "--dry-run", "--json", "--rate-limit", "off")
    assert ran.code == 0
    document = json.loads(ran.out)
    assert document["plan"]["create"] == 3
    assert document["plan"]["changes"][1] == {
        "site_id": "SITE2",
        "create": [
            {"name": "Booked a demo", "currency": "euro"},
            {"name": "Abandoned cart", "currency": None},
        ],
        "rename": [],
        "update": [],
        "delete": [],
        "not_renamed": [],
        "repeated": [],
    }
    assert document["estimate"] == {"seconds": 0.0, "rate_limit": None}
    assert {r.method for r in fake.requests} == {"GET"}


def test_estimate_counts_the_windows_beyond_the_first() -> None:
    """Requests within the first burst cost nothing; each further burst of N costs S seconds."""
    limit = RateLimit(2000, 3600)
    assert estimate_seconds(limit, 100, 1900) == 0
    assert estimate_seconds(limit, 100, 1901) == 3600
    assert estimate_seconds(limit, 0, 4000) == 3600
    assert estimate_seconds(limit, 0, 4001) == 7200
    assert estimate_seconds(RateLimit(3, 10), 3, 3) == 10
    assert estimate_seconds(RateLimit(60, 6), 0, 240) == 18
    assert estimate_seconds(limit, 0, 0) == 0
    assert estimate_seconds(None, 10**6, 10**6) == 0
    assert [duration(s) for s in (0.25, 42, 200, 3600, 7500)] == [
        "0.2 s",
        "42 s",
        "3 min 20 s",
        "1 h",
        "2 h 5 min",
    ]


# -- the sync file -------------------------------------------------------------------------

BAD_FILES = [
    ("sites = [\n", 1, "not valid TOML"),
    ('sites = ["A"]\n[[events]]\nname = x\n', 3, "not valid TOML: invalid value (column 8)"),
    ('sites = ["A"]\nprune = true\n', 2, "unknown key 'prune'"),
    ('[[events]]\nname = "x"\n', None, "has no `sites`"),
    ('sites = "A"\n', 1, "`sites` must be a non-empty list"),
    ('sites = [\n  "A",\n  "B",\n  "A",\n]\n[[events]]\nname = "x"\n', 4, "'A' is listed twice"),
    ('sites = ["A", 7]\n[[events]]\nname = "x"\n', 1, "entry 2 must be a non-empty string"),
    ('sites = ["A"]\n', None, "names no events"),
    (
        'sites = ["A"]\n[[events]]\nname = "x"\n[[events]]\nname = "y"\ncurency = "euro"\n',
        6,
        "`events` entry 2: unknown key 'curency'",
    ),
    (
        'sites = ["A"]\nevents = [\n  { name = "x" },\n  { name = "y" },\n  { name = "x" },\n]\n',
        5,
        "`events` entry 3: the event 'x' is already in `events`",
    ),
    ('sites = ["A"]\nevents = [{ currency = "euro" }]\n', 2, "`events` entry 1 has no `name`"),
    ('sites = ["A"]\nevents = ["x"]\n', 2, "`events` entry 1 must be a table"),
    ('sites = ["A"]\nevents = { name = "x" }\n', 2, "`events` must be a list of tables"),
    ('sites = ["A"]\n[[events]]\nname = "  "\n', 3, "name: must not be empty"),
    ('sites = ["A"]\n[[events]]\nname = 5\n', 3, "name: must be a string, got int"),
    (
        'sites = ["A"]\n[[events]]\nname = "x"\n\n[site.B]\nevents = []\n',
        5,
        "[site.B]: 'B' is not in `sites`",
    ),
    (
        'sites = ["A"]\n[[events]]\nname = "x"\n[site.A]\nevnts = []\n',
        5,
        "[site.A]: unknown key 'evnts'",
    ),
    ('sites = ["A"]\nsite = 3\n[[events]]\nname = "x"\n', 2, "`site` must hold one table"),
    ('sites = ["A"]\n[[events]]\nname = "x"\n[site]\nA = 1\n', 5, "[site.A] must be a table"),
    (
        (
            'sites = ["A"]\n[[events]]\nname = "x"\n[[site.A.events]]\nname = "q"\n'
            '[[site.A.events]]\nname = "x"\n'
        ),
        7,
        "[site.A] events entry 2: the event 'x' is already in `events`",
    ),
    (
        'sites = [\n  "A",\n  "B",\n]\n[site.A]\nevents = [{ name = "x" }]\n',
        3,
        (
            "site 'B' gets no events (no [[events]] and no events in [site.B]); with --prune"
            " every event of it would be deleted"
        ),
    ),
    (
        'sites = ["A", "B"]\n[site.A]\nevents = [{ name = "x" }]\n[site.B]\nevents = []\n',
        1,
        "site 'B' gets no events",
    ),
    (
        (
            'sites = ["a b"]\n[[events]]\nname = "x"\n[site."a b"]\nevents = [\n'
            '  { name = "y" },\n  { name = "z", currency = "quid" },\n]\n'
        ),
        7,
        '[site."a b"] events entry 2: currency: must be one of',
    ),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD_FILES)
def test_bad_sync_file_names_line_and_problem(text: str, line: int | None, problem: str) -> None:
    """Each malformed sync file is refused with the line at fault and what is wrong."""
    with pytest.raises(SyncFileError) as caught:
        parse_sync_file(text, "s.toml")
    assert caught.value.line == line
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"s.toml:{line}: " if line else "s.toml: ")


def toml_parsers() -> list[ModuleType]:
    """The parser the reader uses, and tomli (what Python 3.10 uses) when it is installed."""
    used: ModuleType = vars(_syncfile)["tomllib"]  # imported under that name, not re-exported
    parsers = {used.__name__: used}
    with contextlib.suppress(ImportError):
        parsers["tomli"] = importlib.import_module("tomli")
    return list(parsers.values())


@pytest.mark.parametrize("parser", toml_parsers(), ids=lambda parser: parser.__name__)
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("sites = [\n", 1),
        ("sites = [", 1),
        ('sites = [\n  "A",\n\n\n', 2),
        ('sites = ["A"]\nname = "x', 2),
    ],
)
def test_end_of_file_error_is_on_the_last_line_with_content(
    parser: ModuleType, text: str, line: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that ends too soon is refused at its last line with content, whatever the parser."""
    monkeypatch.setattr(_syncfile, "tomllib", parser)
    with pytest.raises(SyncFileError) as caught:
        parse_sync_file(text, "s.toml")
    assert caught.value.line == line
    assert caught.value.problem.startswith("not valid TOML: ")
    assert "column" not in caught.value.problem


def test_sync_file_gives_each_site_common_events_then_its_own() -> None:
    """Common events come first, then the site's extras; other sites get only the common."""
    spec = parse_sync_file(SYNC_FILE)
    desired = spec.desired()
    assert [s.name for s in desired["SITE1"]] == ["Signed up to newsletter #1", "Booked a demo"]
    assert [s.name for s in desired["SITE2"]][-1] == "Abandoned cart"
    assert str(desired["SITE1"][1].currency) == "euro"


def test_sync_file_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    """A file that is not UTF-8 is refused with the line of the first bad byte."""
    path = tmp_path / "sync.toml"
    path.write_bytes(b'sites = ["A"]\n# caf\xe9\n')
    ran = cli("sync", str(path))
    assert ran.code == 2
    assert ran.err == f"fathom-events: {path}:2: is not UTF-8 text\n"


# -- fake-server and demo in-process --------------------------------------------------------


async def test_fake_server_serves_seeded_sites_on_the_given_port() -> None:
    """The fake-server command serves its seeded sites on --port and stops when told."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = fake_server_args(latency=0.01, sites=2, events_per_site=1, port=port)
    stop = asyncio.Event()
    server = asyncio.create_task(run_fake_server(args, Output("json"), stop))
    url = f"http://127.0.0.1:{port}/v1/sites/SITE2/events"
    headers = {"Authorization": f"Bearer {FakeFathom.DEFAULT_TOKEN}"}
    async with aiohttp.ClientSession() as session:
        for _ in range(500):
            try:
                async with session.get(url, headers=headers) as answer:
                    body = await answer.json()
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
    stop.set()
    assert await server == 0
    assert [e["name"] for e in body["data"]] == [NAMES[0]]


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --json` pulls 120 sites, syncs them, and finds a second plan empty."""
    assert main(["demo", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["sites"] == 120
    assert document["pull_failed"] == {}
    assert document["report"]["created"] == document["plan"]["create"] == 260
    assert document["second_plan"]["requests"] == 0
    assert document["retries"] >= 4
    assert document["ok"] is True
