"""The Python blocks of the README and the docs, found by Sybil, and a world in which they run.

Every ```python block of README.md is run by exactly one test:
test_readme_examples.py runs each block outside the recipes and "Many workers,
one budget", test_recipes.py runs each recipe with its framework, and
tests/redis/test_readme_budget.py runs the shared budget's recipes with a real
Redis; all get the blocks from here. The docs' pages hold the recipes too
(:data:`DOCS_RECIPES` says where), run by test_recipes.py; test_docs_examples.py
runs every other block of the docs.

The examples use ``AsyncClient()`` and ``Client()`` with no base URL, and there is
no network here. :func:`point_at_the_fake` therefore sets ``FATHOM_API_BASE_URL`` to
a served ``FakeFathom`` and ``FATHOM_API_TOKEN`` to its token, as a reader's shell
does after pasting what ``fathom-events fake-server`` prints, and replaces the two
classes in ``fathom_events`` (where the examples import them from) with subclasses
whose only difference is the tests' fake time, so a ``Retry-After`` never sleeps
for real.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest
from sybil import Document, Example
from sybil.parsers.markdown import PythonCodeBlockParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

import fathom_events
from tests.support.helpers import TOKEN, FakeTime

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RECIPES = "Recipes: AsyncClient wherever it is awaited"
#: Where the docs hold each recipe of the README: the page, under a heading of the same title.
DOCS_RECIPES = {
    "FastAPI and Starlette": DOCS / "howto" / "frameworks.md",
    "aiohttp.web": DOCS / "howto" / "frameworks.md",
    "Django": DOCS / "howto" / "frameworks.md",
    "Celery and other workers": DOCS / "howto" / "frameworks.md",
    "Jupyter": DOCS / "howto" / "notebooks.md",
    "pytest-asyncio": DOCS / "howto" / "testing.md",
}

SHARED_BUDGET = "Many workers, one budget"


@attrs.frozen
class Block:
    """One ```python block of a Markdown file, under its headings."""

    example: Example
    section: str  # the `##` heading it is under (the page's `#` title before any)
    heading: str  # the nearest heading above it, `#`, `##` or `###`

    @property
    def line(self) -> int:
        return self.example.line

    @property
    def source(self) -> str:
        return str(self.example.parsed)

    def run(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """Run the block as a module in ``namespace``, with its file's line numbers."""
        found = self.example
        example = Example(found.document, found.line, found.column, found.region, namespace)
        example.evaluate()
        return namespace


def python_blocks(path: Path = README) -> list[Block]:
    """Every ```python block of a Markdown file (the README by default), in order."""
    document = Document.parse(str(path), PythonCodeBlockParser())
    fenced = [(region.start, region.end) for region in FencedCodeBlockLexer(".*")(document)]
    headings = [
        (match.start(), len(match[1]), match[2])
        for match in re.finditer(r"^(#{1,3}) (.+)$", document.text, re.MULTILINE)
        if not any(start <= match.start() < end for start, end in fenced)
    ]
    blocks = []
    for example in document.examples():
        above = [(level, title) for start, level, title in headings if start < example.start]
        section = next(title for level, title in reversed(above) if level <= 2)
        blocks.append(Block(example, section, above[-1][1]))
    return blocks


def recipe(title: str, where: Path = README) -> list[str]:
    """The Python blocks of one recipe, in order: the README's, or those of a docs page."""
    return [
        block.source
        for block in python_blocks(where)
        if block.heading == title and (where != README or block.section == RECIPES)
    ]


def point_at_the_fake(monkeypatch: pytest.MonkeyPatch, url: str, fake_time: FakeTime) -> None:
    """``AsyncClient()`` and ``Client()`` from ``fathom_events`` talk to the fake at ``url``.

    Through the environment, as a reader's shell does once it has pasted the
    ``export`` lines ``fathom-events fake-server`` prints; the clients only
    add fake time.
    """
    monkeypatch.setenv("FATHOM_API_TOKEN", TOKEN)
    monkeypatch.setenv("FATHOM_API_BASE_URL", url)
    timing = {"clock": fake_time.clock, "sleep": fake_time.sleep}

    class AsyncClient(fathom_events.AsyncClient):
        def __init__(self, *args: Any, **options: Any) -> None:
            super().__init__(*args, **(timing | options))

    class Client(fathom_events.Client):
        def __init__(self, *args: Any, **options: Any) -> None:
            super().__init__(*args, **(timing | options))

    monkeypatch.setattr(fathom_events, "AsyncClient", AsyncClient)
    monkeypatch.setattr(fathom_events, "Client", Client)
