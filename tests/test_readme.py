"""The README's promises match what CI and the package do."""

from __future__ import annotations

import re
from pathlib import Path

from fathom_events._demo import walk_every_endpoint

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```console\n(.+?)\n```", section)


def test_setup_section_has_exactly_two_commands() -> None:
    """The set-up section holds exactly two commands: the main job and the tests."""
    commands = setup_commands()
    assert len(commands) == 2
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the README's test command word for word."""
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup_commands()[1] in ci


async def test_demo_walks_every_endpoint() -> None:
    """The main-job demo calls every endpoint, ending with wipe's GoneError."""
    lines = await walk_every_endpoint([])
    joined = "\n".join(lines)
    for step in ("create", "list", "get", "update", "paginate", "delete", "wipe"):
        assert re.search(rf"^{step}\s*->", joined, re.MULTILINE), step
    assert "GoneError 410" in joined
