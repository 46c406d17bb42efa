"""Every example of the docs runs: Python blocks, sync files, and an async test, marked or not.

* A ```python block that defines ``test_`` functions is a test file of the
  reader's: all of them run together in a fresh folder whose pytest
  configuration is empty (no ``asyncio_mode = auto``, none of this suite's
  settings), in a subprocess, as they would in a plain project; each test must pass.
* Every other block (but the recipes, which test_recipes.py runs with their
  frameworks, and the shared budget's, which tests/redis/test_shared_budget_guide.py
  runs with a real Redis) runs as a script (``__name__ == "__main__"``, so its
  ``asyncio.run(main())`` runs) with ``AsyncClient()`` and ``Client()`` pointed
  at a served FakeFathom holding the sites CDBUGS and WXYZ: a block that makes
  a client must send it requests, and none may fail or leave a warning. The
  blocks that came from the README (bulk work, sites and the token, on_event,
  the httpx transport) must also leave on the fake what they did there.
* Each ```toml block (and ``{code-block} toml``) is a sync file that parses.

The command-line examples run in test_docs_cli_examples.py.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from fathom_events._cli._syncfile import SyncFileError, parse_sync_file
from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE
from tests.support.readme import DOCS, DOCS_RECIPES, SHARED_BUDGET_PAGE, Block, python_blocks

PAGES = sorted(page for page in DOCS.rglob("*.md") if "_build" not in page.parts)
TEST_FUNCTION = re.compile(r"^(?:async )?def (test_\w+)\(", re.MULTILINE)


def _is_recipe(page: Path, block: Block) -> bool:
    """Whether the block is a recipe that runs elsewhere: with its framework, or with Redis."""
    return DOCS_RECIPES.get(block.heading) == page or page == SHARED_BUDGET_PAGE


BLOCKS = [(page, block) for page in PAGES for block in python_blocks(page)]
TEST_FILES = [(page, block) for page, block in BLOCKS if TEST_FUNCTION.search(block.source)]
SCRIPTS = [
    (page, block)
    for page, block in BLOCKS
    if not TEST_FUNCTION.search(block.source) and not _is_recipe(page, block)
]
#: What the blocks the README used to hold leave on the fake, by page and heading: event
#: names per site.
LEFT_ON_THE_FAKE: dict[tuple[str, str], dict[str, list[str]]] = {
    ("reference/bulk.md", "Bulk work: pull, plan, apply, sync"): {
        SITE: ["Purchased", "Signed up"],
        "WXYZ": ["Signed up"],
    },
    ("reference/calls.md", "Sites and the token"): {SITE: [], "WXYZ": []},
    ("howto/tracing.md", "A record of each step: `on_event`"): {SITE: [], "WXYZ": []},
    ("reference/transport.md", "Writing your own transport"): {SITE: [], "WXYZ": []},
}
#: The testing guide's first test file: an async test, marked for pytest-asyncio.
SERVED_FAKE = DOCS / "howto" / "testing.md", "A served fake"


def served_fake_test() -> str:
    """The source of the testing guide's async test file (its one block under its heading)."""
    page, heading = SERVED_FAKE
    (block,) = [block for block in python_blocks(page) if block.heading == heading]
    return block.source


def block_id(item: tuple[Path, Block]) -> str:
    page, block = item
    return f"{page.relative_to(DOCS)}:{block.line}"


def test_the_docs_have_examples_of_each_kind() -> None:
    """The pages hold scripts, test files and recipes: a lost block would show here."""
    assert len(SCRIPTS) >= 10
    scripts = {(str(page.relative_to(DOCS)), block.heading) for page, block in SCRIPTS}
    assert scripts >= set(LEFT_ON_THE_FAKE)
    assert len(TEST_FILES) >= 5
    recipes = [block for page, block in BLOCKS if _is_recipe(page, block)]
    assert len(recipes) == 8 + 2  # test_recipes.py's, and the shared budget's two


@pytest.mark.parametrize("item", SCRIPTS, ids=block_id)
def test_docs_script_runs(item: tuple[Path, Block], world: FakeFathom) -> None:
    """The block runs as a script at the served fake, uses the client it makes, warns of nothing."""
    page, block = item
    root = logging.getLogger()
    handlers = list(root.handlers)
    loggers = [root, *(logging.getLogger(name) for name in ("fathom_events", "fathom_events.http"))]
    levels = [logger.level for logger in loggers]
    try:
        block.run({"__name__": "__main__"})
    finally:  # a block that sets logging up does so for itself, not for the tests after it
        root.handlers[:] = handlers
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    if "Client(" in block.source:
        assert world.requests != []
    where = (str(page.relative_to(DOCS)), block.heading)
    if where in LEFT_ON_THE_FAKE:
        left = {site: sorted(e["name"] for e in world.events(site)) for site in (SITE, "WXYZ")}
        assert left == LEFT_ON_THE_FAKE[where]
    assert world.events(SITE) is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


def run_in_a_plain_project(folder: Path, files: dict[str, str]) -> tuple[int, str]:
    """Run pytest on ``files`` in ``folder``, configured by an empty pytest.ini; its outcome."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    for name, source in files.items():
        (folder / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FATHOM_"))}
    done = subprocess.run(  # noqa: S603 - pytest on the docs' own examples
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs",
         "-W", "error::ResourceWarning", "-W", "error::RuntimeWarning", *files],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_docs_test_files_pass_in_a_plain_project(tmp_path: Path) -> None:
    """Every test the docs' test files define passes with pytest's default configuration."""
    files = {f"test_docs_{number}.py": block.source for number, (_, block) in enumerate(TEST_FILES)}
    defined = [name for source in files.values() for name in TEST_FUNCTION.findall(source)]
    code, output = run_in_a_plain_project(tmp_path, files)
    assert code == 0, output
    assert f"{len(defined)} passed" in output, output
    assert "unclosed" not in output, output


def test_the_async_test_example_passes_alone_in_a_plain_project(tmp_path: Path) -> None:
    """The testing guide's async test passes alone in a plain project, marked for its plugin."""
    source = served_fake_test()
    assert "@pytest.mark.asyncio" in source
    code, output = run_in_a_plain_project(tmp_path, {"test_served_fake.py": source})
    assert code == 0, output
    assert "1 passed" in output, output


def test_an_unmarked_async_test_fails_in_a_plain_project(tmp_path: Path) -> None:
    """Without the mark, pytest refuses the async test: why the guide's examples carry it."""
    source = re.sub(r"^@pytest\.mark\.asyncio.*\n", "", served_fake_test(), flags=re.MULTILINE)
    code, output = run_in_a_plain_project(tmp_path, {"test_unmarked.py": source})
    assert code == 1
    assert "async def functions are not natively supported" in output


def toml_blocks() -> list[tuple[str, str]]:
    """Every TOML block of the docs: a fenced ```toml, or a ``{code-block} toml`` with options."""
    found = []
    fence = re.compile(r"^```(toml|\{code-block\} toml)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in fence.finditer(text):
            body = match[2]
            if match[1] != "toml":  # a directive: its options, then a blank line
                body = body.split("\n\n", 1)[1] if body.startswith(":") else body
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(DOCS)}:{line}", body))
    return found


@pytest.mark.parametrize(("where", "text"), toml_blocks(), ids=[w for w, _ in toml_blocks()])
def test_docs_sync_file_parses(where: str, text: str) -> None:
    """The TOML block is a sync file the command line reads without a complaint."""
    parsed = parse_sync_file(text, where)
    assert parsed.desired() or 'sites = "all"' in text  # "all": the sites come when it runs


def test_sync_file_example_is_valid_and_its_error_is_real() -> None:
    """The sync-file reference's file parses, and breaking its currency gives the error shown."""
    text = (DOCS / "reference" / "sync-file.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.DOTALL)
    shown_error = re.search(r"^fathom-events: (sync\.toml:\d+: .*?) dollar", text, re.MULTILINE)
    assert example is not None
    assert shown_error is not None
    desired = parse_sync_file(example[1], "sync.toml").desired()
    assert [spec.name for spec in desired["my site"]][-1] == "Downloaded whitepaper"
    with pytest.raises(SyncFileError) as caught:
        parse_sync_file(example[1].replace('"euro"', '"eur"'), "sync.toml")
    assert str(caught.value).startswith(shown_error[1])
    assert str(caught.value).endswith("got 'eur'")
