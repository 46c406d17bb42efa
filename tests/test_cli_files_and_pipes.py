"""The command line's output is what the user expects, wherever it goes.

A pipe whose reader has gone (``| head``) ends the command quietly with 141,
as SIGPIPE would.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fathom_events._cli import main
from fathom_events.testing import FakeFathom

from .test_cli import SYNC_FILE, TOKEN, Ran, subprocess_env

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE (13), as a shell reports `yes | head`


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(2, 3)  # SITE1, SITE2
    return fake


@pytest.fixture(name="url")
def _url(thread_url: str) -> str:
    """This file's fake, served from a thread (conftest's ``thread_url``)."""
    return thread_url


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


def assert_quiet_about_the_pipe(err: str) -> None:
    """Nothing on stderr says the pipe broke: no line of ours, no traceback, no 'ignored'."""
    assert "fathom-events:" not in err, err
    assert "Broken pipe" not in err, err
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err


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
