"""The README is a front page whose promises match what CI, the package and the docs do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.readme import DOCS, README, ROOT, section

SCRIPT = Path(sys.executable).parent / "fathom-events"
MAIN_JOB = 'pip install ".[cli]" && fathom-events demo'
#: The most lines the README may have: a front page, the rest is in docs/ (issue 22).
FRONT_PAGE_LINES = 250


def setup_commands() -> list[str]:
    return re.findall(r"```console\n(.+?)\n```", section(README, "Set-up"))


def test_readme_is_a_front_page() -> None:
    """README.md holds at most 250 lines: what the package is, how to start, and the way in."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= FRONT_PAGE_LINES, len(lines)


def test_readme_links_lead_to_files_of_the_checkout() -> None:
    """Each relative link of the README names a file that exists, the docs' pages among them."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    relative = [link for link in links if "://" not in link]
    missing = [link for link in relative if not (ROOT / link).is_file()]
    assert missing == []
    linked = {(ROOT / link).resolve() for link in relative}
    pages = {page.resolve() for page in DOCS.glob("*/index.md")} | {DOCS / "tutorial.md"}
    assert pages <= linked


def test_setup_section_has_exactly_two_commands() -> None:
    """The set-up section holds exactly two commands: the main job and the tests."""
    commands = setup_commands()
    assert len(commands) == 2
    assert "pytest" in commands[1]


def test_main_job_is_the_installed_demo() -> None:
    """The main job installs the cli extra and runs the installed `fathom-events demo`."""
    assert setup_commands()[0] == MAIN_JOB


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the README's test command word for word, and fails when it fails."""
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert f"{setup_commands()[1]} || exit 1" in ci


def test_main_job_pulls_syncs_and_converges() -> None:
    """`fathom-events demo` pulls every site, syncs, finds nothing left, and counts retries."""
    env = {k: v for k, v in os.environ.items() if k != "FATHOM_API_TOKEN"}
    done = subprocess.run(  # noqa: S603 - the installed script, as the README runs it
        [str(SCRIPT), "demo"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^pulled [\d,]+ events from 120 sites$", out, re.MULTILINE), out
    assert re.search(r"^sync: 260 created, .* 0 failed;", out, re.MULTILINE), out
    assert "second plan: empty" in out
    stats = re.search(r"requests sent: ([\d,]+), retries: (\d+), elapsed: ", out)
    assert stats is not None, out
    assert int(stats[2]) >= 4  # the scripted 429s and 503s were retried
    assert f"(the fake received {stats[1]})" in out  # the client's count is the server's
    assert "Traceback" not in done.stderr


def test_ci_runs_the_suite_on_every_supported_python() -> None:
    """noxfile.py names every Python the classifiers claim, and .ci/run runs all but 3.11."""
    classifiers = re.findall(
        r'"Programming Language :: Python :: (3\.\d+)"', (ROOT / "pyproject.toml").read_text()
    )
    noxfile = (ROOT / "noxfile.py").read_text()
    listed = re.search(r"^PYTHONS = \[(.*)\]$", noxfile, re.MULTILINE)
    assert listed is not None
    pythons = re.findall(r'"(3\.\d+)"', listed[1])
    assert pythons == classifiers
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    others = " ".join(f"tests-{v}" for v in pythons if v != "3.11")
    assert f"python -m nox -s {others}" in ci
