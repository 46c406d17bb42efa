"""Every ```python block of the README runs, as written, against FakeFathom.

The recipes run in test_recipes.py, each with its framework, and those of "Many
workers, one budget" in tests/redis/test_readme_budget.py, with a real Redis;
every other block runs here. A block is run as a module (a script's ``asyncio.run(main())`` runs
it); each test function it defines is then called as pytest would, with its
fixtures. Each block's effect on the fake is checked, so a block that stopped
doing what it shows fails, as does a block that fails or leaves a warning.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from fathom_events import AsyncClient, Client
from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE
from tests.support.readme import README, RECIPES, SHARED_BUDGET, Block, python_blocks

BLOCKS = [block for block in python_blocks() if block.section not in (RECIPES, SHARED_BUDGET)]

# What each block that works on the served fake leaves there: event names per site.
LEFT_ON_THE_FAKE: dict[str, dict[str, list[str]]] = {
    "Quick start (async)": {SITE: [], "WXYZ": []},
    "The blocking client": {SITE: ["Signed up"], "WXYZ": []},
    "Sites and the token": {SITE: [], "WXYZ": []},
    "Seeing what the client does": {SITE: [], "WXYZ": []},
    "Bulk sync": {SITE: ["Purchased", "Signed up"], "WXYZ": ["Signed up"]},
    "Writing your own transport": {SITE: [], "WXYZ": []},
}
# The blocks that are tests of the reader's own code, with the tests each defines.
TESTS_DEFINED = {
    "The pytest fixture": ["test_my_job_survives_a_rate_limit"],
    "Testing your code: `FakeFathom`": ["test_my_sync_job"],
    "Unit tests without a socket: `MemoryTransport`": ["test_my_job_in_memory"],
}


def my_job(client: AsyncClient | Client) -> object:
    """The reader's job in the testing examples: make sure "Signed up" exists.

    Returns what the client returns: the event from ``Client``, an awaitable from
    ``AsyncClient``, as the examples call it (``my_job(client)``, ``await my_job(client)``).
    """
    return client.events.create(SITE, "Signed up")


def call_as_pytest_would(test: Callable[..., Any], request: pytest.FixtureRequest) -> None:
    """Call a test function the block defined, with its fixtures; run it if it is async."""
    fixtures = {name: request.getfixturevalue(name) for name in inspect.signature(test).parameters}
    if inspect.iscoroutinefunction(test):
        asyncio.run(test(**fixtures))
    else:
        test(**fixtures)


def test_sybil_finds_every_python_block() -> None:
    """Sybil reads as many ```python blocks as the README has fences for, recipes included."""
    assert len(python_blocks()) == len(re.findall(r"^```python$", README.read_text(), re.MULTILINE))
    assert len(BLOCKS) == len(LEFT_ON_THE_FAKE) + len(TESTS_DEFINED)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: f"line {block.line}: {block.heading}")
def test_readme_block_runs(block: Block, request: pytest.FixtureRequest, world: FakeFathom) -> None:
    """The block runs with the default token and URL at a served fake, and does what it shows."""
    fake = world
    names = block.run({"__name__": "__main__", "my_job": my_job})
    tests = [name for name, value in names.items() if name.startswith("test_") and callable(value)]
    assert tests == TESTS_DEFINED.get(block.heading, [])
    for name in tests:
        call_as_pytest_would(names[name], request)
    if block.heading in TESTS_DEFINED:
        assert fake.requests == []  # those tests make fakes of their own
    else:
        left = {site: sorted(e["name"] for e in fake.events(site)) for site in (SITE, "WXYZ")}
        assert left == LEFT_ON_THE_FAKE[block.heading]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(warning.message) for warning in caught] == []
