"""Shared pieces: canned answers, and clients whose transport answers without a network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks import dataset
from fathom_events import AsyncClient, Client
from fathom_events._protocol import Answer, Request
from fathom_events._transport import Transport

PAGE_SIZE = 100
# A base URL nothing listens on: the transport below never connects.
BASE_URL = "http://127.0.0.1:9/v1"
EVENT = dataset.dumps(dataset.event_json("SITE1", 5))
CREATED = dataset.dumps(dataset.created_json(dataset.CREATE_SITE, 1, "New", "euro"))


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


async def canned_send(self: Transport, request: Request, timeouts: Any = None) -> Answer:
    """Transport.send without a network: a list gets the next page, anything else an event."""
    del self, timeouts
    if request.method == "POST":
        return Answer(200, {}, CREATED)
    if request.path.endswith("/events"):
        after = dict(request.query).get("starting_after")
        index = 0 if after is None else int(after.rsplit("E", 1)[1]) // PAGE_SIZE + 1
        return Answer(200, {}, PAGES[index])
    return Answer(200, {}, EVENT)


@pytest.fixture(name="canned")
def _canned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Transport, "send", canned_send)


@pytest.fixture(name="loop")
def _loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(name="async_client")
def _async_client(canned: None, loop: asyncio.AbstractEventLoop) -> Iterator[AsyncClient]:
    del canned  # requested for its patch
    client = AsyncClient(dataset.TOKEN, BASE_URL)
    loop.run_until_complete(client.__aenter__())
    yield client
    loop.run_until_complete(client.aclose())


@pytest.fixture(name="blocking_client")
def _blocking_client(canned: None) -> Iterator[Client]:
    del canned  # requested for its patch
    with Client(dataset.TOKEN, BASE_URL) as client:
        yield client
