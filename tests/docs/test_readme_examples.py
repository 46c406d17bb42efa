"""Every ```python block of the README runs, as written, against FakeFathom.

The README is a front page: a short example per face. Each block is run as a
module (a script's ``asyncio.run(main())`` runs it) from a plain test function,
so nothing leans on the suite's ``asyncio_mode = auto``; what it leaves on the
fake is checked, so a block that stopped doing what it shows fails, as does a
block that fails or leaves a warning. The examples that were in the README
before it became a front page now run from the docs pages that hold them
(test_docs_examples.py, test_recipes.py).
"""

from __future__ import annotations

import gc
import re
import warnings

import pytest

from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE
from tests.support.readme import README, Block, python_blocks

BLOCKS = python_blocks()

# What each block leaves on the served fake: event names per site.
LEFT_ON_THE_FAKE: dict[str, dict[str, list[str]]] = {
    "Quick start (async)": {SITE: [], "WXYZ": []},
    "The blocking client": {SITE: ["Signed up"], "WXYZ": []},
}


def test_sybil_finds_every_python_block() -> None:
    """Sybil reads as many ```python blocks as the README has fences, one per face."""
    assert len(BLOCKS) == len(re.findall(r"^```python$", README.read_text(), re.MULTILINE))
    assert [block.heading for block in BLOCKS] == list(LEFT_ON_THE_FAKE)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: f"line {block.line}: {block.heading}")
def test_readme_block_runs(block: Block, world: FakeFathom) -> None:
    """The block runs with the default token and URL at a served fake, and does what it shows."""
    fake = world
    block.run({"__name__": "__main__"})
    assert fake.requests != []
    left = {site: sorted(e["name"] for e in fake.events(site)) for site in (SITE, "WXYZ")}
    assert left == LEFT_ON_THE_FAKE[block.heading]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(warning.message) for warning in caught] == []
