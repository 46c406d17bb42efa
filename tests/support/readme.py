"""The README's Python blocks, found and run by Sybil, and a world in which they run.

Every ```python block of README.md is run by exactly one test:
test_readme_examples.py runs each block outside the recipes and "Many workers,
one budget", test_recipes.py runs each recipe with its framework, and
tests/redis/test_readme_budget.py runs the shared budget's recipes with a real
Redis; all get the blocks from here.

The examples use ``AsyncClient()`` and ``Client()`` with the production base URL,
and there is no network here. :func:`point_at_the_fake` therefore replaces the two
classes in ``fathom_events`` (where the examples import them from) with subclasses
whose only differences are a default ``base_url`` at a served ``FakeFathom`` and the
tests' fake time, so a ``Retry-After`` never sleeps for real. The token comes from
``FATHOM_API_TOKEN``, as the README says.
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

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPES = "Recipes: AsyncClient wherever it is awaited"
SHARED_BUDGET = "Many workers, one budget"


@attrs.frozen
class Block:
    """One ```python block of the README, under its headings."""

    example: Example
    section: str  # the `##` heading it is under
    heading: str  # the nearest heading above it, `##` or `###`

    @property
    def line(self) -> int:
        return self.example.line

    @property
    def source(self) -> str:
        return str(self.example.parsed)

    def run(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """Run the block as a module in ``namespace``, with the README's line numbers."""
        found = self.example
        example = Example(found.document, found.line, found.column, found.region, namespace)
        example.evaluate()
        return namespace


def python_blocks() -> list[Block]:
    """Every ```python block of the README, in order."""
    document = Document.parse(str(README), PythonCodeBlockParser())
    fenced = [(region.start, region.end) for region in FencedCodeBlockLexer(".*")(document)]
    headings = [
        (match.start(), len(match[1]), match[2])
        for match in re.finditer(r"^(#{2,3}) (.+)$", document.text, re.MULTILINE)
        if not any(start <= match.start() < end for start, end in fenced)
    ]
    blocks = []
    for example in document.examples():
        above = [(level, title) for start, level, title in headings if start < example.start]
        section = next(title for level, title in reversed(above) if level == 2)
        blocks.append(Block(example, section, above[-1][1]))
    return blocks


def recipe(title: str) -> list[str]:
    """The Python blocks of one recipe, in order."""
    return [
        block.source
        for block in python_blocks()
        if block.section == RECIPES and block.heading == title
    ]


def point_at_the_fake(monkeypatch: pytest.MonkeyPatch, url: str, fake_time: FakeTime) -> None:
    """``AsyncClient()`` and ``Client()`` from ``fathom_events`` talk to the fake at ``url``."""
    monkeypatch.setenv("FATHOM_API_TOKEN", TOKEN)
    timing = {"clock": fake_time.clock, "sleep": fake_time.sleep}

    class AsyncClient(fathom_events.AsyncClient):
        def __init__(self, token: str | None = None, base_url: str = url, **options: Any) -> None:
            super().__init__(token, base_url, **(timing | options))

    class Client(fathom_events.Client):
        def __init__(self, token: str | None = None, base_url: str = url, **options: Any) -> None:
            super().__init__(token, base_url, **(timing | options))

    monkeypatch.setattr(fathom_events, "AsyncClient", AsyncClient)
    monkeypatch.setattr(fathom_events, "Client", Client)
