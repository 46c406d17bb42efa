"""The Python blocks and console sessions of the README and the docs, and a world they run in.

The README is a front page: its few ```python blocks are run by
test_readme_examples.py. Every block of the docs' pages is run by
test_docs_examples.py, but the recipes (:data:`DOCS_RECIPES` says where each
is), which test_recipes.py runs with their frameworks, and the shared budget's
(:data:`SHARED_BUDGET_PAGE`), which tests/redis/test_shared_budget_guide.py runs
with a real Redis. The transport that docs/reference/transport.md defines
(:data:`TRANSPORT_PAGE`) is also the suite's second transport (faces.py).
:func:`console_session` reads a page's ```console blocks as a terminal session,
for test_docs_cli_examples.py and the command line's own walk-through of the
goals-as-code guide.

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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from sybil import Document, Example
from sybil.parsers.markdown import PythonCodeBlockParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

import fathom_events
from fathom_events.testing import FakeFathom
from tests.support.helpers import TOKEN, FakeTime

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: Where the docs hold each recipe: the page, under a heading of the recipe's title.
DOCS_RECIPES = {
    "FastAPI and Starlette": DOCS / "howto" / "frameworks.md",
    "aiohttp.web": DOCS / "howto" / "frameworks.md",
    "Django": DOCS / "howto" / "frameworks.md",
    "Celery and other workers": DOCS / "howto" / "frameworks.md",
    "Jupyter": DOCS / "howto" / "notebooks.md",
    "pytest-asyncio": DOCS / "howto" / "testing.md",
}
#: The page whose one Python block defines a transport on another HTTP stack (httpx).
TRANSPORT_PAGE = DOCS / "reference" / "transport.md"
#: The sites and events each page's console session starts from: (name, id), a minute
#: apart from :data:`DAY` on.
DAY = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
SEED = {
    "CDBUGS": [("Signed up", "7E2TJKBV"), ("Purchased", "P4RCH4SD")],
    "WXYZ": [("Signed up", "K3M9QX2P"), ("Purchased", "Q8WZ5NAT"), ("Old promo", "IN6NIAKX")],
}
#: The guide whose Python blocks share a rate budget through Redis (run with a real one).
SHARED_BUDGET_PAGE = DOCS / "howto" / "shared-budget.md"


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


def recipe(title: str) -> list[str]:
    """The Python blocks of one recipe, in order, from the docs page that holds it."""
    return [block.source for block in python_blocks(DOCS_RECIPES[title]) if block.heading == title]


def section(page: Path, title: str) -> str:
    """The text of a page's ``##`` section of that title, up to the next ``##``."""
    return page.read_text(encoding="utf-8").split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


@attrs.frozen
class Command:
    """One ``$`` line of a console block (continuation lines joined) and the output shown."""

    line: str
    shown: list[str]


@attrs.frozen
class File:
    """A code block captioned with a file name: the reader saves it before going on."""

    name: str
    text: str


CONSOLE = re.compile(r"^```(console|\{code-block\} \w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def console_session(page: Path) -> list[Command | File]:
    """The page's console commands and captioned files, in the page's order."""
    steps: list[Command | File] = []
    for match in CONSOLE.finditer(page.read_text(encoding="utf-8")):
        if match[1] != "console":
            options, _, body = match[2].partition("\n\n")
            caption = re.search(r"^:caption: (\S+)$", options, re.MULTILINE)
            if caption is not None:
                steps.append(File(caption[1], body))
            continue
        current = None  # a block's output lines belong to its own commands only
        for line in match[2].replace("\\\n", " ").splitlines():
            if line.startswith("$ "):
                current = Command(line[2:], [])
                steps.append(current)
            elif current is not None:
                current.shown.append(line)
    return steps


def exit_code_shown(steps: list[Command | File], number: int) -> int:
    """The exit code the session shows for its step ``number``: a ``$ echo $?`` after it, else 0."""
    after = steps[number + 1] if number + 1 < len(steps) else None
    if isinstance(after, Command) and after.line == "echo $?":
        return int(after.shown[0])
    return 0


def words(line: str) -> str:
    """The line with each run of whitespace as one space, none at either end."""
    return " ".join(line.split())


def shown_in_order(shown: list[str], output: str) -> list[str]:
    """The shown lines that do not come out, in order, among the output's lines."""
    actual = iter(words(line) for line in output.splitlines())
    return [line for line in shown if words(line) not in actual]


def seeded_fake(tokens: dict[str, list[str]] | None = None) -> FakeFathom:
    """A fake holding :data:`SEED`, the sites and events the docs' sessions start from."""
    fake = FakeFathom(tokens)
    for site_id, events in SEED.items():
        fake.add_site(site_id, created_at=DAY)
        for minute, (name, event_id) in enumerate(events):
            fake.add_event(site_id, name, event_id=event_id, created_at=DAY.replace(minute=minute))
    return fake


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
