"""The documentation site builds from the checkout, and its reference is complete, as read.

The site is built once (``sphinx -W --keep-going -E``, every warning an error,
into a temporary folder) and then read as a reader would: its ``objects.inv``
(every public name, every field), its HTML (every parameter of every entry is
described) and its command-line page (every command, option and exit code of
the real parser). The names come from ``fathom_events.__all__`` and
``fathom_events.testing.__all__`` when the tests run, so a name added there is
checked as it lands.

Without the ``docs`` extra these tests skip, saying how to get it, unless
``FATHOM_EVENTS_REQUIRE_DOCS=1`` is set (``.ci/run`` sets it): then they fail.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import fathom_events
import fathom_events.testing
from fathom_events import PullResult
from fathom_events._cli._app import EXIT_CODES, build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REQUIRE_DOCS_ENV = "FATHOM_EVENTS_REQUIRE_DOCS"
BUILD_COMMAND = "python -m sphinx -W --keep-going -b html docs docs/_build/html"
PUBLIC = [
    (module.__name__, name)
    for module in (fathom_events, fathom_events.testing)
    for name in module.__all__
]


def _docs_tools_missing() -> str | None:
    missing = [name for name in ("sphinx", "myst_parser", "furo", "bs4") if not _importable(name)]
    return f"the docs extra is not installed ({', '.join(missing)})" if missing else None


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module", name="site")
def _site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once from the checkout's docs/ with every warning an error."""
    missing = _docs_tools_missing()
    if missing:
        reason = f"{missing}: pip install -e '.[docs]'"
        if os.environ.get(REQUIRE_DOCS_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_DOCS_ENV}=1 is set, so this fails)", pytrace=False)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q"]
    command += ["-d", str(out / "doctrees"), "-b", "html", str(DOCS), str(out / "html")]
    built = subprocess.run(  # noqa: S603 - Sphinx, on the checkout's own docs
        command, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )
    assert built.returncode == 0, built.stderr
    assert built.stderr == ""
    return out / "html"


@pytest.fixture(scope="module", name="inventory")
def _inventory(site: Path) -> dict[str, dict[str, Any]]:
    """The site's objects.inv, read by Sphinx's own reader: names by role."""
    from sphinx.util.inventory import InventoryFile  # noqa: PLC0415 - only with the docs extra

    with (site / "objects.inv").open("rb") as stream:
        return dict(InventoryFile.load(stream, "", posixpath.join))


def test_the_documented_build_command_is_the_one_ci_runs() -> None:
    """docs/index.md and the README document the build command, and .ci/run runs it (quietly)."""
    assert BUILD_COMMAND in (DOCS / "index.md").read_text()
    assert BUILD_COMMAND in (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert BUILD_COMMAND.replace("-b html", "-q -b html") in ci
    assert f"export {REQUIRE_DOCS_ENV}=1" in ci
    assert "intersphinx" not in (DOCS / "conf.py").read_text().replace("# No intersphinx", "")


def test_every_public_name_has_a_reference_entry(inventory: dict[str, dict[str, Any]]) -> None:
    """Each name of both __all__s is an object of the reference (a class, function or data)."""
    documented = {
        name for role, names in inventory.items() if role.startswith("py:") for name in names
    }
    missing = [
        f"{module}.{name}" for module, name in PUBLIC if f"{module}.{name}" not in documented
    ]
    assert missing == []


def test_every_field_of_every_public_type_has_an_entry(
    inventory: dict[str, dict[str, Any]],
) -> None:
    """Each attrs field of a public class (and what PullResult adds to a dict) is an attribute."""
    attributes = set(inventory["py:attribute"])
    expected = [
        f"{module}.{name}.{field.name}"
        for module, name in PUBLIC
        if attrs.has(value := getattr(sys.modules[module], name))
        for field in attrs.fields(value)
    ]
    expected += [f"fathom_events.PullResult.{name}" for name in vars(PullResult())]
    assert len(expected) > 100
    assert [name for name in expected if name not in attributes] == []


def _entries(site: Path) -> list[tuple[str, list[str], str, set[str]]]:
    """Each documented object: its id, its parameters, its own text, and its members' ids."""
    from bs4 import BeautifulSoup  # noqa: PLC0415 - only with the docs extra

    found = []
    for page in sorted(site.rglob("*.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        for entry in soup.select("dl.py"):
            term, text = entry.find("dt", recursive=False), entry.find("dd", recursive=False)
            if term is None or text is None or not term.get("id"):
                continue
            parameters = []
            for parameter in term.select("em.sig-param"):
                name = parameter.find("span", class_="n")
                if name is not None and not parameter.get_text().startswith("*"):
                    parameters.append(name.get_text())
            own = copy.copy(text)
            members = {str(member.get("id")) for member in own.select("dl.py > dt[id]")}
            for nested in own.select("dl.py"):
                nested.decompose()
            found.append((str(term["id"]), parameters, own.get_text(" "), members))
    return found


def test_every_parameter_of_every_entry_is_described(site: Path) -> None:
    """Each parameter in a signature is named in its entry's text, or is a field entry of it.

    Errors are left out: the library raises them, and their attributes are
    documented (a transport's own errors are described in the transport contract).
    """
    undescribed = []
    entries = _entries(site)
    for object_id, parameters, text, members in entries:
        value = _resolve(object_id)
        if isinstance(value, type) and issubclass(value, BaseException):
            continue
        for parameter in parameters:
            mentioned = re.search(rf"(?<![\w.]){re.escape(parameter)}(?!\w)", text)
            if not mentioned and f"{object_id}.{parameter}" not in members:
                undescribed.append(f"{object_id}({parameter})")
    assert len(entries) > 150
    assert undescribed == []


def _resolve(object_id: str) -> object:
    """The object a reference entry documents (None for one that is not importable)."""
    for module in ("fathom_events.testing", "fathom_events"):
        if object_id.startswith(module + "."):
            value: object = sys.modules[module]
            for part in object_id.removeprefix(module + ".").split("."):
                value = getattr(value, part, None)
            return value
    return None


def test_the_command_line_page_has_every_command_option_and_exit_code(site: Path) -> None:
    """The CLI reference names each command, each option string, and each exit code's text."""
    text = " ".join((site / "reference" / "cli.html").read_text(encoding="utf-8").split())
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parsers = [parser, *commands.choices.values()]
    assert len(commands.choices) >= 12
    for name in commands.choices:
        assert f'id="cli-{name}"' in text
    for sub in parsers:
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, flag
    for code, meaning in EXIT_CODES:
        assert re.search(rf"<code[^>]*><span class=\"pre\">{code}</span></code>", text), code
        assert " ".join(meaning.split()) in text.replace("&#39;", "'"), meaning


def test_the_error_tree_draws_every_error_under_its_parent(site: Path) -> None:
    """The errors page draws each public error class, indented one step below its parent."""
    from bs4 import BeautifulSoup  # noqa: PLC0415 - only with the docs extra

    page = BeautifulSoup((site / "reference" / "errors.html").read_text(), "html.parser")
    drawn = page.find("pre")
    assert drawn is not None
    tree = drawn.get_text().splitlines()
    depth: dict[str, int] = {}
    for line in tree:
        name = line.lstrip("│├└─ ").split()[0]
        depth[name] = (len(line) - len(line.lstrip("│├└─ "))) // 4
    errors = {
        name: value
        for name in fathom_events.__all__
        if isinstance(value := getattr(fathom_events, name), type)
        and issubclass(value, BaseException)
    }
    assert set(depth) == set(errors)
    for name, cls in errors.items():
        parents = [base.__name__ for base in cls.__mro__[1:] if base.__name__ in errors]
        assert depth[name] == (depth[parents[0]] + 1 if parents else 0), name
