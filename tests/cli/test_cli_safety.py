"""The command line is safe to pipe and to trust, whatever the API or the user hands it.

Output files are replaced whole or not at all; control characters in names and
messages are shown escaped in every output mode; hostile sync files and bad
connection settings are input errors (exit 2) with a clear line; a sync that
could list no site says so.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fathom_events._cli import _syncfile, main
from fathom_events._cli._output import escape_controls, json_text, replace_file
from fathom_events._cli._syncfile import SyncFileError, parse_sync_file
from fathom_events.testing import FakeFathom, Fault
from tests.cli.test_cli import ANSI, TOKEN, Cli, in_process_cli, run_cli, subprocess_env
from tests.support.hostile import RawRequest, RawServer, http

# Names a hostile (or careless) account can hold: an escape sequence that clears the
# screen, a line break and a tab that would forge rows, rich markup, a carriage return
# (a CSV reader ends the line there), a C1 CSI, a bidi override and a line separator.
HOSTILE_NAMES = [
    "a\x1b[2Jb",
    "x\nFAKE ROW",
    "t\tab",
    "[red]r[/red]",
    "cr\rFAKE",
    "c1\x9b31m",
    "bidi\u202eevil",
    "ls\u2028FAKE",
]
ESCAPED_NAMES = [
    "a\\x1b[2Jb",
    "x\\nFAKE ROW",
    "t\\tab",
    "[red]r[/red]",
    "cr\\rFAKE",
    "c1\\x9b31m",
    "bidi\\u202eevil",
    "ls\\u2028FAKE",
]
# What must never reach a terminal raw (tab and newline are checked separately).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HOSTILE_MESSAGE = "bad \x1b]0;owned\x07 \x1b[31mred\nFAKE LINE\u202e"
# Shown escaped (the reader may fold the message's line break into a space).
ESCAPED_MESSAGE = re.compile(r"bad \\x1b\]0;owned\\x07 \\x1b\[31mred(\\n| )FAKE LINE\\u202e")


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(2, 2)  # SITE1, SITE2
    for name in HOSTILE_NAMES:
        fake.add_event("HOSTILE", name)
    return fake


@pytest.fixture(name="url")
def _url(thread_url: str) -> str:
    """This file's fake, served from a thread (conftest's ``thread_url``)."""
    return thread_url


@pytest.fixture(name="cli")
def _cli(capsys: pytest.CaptureFixture[str], url: str) -> Cli:
    return in_process_cli(capsys, url)


@pytest.fixture(name="terminal")
def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich believes stdout and stderr are terminals."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "200")


def assert_safe_for_a_terminal(text: str) -> None:
    """No control character, bidi control or line separator but rich's own."""
    rich_redraw = "\r\x1b[2K"  # a progress bar going back to the start of its line
    assert not UNSAFE.search(ANSI.sub("", text.replace(rich_redraw, ""))), ascii(text)
    assert "\x1b[2J" not in text
    assert "\x1b]" not in text


def tmp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- output files: replaced whole, or not at all ---------------------------------------------


def test_pull_keeps_the_old_file_when_no_site_can_be_read(url: str, tmp_path: Path) -> None:
    """When every site fails, `pull --out FILE` leaves FILE byte for byte and says so; exit 1."""
    out = tmp_path / "events.json"
    old = b'{"sites": {"SITE1": ["yesterday\'s events"]}}\n\x00\xff'
    out.write_bytes(old)
    ran = run_cli("pull", "GONE1", "GONE2", "--out", str(out), "--base-url", url, "--token", TOKEN)
    assert ran.code == 1
    assert out.read_bytes() == old
    assert tmp_files(tmp_path) == []
    assert "fathom-events: pull GONE1: 404: " in ran.err
    assert f"fathom-events: pull: no site could be read; {out} was left as it was\n" in ran.err
    assert ran.out == ""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_pull_keeps_the_old_file_when_writing_fails(
    fake: FakeFathom, url: str, tmp_path: Path
) -> None:
    """A write that fails half-way (the file size limit) leaves the old file and no temp file."""
    for number in range(60):
        fake.add_event("SITE1", f"Event number {number}")
    out = tmp_path / "events.csv"
    old = b"site_id,id,name,currency,created_at\nOLD,ROW,kept,,2020-01-01T00:00:00+00:00\n"
    out.write_bytes(old)
    connection = ["--base-url", url, "--token", TOKEN]
    # Writes past 1,000 bytes fail with EFBIG (Python ignores SIGXFSZ), as on a full disk.
    script = (
        "import resource, runpy, sys;"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000));"
        "sys.argv = ['fathom-events', *sys.argv[1:]];"
        "runpy.run_module('fathom_events', run_name='__main__')"
    )
    done = subprocess.run(  # noqa: S603 - our own entry point, with our arguments
        [sys.executable, "-c", script, "pull", "SITE1", "--out", str(out), *connection],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert out.read_bytes() == old
    assert tmp_files(tmp_path) == []
    assert done.stderr.endswith(f"fathom-events: File too large: {out}\n")
    assert "unexpected" not in done.stderr


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, OSError])
def test_an_interrupted_write_leaves_the_old_file(
    tmp_path: Path, interrupt: type[BaseException]
) -> None:
    """Ctrl-C (or an error) in the middle of writing removes the temp file; the old one stays."""
    out = tmp_path / "events.json"
    out.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new, and then"
        raise interrupt

    with pytest.raises(interrupt):
        replace_file(out, chunks())
    assert out.read_bytes() == b"old"
    assert tmp_files(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and umask")
def test_a_new_file_gets_the_umask_mode_and_an_old_file_keeps_its_mode(
    cli: Cli, tmp_path: Path
) -> None:
    """A new --out file gets 0666 less the umask (not 0600); a replaced file keeps its mode."""
    new = tmp_path / "new.json"
    umask = os.umask(0o027)
    try:
        assert cli("pull", "SITE1", "--out", str(new)).code == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    old = tmp_path / "old.csv"
    old.write_text("old\n")
    old.chmod(0o604)
    assert cli("pull", "SITE1", "--out", str(old)).code == 0
    assert stat.S_IMODE(old.stat().st_mode) == 0o604
    assert old.read_text().startswith("site_id,")


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and /dev/null are POSIX here")
def test_out_through_a_symlink_and_to_dev_null(cli: Cli, tmp_path: Path) -> None:
    """--out LINK replaces the file it points to (the link stays); --out /dev/null still works."""
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert cli("pull", "SITE1", "--out", str(link)).code == 0
    assert link.is_symlink()
    assert list(json.loads(real.read_text())["sites"]) == ["SITE1"]
    assert cli("pull", "SITE1", "--out", os.devnull).code == 0
    assert stat.S_ISCHR(Path(os.devnull).stat().st_mode)
    assert tmp_files(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="/dev/stdout is POSIX")
def test_out_dev_stdout_writes_to_a_piped_stdout(url: str) -> None:
    """--out /dev/stdout writes the events to stdout when it is a pipe, as on a terminal."""
    ran = run_cli("pull", "SITE1", "--out", "/dev/stdout", "--base-url", url, "--token", TOKEN)
    assert ran.code == 0, ran.err
    document, end = json.JSONDecoder().raw_decode(ran.out)
    assert list(document["sites"]) == ["SITE1"]
    assert ran.out[end:].endswith(" into /dev/stdout\n")  # the summary follows the file


def test_pull_help_says_when_the_file_is_replaced(capsys: pytest.CaptureFixture[str]) -> None:
    """`pull --help` says FILE is replaced only once the pull is done, and the exit codes."""
    assert main(["pull", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "FILE is left as it was" in text
    assert "exit 1" in text


# -- control characters: escaped in every mode --------------------------------------------------


def test_escape_controls_table() -> None:
    """Each unsafe character becomes a visible escape; everything else is kept."""
    cases = {
        "plain, é, 日本, emoji 🎉, back\\slash": "plain, é, 日本, emoji 🎉, back\\slash",
        "\x00\x07\x08\t\n\x0b\x0c\r\x1b\x1f": "\\x00\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x1b\\x1f",
        "\x7f\x80\x85\x9b\x9f\xa0": "\\x7f\\x80\\x85\\x9b\\x9f\xa0",
        "\u202a\u202e\u2066\u2069\u2028\u2029": "\\u202a\\u202e\\u2066\\u2069\\u2028\\u2029",
        "\ud800 \udcff": "\\ud800 \\udcff",
        "[bold]x[/]": "[bold]x[/]",
    }
    for raw, shown in cases.items():
        assert escape_controls(raw) == shown
    assert escape_controls("a\nb\x1bc", keep="\n") == "a\nb\\x1bc"


def test_json_text_escapes_what_the_encoder_lets_through() -> None:
    """JSON keeps non-ASCII text but escapes C1, bidi, separators and lone surrogates as \\uXXXX."""
    document = {"name": "é\x1b\x9b\u202e\u2028\ud800\n", "k\x7f": 1}
    text = json_text(document)
    assert "é" in text
    assert json.loads(text) == document
    assert_safe_for_a_terminal(text)
    assert "\ud800" not in text
    text.encode()  # no lone surrogate left to stop a UTF-8 writer


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_plain_list_shows_each_name_escaped_on_one_row(
    cli: Cli, fake: FakeFathom, quiet: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain lines (a pipe, or --quiet on a terminal): one row per event, names escaped."""
    if quiet:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
    ran = cli("list", "HOSTILE", *quiet)
    assert ran.code == 0
    rows = [line.split("\t") for line in ran.out.split("\n")[:-1]]
    assert [row[1] for row in rows] == ESCAPED_NAMES
    assert [row[0] for row in rows] == [event["id"] for event in fake.events("HOSTILE")]
    assert all(len(row) == 3 for row in rows)
    assert_safe_for_a_terminal(ran.out)


def test_terminal_table_shows_names_escaped_and_markup_as_text(cli: Cli, terminal: None) -> None:
    """On a terminal the table holds each name escaped, one line each; markup stays text."""
    ran = cli("list", "HOSTILE")
    assert ran.code == 0
    shown = ANSI.sub("", ran.out)
    for name in ESCAPED_NAMES:
        assert re.search(rf"│ {re.escape(name)} +│", shown), name
    assert_safe_for_a_terminal(ran.out)
    assert not re.search(r"^│? *FAKE", shown, re.MULTILINE)


def test_json_list_gives_names_exactly_and_escapes_the_rest(cli: Cli) -> None:
    """`--json` round-trips every name exactly, yet no raw control, bidi or separator is printed."""
    ran = cli("--json", "list", "HOSTILE")
    assert ran.code == 0
    assert [event["name"] for event in json.loads(ran.out)] == HOSTILE_NAMES
    assert_safe_for_a_terminal(ran.out)


def test_single_commands_show_the_name_escaped(cli: Cli, fake: FakeFathom) -> None:
    """create, get and update print the name escaped in plain lines."""
    created = cli("create", "SITE1", "a\x1b[2Jb\tc")
    assert created.code == 0
    assert created.out.split("\t")[1] == "a\\x1b[2Jb\\tc"
    assert fake.events("SITE1")[-1]["name"] == "a\x1b[2Jb\tc"
    event_id = fake.events("HOSTILE")[1]["id"]
    got = cli("get", "HOSTILE", event_id)
    assert got.out.split("\t")[1] == "x\\nFAKE ROW"
    assert got.out.count("\n") == 1


def test_pull_json_file_round_trips_names_and_csv_quotes_line_breaks(
    cli: Cli, tmp_path: Path
) -> None:
    """Pulled JSON holds every name exactly; CSV keeps values as they are, quoted, one row each."""
    as_json = tmp_path / "events.json"
    assert cli("pull", "HOSTILE", "--out", str(as_json)).code == 0
    raw = as_json.read_text(encoding="utf-8")
    assert [e["name"] for e in json.loads(raw)["sites"]["HOSTILE"]] == HOSTILE_NAMES
    assert_safe_for_a_terminal(raw)
    as_csv = tmp_path / "events.csv"
    assert cli("pull", "HOSTILE", "--out", str(as_csv)).code == 0
    with as_csv.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert [row[2] for row in rows[1:]] == HOSTILE_NAMES
    assert all(len(row) == 5 for row in rows)


LONE_SURROGATE_PAGE = (
    b'{"object": "list", "url": "/v1/sites/S/events", "has_more": false, "data": [{"id": "ID1",'
    b' "object": "event", "name": "lone \\ud800 surrogate", "currency": null,'
    b' "created_at": "2026-01-02 03:04:05"}]}'
)


def test_pull_of_a_lone_surrogate_name_does_not_crash(tmp_path: Path) -> None:
    """A name holding a lone surrogate never stops the JSON or CSV writer, nor the terminal."""
    server = RawServer(lambda _: http(200, LONE_SURROGATE_PAGE))
    with server.serve_in_thread() as url:
        connection = ["--base-url", url, "--token", TOKEN]
        runs = [run_cli("list", "S", *connection)]
        for fmt in ("json", "csv"):
            runs.append(run_cli("pull", "S", "--format", fmt, *connection))
            runs.append(run_cli("pull", "S", "--out", str(tmp_path / f"x.{fmt}"), *connection))
    for ran in runs:
        assert ran.code in (0, 1), ran.err
        assert "unexpected" not in ran.err
        assert "Traceback" not in ran.err


def test_a_server_message_with_escapes_is_one_escaped_line(cli: Cli, fake: FakeFathom) -> None:
    """An API error message holding escape sequences and a newline is one line, escaped."""
    fake.inject(Fault.respond(400, json={"error": HOSTILE_MESSAGE}), method="GET")
    ran = cli("list", "SITE1")
    assert ran.code == 1
    assert ran.err.count("\n") == 1
    assert ESCAPED_MESSAGE.search(ran.err)
    assert_safe_for_a_terminal(ran.err)


def test_debug_traceback_and_retry_log_are_escaped(cli: Cli, fake: FakeFathom) -> None:
    """With --debug the retry log and the traceback show the server's message escaped too."""
    fake.inject(Fault.respond(503, json={"error": HOSTILE_MESSAGE}, headers={"Retry-After": "0"}))
    fake.inject(Fault.respond(400, json={"error": HOSTILE_MESSAGE}))
    ran = cli("list", "SITE1", "--debug")
    assert ran.code == 1
    assert "Traceback" in ran.err
    assert ESCAPED_MESSAGE.search(ran.err.splitlines()[-1])
    assert_safe_for_a_terminal(ran.err)


def test_failed_sites_in_pull_and_sync_are_escaped(
    cli: Cli, fake: FakeFathom, tmp_path: Path, terminal: None
) -> None:
    """Failure lines of pull and sync (site ids, messages) are escaped, bars or not."""
    fake.inject(Fault.respond(400, json={"error": HOSTILE_MESSAGE}), path="*/SITE2/*", times=2)
    pulled = cli("pull", "SITE1", "SITE2", "--out", str(tmp_path / "x.json"))
    assert pulled.code == 1
    assert re.search(f"fathom-events: pull SITE2: 400: {ESCAPED_MESSAGE.pattern}", pulled.err)
    assert_safe_for_a_terminal(pulled.err)
    path = tmp_path / "sync.toml"
    path.write_text('sites = ["SITE1", "SITE2", "NO\\u001b[2JPE"]\n[[events]]\nname = "X"\n')
    synced = cli("sync", str(path), "--dry-run")
    assert synced.code == 1
    listed = f"fathom-events: plan SITE2: could not list its events: 400: {ESCAPED_MESSAGE.pattern}"
    assert re.search(listed, synced.err)
    assert "fathom-events: plan NO\\x1b[2JPE: could not list" in synced.err
    assert_safe_for_a_terminal(synced.out + synced.err)


def test_a_hostile_raw_answer_is_shown_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """A raw server's reason phrase and plain-text body with escapes reach stderr escaped."""

    def reply(request: RawRequest) -> bytes:
        body = b"\x1b[2J\x1b]0;owned\x07 not json\r\nFAKE"
        return http("418 \x1b[5mteapot", body, {"Content-Type": "text/plain"})

    server = RawServer(reply)
    with server.serve_in_thread() as url:
        code = main(["list", "SITE1", "--base-url", url, "--token", TOKEN])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert_safe_for_a_terminal(err)


def test_user_input_echoed_in_errors_is_escaped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A base URL, a file name or a choice the user typed comes back escaped."""
    monkeypatch.delenv("FATHOM_API_TOKEN", raising=False)
    for args in (
        ["list", "S", "--token", "t", "--base-url", "http://fathom.example/\x1b[2J"],
        ["list", "S", "--token", "t", "--base-url", "ftp://x/\x1b[2J"],
        ["pull", "S", "--format", "x\x1b[2J"],
        ["sync", str(tmp_path / "no\x1b[2Jsuch.toml"), "--token", "t"],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "\\x1b[2J" in err
        assert_safe_for_a_terminal(err)


# -- the sync file: hostile files are input errors ---------------------------------------------

DEEP_ARRAY = 'sites = ["A"]\n[[events]]\nname = "x"\nx = ' + "[" * 100_000 + "]" * 100_000 + "\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (DEEP_ARRAY, 4),
        ('sites = ["A"]\n\n\nx = ' + "{ a = " * 5000 + "1" + " }" * 5000 + "\n", 4),
        ('sites = ["A"]\nx = [\n' + "[\n" * 40 + "]\n" * 40 + "]\n", 34),
        # tomllib takes quadratic time over a long dotted key or table header
        ('sites = ["A"]\n' + ".".join(["a"] * 50_000) + " = 1\n", 2),
        ('sites = ["A"]\n\n[' + ".".join(["a"] * 50_000) + "]\n", 3),
    ],
)
def test_a_deeply_nested_sync_file_is_an_input_error_with_its_line(
    cli: Cli, tmp_path: Path, text: str, line: int
) -> None:
    """Nesting deeper than a sync file can use is exit 2 and FILE:LINE, not a RecursionError."""
    path = tmp_path / "deep.toml"
    path.write_text(text)
    ran = cli("sync", str(path))
    assert ran.code == 2, ran.err
    assert ran.err.startswith(f"fathom-events: {path}:{line}: nested too deeply")
    assert ran.err.count("\n") == 1


def test_nesting_the_reader_cannot_take_is_an_input_error_without_a_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the TOML reader still run out of stack, the file is refused as nested too deeply."""
    monkeypatch.setattr(_syncfile, "MAX_NESTING", 10**9)
    with pytest.raises(SyncFileError) as caught:
        parse_sync_file(DEEP_ARRAY, "s.toml")
    assert caught.value.line is None
    assert caught.value.problem.startswith("nested too deeply")


def test_nesting_in_strings_and_comments_is_not_counted() -> None:
    """Brackets and dots inside strings and comments are text, not nesting."""
    many = "[{." * 50
    text = (
        f'sites = ["A"] # {many}\n[[events]]\nname = "1{many}"\n[[events]]\n'
        f'name = \'2{many}\'\n[[events]]\nname = """\n3{many}"""\n'
    )
    names = [spec.name for spec in parse_sync_file(text).events]
    assert names == [f"1{many}", f"2{many}", f"3{many}"]


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (b'sites = ["A"]\n[[events]]\nname = "x"\nn = ' + b"1" * 5000 + b"\n", 4, "number"),
        (b"sites = [0x" + b"f" * 5000 + b"]\n", 1, "got an int of 20000 bits"),
        (b'sites = ["A"]\n[[events]]\nname = 0x' + b"f" * 5000 + b"\n", 3, "got int"),
        (
            b'sites = ["A"]\n[[events]]\nname = "x"\ncurrency = 0o' + b"7" * 5000,
            4,
            "an int of 15000 bits",
        ),
        (b'sites = ["A\x00"]\n', 1, "not valid TOML: illegal character '\\x00'"),
        (b'sites = ["A"]\n[[events]]\nname = "x\\u0000\x1b"\n', 3, "not valid TOML"),
        (b'sites = ["A"]\n\xff\xfe\n', 2, "is not UTF-8 text"),
        (b'sites = ["A"]\n[[events]]\nname = 1979-05-27\n', 3, "must be a string, got date"),
        (b'sites = [["A"]]\n[[events]]\nname = "x"\n', 1, "must be a non-empty string"),
        (
            b'sites = [\n  "A",\n' + b'  "S",\n' * 30_000 + b"]\n[[events]]\nname = 'x'\n",
            4,
            "'S' is listed twice",
        ),
    ],
)
def test_hostile_sync_files_are_input_errors(
    cli: Cli, tmp_path: Path, data: bytes, line: int, problem: str
) -> None:
    """Huge numbers, NUL bytes, bad bytes, wrong types and huge arrays: exit 2, FILE:LINE."""
    path = tmp_path / "hostile.toml"
    path.write_bytes(data)
    ran = cli("sync", str(path))
    assert ran.code == 2, ran.err
    assert ran.err.startswith(f"fathom-events: {path}:{line}: ")
    assert problem in ran.err
    assert ran.err.count("\n") == 1
    assert_safe_for_a_terminal(ran.err)


def test_a_sync_file_too_large_to_be_one_is_refused(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file beyond the size cap (or an endless one) is refused before it is read whole."""
    monkeypatch.setattr(_syncfile, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.toml"
    path.write_text('sites = ["A"]\n' + "# padding\n" * 200)
    ran = cli("sync", str(path))
    assert ran.code == 2
    assert ran.err.endswith(f"{path}: is larger than 1,000 bytes, too large for a sync file\n")


# -- sync: no site could be listed -------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_a_sync_that_lists_no_site_says_so(
    cli: Cli, fake: FakeFathom, tmp_path: Path, dry_run: list[str]
) -> None:
    """When every site fails to list, sync names each one and says nothing could be done; exit 1."""
    path = tmp_path / "sync.toml"
    path.write_text('sites = ["GONE1", "GONE2"]\n[[events]]\nname = "X"\n')
    ran = cli("sync", str(path), *dry_run)
    assert ran.code == 1
    assert "nothing to change" not in ran.out
    assert ran.out.splitlines()[-1] == "nothing done: none of the 2 sites could be listed"
    assert "fathom-events: plan GONE1: could not list its events: 404: " in ran.err
    assert "fathom-events: plan GONE2: could not list its events: 404: " in ran.err
    assert {r.method for r in fake.requests} == {"GET"}


def test_a_sync_with_nothing_to_change_on_the_sites_it_could_list(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """Nothing to change where sites were listed, but some were not: both are said; exit 1."""
    path = tmp_path / "sync.toml"
    path.write_text('sites = ["SITE1", "GONE"]\n[[events]]\nname = "Signed up to newsletter #1"\n')
    ran = cli("sync", str(path))
    assert ran.code == 1
    assert ran.out.splitlines()[-1] == (
        "nothing to change on the 1 site that could be listed; 1 site could not be listed"
    )


def test_a_sync_that_lists_no_site_in_json(cli: Cli, tmp_path: Path) -> None:
    """In JSON the plan names every site that failed and says the sync is not ok."""
    path = tmp_path / "sync.toml"
    path.write_text('sites = ["GONE1", "GONE2"]\n[[events]]\nname = "X"\n')
    ran = cli("--json", "sync", str(path))
    assert ran.code == 1
    document = json.loads(ran.out)
    assert document["ok"] is False
    assert sorted(document["plan"]["failed"]) == ["GONE1", "GONE2"]


# -- bad connection settings: exit 2, one line naming the option ---------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:99999/v1",
        "http://127.0.0.1:0/v1",
        "https://h:abc/",
        "https://127.0.0.1\\@evil.example/v1",
        "http://127.0.0.1/v 1",
        "http://127.0.0.1/v1\n",
        "\thttps://api.usefathom.com/v1",
    ],
)
def test_a_bad_base_url_is_exit_2_naming_the_option(base_url: str) -> None:
    """A bad port, a backslash or whitespace in --base-url: one line naming it, exit 2."""
    ran = run_cli("list", "SITE1", "--base-url", base_url, "--token", TOKEN)
    assert ran.code == 2, ran.err
    assert ran.err.startswith("fathom-events: --base-url")
    assert ran.err.count("\n") == 1
    assert "unexpected" not in ran.err
    assert_safe_for_a_terminal(ran.err)


BAD_TOKENS = [
    pytest.param(b"s3cr\x1b[2Jet", id="escape"),
    pytest.param(b"s3cr\x7fet", id="DEL"),
    pytest.param(b"s3cr et", id="space"),
    pytest.param(b"s3cr\xffet", id="not-utf8"),  # arrives as a lone surrogate, \udcff
    pytest.param("s3cr\u00e9t".encode(), id="non-ascii"),
]


@pytest.mark.skipif(sys.platform == "win32", reason="argv and environ as bytes are POSIX")
@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("source", ["--token", "FATHOM_API_TOKEN"])
def test_a_bad_token_is_exit_2_naming_where_it_came_from(
    url: str, fake: FakeFathom, token: bytes, source: str
) -> None:
    """A token holding a control character, whitespace or bad bytes: exit 2, never echoed."""
    args = [sys.executable.encode(), b"-m", b"fathom_events", b"list", b"SITE1"]
    args += [b"--base-url", url.encode()]
    env = {k.encode(): v.encode() for k, v in subprocess_env().items()}
    if source == "--token":
        args += [b"--token", token]
    else:
        env[b"FATHOM_API_TOKEN"] = token
    done = subprocess.run(args, capture_output=True, timeout=60, env=env, check=False)  # noqa: S603
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.startswith(f"fathom-events: {'$' if source != '--token' else ''}{source}: ")
    assert err.count("\n") == 1
    assert b"s3cr" not in done.stderr + done.stdout
    assert fake.requests == []


@pytest.mark.skipif(sys.platform == "win32", reason="argv as bytes is POSIX")
@pytest.mark.parametrize(
    "args",
    [
        [b"create", b"SITE1", b"caf\xe9"],
        [b"update", b"SITE1", b"EVENT", b"--name", b"\xff"],
        [b"delete", b"SITE1", b"\xff"],
        [b"get", b"SITE1\xff", b"EVENT"],
        [b"pull", b"SITE1", b"\xff"],
    ],
)
def test_arguments_that_are_not_utf8_are_exit_2(
    url: str, fake: FakeFathom, args: list[bytes]
) -> None:
    """A name or id that is not valid text (bad bytes in argv) is bad input: exit 2, not sent."""
    command = [sys.executable.encode(), b"-m", b"fathom_events", *args]
    command += [b"--base-url", url.encode(), b"--token", TOKEN.encode()]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)  # noqa: S603
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.count("\n") == 1
    assert "unexpected" not in err
    assert fake.requests == []
