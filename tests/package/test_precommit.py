"""The pre-commit hooks run the linters exactly as CI runs them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hooks_run_the_linters_of_ci() -> None:
    """Each hook is one of .ci/run's ruff or mypy commands, and each of those has a hook."""
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    hooks = re.findall(r"^ +entry: (.+)$", config, re.MULTILINE)
    assert re.findall(r"^ +language: (.+)$", config, re.MULTILINE) == ["unsupported"] * len(hooks)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    linters = [line for line in ci if line.startswith(("ruff ", "mypy "))]
    # A hook is given the changed files where CI gives `.`; --force-exclude keeps ruff's
    # own exclusions for files named on the command line, as `.` has them.
    assert sorted(hook.replace(" --force-exclude", "") for hook in hooks) == sorted(
        line.removesuffix(" .") for line in linters
    )
    assert len(linters) == 3
