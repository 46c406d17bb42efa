"""The docs' command-line examples run as shown, against a served fake Fathom.

Each page's ```console blocks (and the README's) are a terminal session, run in
order in a fresh folder against a fresh fake holding CDBUGS ("Signed up"
7E2TJKBV, "Purchased") and WXYZ ("Signed up" K3M9QX2P, "Purchased", "Old promo" IN6NIAKX), made on
5 January 2026 from 09:00 UTC, a minute apart, with
``FATHOM_API_TOKEN`` set and ``--base-url`` pointing at the fake:

* every ``$ fathom-events ...`` line runs (the installed script, no terminal,
  stderr with stdout); each line of output shown under it must come out, in
  that order (whitespace runs compared as one space; lines left out are
  allowed), and its exit code is 0 unless a ``$ echo $?`` below it says
  otherwise;
* ``$ fathom-events fake-server ...`` is started (on a free port), the lines
  it prints first must be those shown (any port), and it must stop cleanly
  (exit 0) on Ctrl-C;
* a ``{code-block}`` with ``:caption: FILE`` writes FILE, as the reader would
  save it, before the commands after it run.

Other lines (``$ curl``, ``$ pip``, ``$ export``) are left to the reader.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import TOKEN
from tests.support.readme import (
    DOCS,
    README,
    ROOT,
    Command,
    File,
    console_session,
    exit_code_shown,
    seeded_fake,
    shown_in_order,
    words,
)

SCRIPT = Path(sys.executable).parent / "fathom-events"
PAGES = sorted(page for page in DOCS.rglob("*.md") if "_build" not in page.parts)
PAGES_WITH_COMMANDS = [
    page
    for page in PAGES
    if any(
        isinstance(s, Command) and s.line.startswith("fathom-events") for s in console_session(page)
    )
]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture(name="seeded_url")
def _seeded_url() -> Iterator[str]:
    """A served fake with the sites and events the docs' sessions start from."""
    with seeded_fake().serve_in_thread() as url:
        yield url


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    return env | {"FATHOM_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def run_fake_server(command: Command, folder: Path) -> None:
    """Start the fake server as shown (on a free port), match its ready line, stop it."""
    argv = [str(SCRIPT), *shlex.split(command.line)[1:]]
    if "--port" in argv:
        argv[argv.index("--port") + 1] = "0"
    server = subprocess.Popen(  # noqa: S603 - the installed script, as the docs run it
        argv, cwd=folder, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert ready.startswith("serving a fake Fathom API at http://127.0.0.1:"), ready
        printed = [ready] + [server.stdout.readline() for _ in command.shown[1:]]
        printed = printed[: len(command.shown)]  # nothing shown: only the ready line is read
        for shown, line in zip(command.shown, printed, strict=True):
            pattern = re.escape(words(shown))
            pattern = re.sub(r"127\\\.0\\\.0\\\.1:(?:\d+|PORT)", r"127\\.0\\.0\\.1:\\d+", pattern)
            assert re.fullmatch(pattern, words(line)), (shown, line)
    finally:
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors


@pytest.mark.parametrize("page", [*PAGES_WITH_COMMANDS, README], ids=page_id)
def test_docs_console_session_runs_as_shown(page: Path, seeded_url: str, tmp_path: Path) -> None:
    """Each `$ fathom-events` line of the page (or README) gives the output and exit code shown."""
    steps = console_session(page)
    ran = 0
    for number, step in enumerate(steps):
        if isinstance(step, File):
            (tmp_path / step.name).write_text(step.text)
            continue
        if not step.line.startswith("fathom-events "):
            continue
        if step.line.startswith("fathom-events fake-server"):
            run_fake_server(step, tmp_path)
            ran += 1
            continue
        expected = exit_code_shown(steps, number)
        argv = [str(SCRIPT), "--base-url", seeded_url, *shlex.split(step.line)[1:]]
        done = subprocess.run(  # noqa: S603 - the installed script, as the docs run it
            argv, cwd=tmp_path, env=environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == expected, (step.line, done.stdout)
        assert shown_in_order(step.shown, done.stdout) == [], (step.line, done.stdout)
        ran += 1
    assert ran >= 1


def test_the_docs_show_commands_on_the_pages_that_teach_them() -> None:
    """The goals guide, the CLI reference and the testing guide each hold commands that run."""
    names = {str(page.relative_to(DOCS)) for page in PAGES_WITH_COMMANDS}
    assert names >= {"howto/goals-as-code.md", "reference/cli.md", "howto/testing.md"}
