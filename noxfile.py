"""The test suite on every supported Python: ``python -m nox`` (``pip install -e ".[test]"``).

``.ci/run`` runs the README's test command (with coverage) on the Python it is
started with, 3.11, and then ``python -m nox -s tests-3.10 tests-3.12
tests-3.13``: the same suite on every other version this project supports. A
version with no interpreter on the machine is skipped, and nox says which.
Locally, ``python -m nox`` runs all four, and ``python -m nox -s tests-3.12``
one.

The machines keep their other Pythons in pyenv, whose ``python3.X`` shims
answer only for the versions pyenv is told to use: each installed 3.10-3.13
is added to ``PYENV_VERSION`` here, behind the one in use, so that nox finds
them as it finds any ``python3.X`` on the PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import nox

#: Every version the package supports (its classifiers say the same; a test checks).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.error_on_missing_interpreters = False  # skipped, and said, where one is absent
nox.options.reuse_existing_virtualenvs = False


def _let_pyenv_find_every_python() -> None:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return

    def ask(*args: str) -> str:
        done = subprocess.run([pyenv, *args], capture_output=True, text=True, check=False)  # noqa: S603 - pyenv, asked what it has
        return done.stdout if done.returncode == 0 else ""

    installed = [v for v in ask("versions", "--bare").split() if re.fullmatch(r"3\.1[0-3]\.\d+", v)]
    in_use = os.environ.get("PYENV_VERSION") or ask("version-name").strip()
    wanted = [*in_use.split(":"), *installed] if in_use else installed
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(v for v in wanted if v))


_let_pyenv_find_every_python()


#: Passed on to the suite as they are: ``.ci/run`` sets it so that a Redis test that cannot
#: run (no redis-server) fails rather than skips (tests/support/redis.py).
PASSED_ENV = ("FATHOM_EVENTS_REQUIRE_REDIS",)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite, installed as the README installs it."""
    session.install("-e", ".[test]")
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs, env=env)
