"""Whole calls with the network taken out: the library's own cost per call.

The clients send through ``fathom_events.testing.MemoryTransport``, which
answers canned bytes, so what is left is building the request, the retry loop
and gate, the transport seam's checks, the memory transport's reading of the
request (a few microseconds: its URL and query parsed), decoding, and
(blocking) the hop into the client's event loop thread and back. The async
calls run 100 to a loop entry, so the entry's own cost is spread thin;
compare per 100 calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fathom_events import AsyncClient, Client

CALLS = 100


@pytest.mark.benchmark(group="one get x100: async vs blocking")
def test_async_get(
    benchmark: Any, async_client: AsyncClient, loop: asyncio.AbstractEventLoop
) -> None:
    """100 AsyncClient.events.get calls, awaited one after another."""

    async def hundred() -> None:
        for _ in range(CALLS):
            await async_client.events.get("SITE1", "SITE1-E000005")

    benchmark(lambda: loop.run_until_complete(hundred()))


@pytest.mark.benchmark(group="one get x100: async vs blocking")
def test_blocking_get(benchmark: Any, blocking_client: Client) -> None:
    """100 Client.events.get calls: the async call plus one portal hop each."""

    def hundred() -> None:
        for _ in range(CALLS):
            blocking_client.events.get("SITE1", "SITE1-E000005")

    benchmark(hundred)


@pytest.mark.benchmark(group="paginator step")
def test_async_page_step(
    benchmark: Any, async_client: AsyncClient, loop: asyncio.AbstractEventLoop
) -> None:
    """One AsyncPaginator step: a list request, a 100-event page decoded, the cursor moved."""
    paginator = async_client.events.paginate("BIG")
    walker = paginator.walker()

    def step() -> None:
        nonlocal walker
        assert loop.run_until_complete(walker.next_page()) is not None
        if walker.done:  # a walk is 100 pages: start the next one
            walker = paginator.walker()

    benchmark(step)


@pytest.mark.benchmark(group="paginator step")
def test_blocking_page_step(benchmark: Any, blocking_client: Client) -> None:
    """One blocking Paginator step: the same, plus one portal hop."""
    paginator = blocking_client.events.paginate("BIG")
    pages = iter(paginator.pages())

    def step() -> None:
        nonlocal pages
        page = next(pages, None)
        if page is None:  # a walk is 100 pages: start the next one
            pages = iter(paginator.pages())
            page = next(pages)
        assert page.data

    benchmark(step)
