"""Shared pieces: canned answers, and clients whose transport answers them in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import pytest

from benchmarks import dataset
from fathom_events import AsyncClient, Client
from fathom_events.testing import MemoryTransport, RecordedRequest

PAGE_SIZE = 100
EVENT = dataset.dumps(dataset.event_json("SITE1", 5))
CREATED = dataset.dumps(dataset.created_json(dataset.CREATE_SITE, 1, "New", "euro"))
NO_HEADERS: Mapping[str, str] = {}


def page_body(start: int, *, has_more: bool = True) -> bytes:
    """A 100-event list answer, events ``start``.. of the big site."""
    return dataset.dumps(
        {
            "object": "list",
            "url": f"/v1/sites/{dataset.BIG_SITE}/events",
            "has_more": has_more,
            "data": [dataset.event_json(dataset.BIG_SITE, i) for i in range(start, start + 100)],
        }
    )


PAGE = page_body(0)
WALK_PAGES = 100
# One walk's pages, rendered once: the last says there is no more.
PAGES = [
    page_body(start, has_more=start + PAGE_SIZE < WALK_PAGES * PAGE_SIZE)
    for start in range(0, WALK_PAGES * PAGE_SIZE, PAGE_SIZE)
]


def canned(request: RecordedRequest) -> tuple[int, Mapping[str, str], bytes]:
    """The answer without a network: a list gets the next page, anything else an event."""
    if request.method == "POST":
        return 200, NO_HEADERS, CREATED
    if request.path.endswith("/events"):
        after = request.query.get("starting_after")
        index = 0 if after is None else int(after.rsplit("E", 1)[1]) // PAGE_SIZE + 1
        return 200, NO_HEADERS, PAGES[index]
    return 200, NO_HEADERS, EVENT


@pytest.fixture(name="loop")
def _loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(name="async_client")
def _async_client(loop: asyncio.AbstractEventLoop) -> Iterator[AsyncClient]:
    client = AsyncClient(dataset.TOKEN, transport=MemoryTransport(canned))
    loop.run_until_complete(client.__aenter__())
    yield client
    loop.run_until_complete(client.aclose())


@pytest.fixture(name="blocking_client")
def _blocking_client() -> Iterator[Client]:
    with Client(dataset.TOKEN, transport=MemoryTransport(canned)) as client:
        yield client
