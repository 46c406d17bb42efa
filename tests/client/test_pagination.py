"""Paginators, async and blocking faces: every event once, in order, lazily, and never forever."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    AsyncPaginator,
    Client,
    Event,
    EventPage,
    FathomError,
    InvalidRequestError,
    NotFoundError,
    PaginationError,
    Paginator,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.helpers import SITE, FakeTime

BIG = "BIG1"  # the site fake.seed(1, n, prefix="BIG") creates
BIG_SIZE = 2_500
WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def seed_big(fake: FakeFathom) -> list[str]:
    """Seed a site of BIG_SIZE events; return their ids oldest first."""
    fake.seed(1, BIG_SIZE, prefix="BIG")
    return [event["id"] for event in fake.events(BIG)]


def add_events(fake: FakeFathom, count: int) -> list[str]:
    return [fake.add_event(SITE, f"e{i}")["id"] for i in range(count)]


def page_json(ids: list[str], *, has_more: bool) -> dict[str, Any]:
    """A list answer as the API writes it, holding events with these ids."""
    return {
        "object": "list",
        "url": f"/v1/sites/{SITE}/events",
        "has_more": has_more,
        "data": [
            {
                "id": event_id,
                "object": "event",
                "name": event_id,
                "currency": None,
                "created_at": "2024-01-02 03:04:05",
            }
            for event_id in ids
        ],
    }


class ScriptedPages:
    """A fetch function that answers with scripted pages and notes each cursor it was given."""

    def __init__(self, *pages: tuple[list[str], bool]) -> None:
        self._pages = list(pages)
        self.cursors: list[str | None] = []

    async def __call__(self, cursor: str | None) -> EventPage:
        self.cursors.append(cursor)
        ids, has_more = self._pages[len(self.cursors) - 1]
        return EventPage([Event(i, i, None, WHEN) for i in ids], has_more, "/scripted")


def cursors_sent(fake: FakeFathom, name: str) -> list[str | None]:
    return [request.query.get(name) for request in fake.requests]


# -- async face ----------------------------------------------------------------


async def test_async_forward_walk_of_a_large_site_sees_each_event_once(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """async for over paginate() yields all 2,500 events once each, oldest first, 100 a page."""
    ids = seed_big(fake)
    seen = [event.id async for event in client.events.paginate(BIG)]
    assert seen == ids
    assert len(fake.requests) == BIG_SIZE // 100
    assert {request.query["limit"] for request in fake.requests} == {"100"}
    assert cursors_sent(fake, "starting_after") == [None, *ids[99:-1:100]]


async def test_async_backward_walk_is_newest_first_each_event_once(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """Given ending_before, the walk goes backward, newest first, through every older event."""
    ids = seed_big(fake)
    seen = [event.id async for event in client.events.paginate(BIG, ending_before=ids[-1])]
    assert seen == ids[-2::-1]
    assert len(fake.requests) == BIG_SIZE // 100
    assert cursors_sent(fake, "ending_before") == [ids[-1], *ids[-101::-100]]
    assert cursors_sent(fake, "starting_after") == [None] * len(fake.requests)


async def test_async_pages_yields_event_pages(client: AsyncClient, fake: FakeFathom) -> None:
    """pages() yields the EventPages themselves, has_more true on all but the last."""
    ids = add_events(fake, 7)
    pages = [page async for page in client.events.paginate(SITE, page_size=3).pages()]
    assert all(isinstance(page, EventPage) for page in pages)
    assert [[event.id for event in page.data] for page in pages] == [ids[:3], ids[3:6], ids[6:]]
    assert [page.has_more for page in pages] == [True, True, False]


async def test_async_starting_after_resumes_after_that_event(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """starting_after starts the walk just after the given event."""
    ids = add_events(fake, 5)
    seen = [e.id async for e in client.events.paginate(SITE, page_size=2, starting_after=ids[1])]
    assert seen == ids[2:]
    assert fake.requests[0].query == {"limit": "2", "starting_after": ids[1]}


async def test_async_paginator_is_lazy(client: AsyncClient, fake: FakeFathom) -> None:
    """Making a paginator sends nothing; breaking after the first item has sent one request."""
    add_events(fake, 250)
    paginator = client.events.paginate(SITE)
    assert isinstance(paginator, AsyncPaginator)
    assert fake.requests == []
    async for _ in paginator:
        break
    assert len(fake.requests) == 1
    assert fake.requests[0].query == {"limit": "100"}


async def test_async_stops_when_has_more_is_false(client: AsyncClient, fake: FakeFathom) -> None:
    """The walk ends at the page with has_more false: 200 events take 2 requests, 201 take 3."""
    add_events(fake, 200)
    assert len([e async for e in client.events.paginate(SITE)]) == 200
    assert len(fake.requests) == 2
    fake.reset_requests()
    fake.add_event(SITE, "one more")
    assert len([e async for e in client.events.paginate(SITE)]) == 201
    assert len(fake.requests) == 3


async def test_async_each_iteration_starts_a_new_walk(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """Iterating one paginator twice walks from the start twice."""
    ids = add_events(fake, 3)
    paginator = client.events.paginate(SITE, page_size=2)
    assert [e.id async for e in paginator] == ids
    assert [e.id async for e in paginator] == ids
    assert len(fake.requests) == 4


async def test_async_empty_page_stops_the_walk(client: AsyncClient, fake: FakeFathom) -> None:
    """An empty page ends the walk even if it claims has_more, with no further request."""
    fake.inject(Fault.respond(200, json=page_json([], has_more=True)))
    assert [e async for e in client.events.paginate(SITE)] == []
    assert len(fake.requests) == 1


async def test_async_repeated_page_raises_pagination_error(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """A server returning the same page again raises PaginationError instead of looping."""
    fake.inject(Fault.respond(200, json=page_json(["A", "B"], has_more=True)), times=2)
    events = aiter(client.events.paginate(SITE, page_size=2))
    assert [(await anext(events)).id for _ in range(2)] == ["A", "B"]
    with pytest.raises(PaginationError, match="'B'") as info:
        await anext(events)
    assert isinstance(info.value, FathomError)
    assert cursors_sent(fake, "starting_after") == [None, "B"]


async def test_async_pages_also_refuse_a_repeated_page(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """pages() raises PaginationError on a repeated page too, after yielding the first one."""
    fake.inject(Fault.respond(200, json=page_json(["A"], has_more=True)), times=2)
    pages = aiter(client.events.paginate(SITE, page_size=1).pages())
    assert [event.id for event in (await anext(pages)).data] == ["A"]
    with pytest.raises(PaginationError):
        await anext(pages)
    assert len(fake.requests) == 2


async def test_async_cursor_cycling_back_raises_pagination_error() -> None:
    """A walk that comes back to an earlier page raises PaginationError, not an endless loop."""
    fetch = ScriptedPages((["A", "B"], True), (["C", "D"], True), (["A", "B"], True))
    events = aiter(AsyncPaginator(fetch, None))
    assert [(await anext(events)).id for _ in range(4)] == ["A", "B", "C", "D"]
    with pytest.raises(PaginationError):
        await anext(events)
    assert fetch.cursors == [None, "B", "D"]


async def test_async_empty_page_mid_walk_stops() -> None:
    """An empty page after full ones ends the walk without another fetch."""
    fetch = ScriptedPages((["A", "B"], True), ([], True), (["C"], False))
    assert [event.id async for event in AsyncPaginator(fetch, None)] == ["A", "B"]
    assert fetch.cursors == [None, "B"]


async def test_async_walk_retries_like_any_call(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A 503 or 429 during the walk is retried by the client's policy; nothing is lost."""
    ids = add_events(fake, 5)
    fake.inject(Fault.respond(503, json={"error": "busy"}))
    paginator = client.events.paginate(SITE, page_size=2)
    seen = []
    async for event in paginator:
        seen.append(event.id)
        if len(seen) == 2:
            fake.inject(Fault.rate_limited("7"))
    assert seen == ids
    assert client.retries == 2
    assert fake_time.sleeps[-1] == 7.0
    assert len(fake.requests) == 5


async def test_async_api_errors_surface_from_the_walk(client: AsyncClient) -> None:
    """An error answer while walking (an unknown site) raises its typed error."""
    with pytest.raises(NotFoundError):
        async for _ in client.events.paginate("NOSUCHSITE"):
            pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page_size": 0},
        {"page_size": 101},
        {"starting_after": "A", "ending_before": "B"},
        {"site_id": ""},
    ],
)
async def test_async_bad_arguments_fail_before_any_request(
    client: AsyncClient, fake: FakeFathom, kwargs: dict[str, Any]
) -> None:
    """paginate() checks its arguments when called, before anything is sent."""
    arguments = {"site_id": SITE, **kwargs}
    with pytest.raises(InvalidRequestError):
        client.events.paginate(**arguments)
    assert fake.requests == []


# -- blocking face ---------------------------------------------------------------


def test_sync_forward_walk_of_a_large_site_sees_each_event_once(
    sync_client: Client, fake: FakeFathom
) -> None:
    """for over the blocking paginate() yields all 2,500 events once each, oldest first."""
    ids = seed_big(fake)
    seen = [event.id for event in sync_client.events.paginate(BIG)]
    assert seen == ids
    assert len(fake.requests) == BIG_SIZE // 100
    assert {request.query["limit"] for request in fake.requests} == {"100"}
    assert cursors_sent(fake, "starting_after") == [None, *ids[99:-1:100]]


def test_sync_backward_walk_is_newest_first_each_event_once(
    sync_client: Client, fake: FakeFathom
) -> None:
    """Given ending_before, the blocking walk goes backward, newest first, through every event."""
    ids = seed_big(fake)
    seen = [event.id for event in sync_client.events.paginate(BIG, ending_before=ids[-1])]
    assert seen == ids[-2::-1]
    assert len(fake.requests) == BIG_SIZE // 100
    assert cursors_sent(fake, "ending_before") == [ids[-1], *ids[-101::-100]]


def test_sync_one_portal_call_per_page(
    sync_client: Client, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocking paginator makes exactly one portal call per page, never one per item."""
    seed_big(fake)
    portal = sync_client._portal()
    calls = []
    real_run = portal.run

    def counting_run(fn: Any) -> Any:
        calls.append(fn)
        return real_run(fn)

    monkeypatch.setattr(portal, "run", counting_run)
    assert sum(1 for _ in sync_client.events.paginate(BIG)) == BIG_SIZE
    assert len(fake.requests) == BIG_SIZE // 100
    assert len(calls) == len(fake.requests)


def test_sync_pages_yields_event_pages(sync_client: Client, fake: FakeFathom) -> None:
    """for page in paginate().pages() yields EventPages, has_more true on all but the last."""
    ids = add_events(fake, 7)
    paginator = sync_client.events.paginate(SITE, page_size=3)
    assert isinstance(paginator, Paginator)
    pages = list(paginator.pages())
    assert all(isinstance(page, EventPage) for page in pages)
    assert [[event.id for event in page.data] for page in pages] == [ids[:3], ids[3:6], ids[6:]]
    assert [page.has_more for page in pages] == [True, True, False]


def test_sync_paginator_is_lazy(sync_client: Client, fake: FakeFathom) -> None:
    """Making a blocking paginator sends nothing; breaking after one item has sent one request."""
    add_events(fake, 250)
    paginator = sync_client.events.paginate(SITE)
    assert fake.requests == []
    for _ in paginator:
        break
    assert len(fake.requests) == 1
    assert fake.requests[0].query == {"limit": "100"}


def test_sync_client_is_usable_during_and_after_a_walk(
    sync_client: Client, fake: FakeFathom
) -> None:
    """Other calls work between the items of a walk, and after breaking out of it."""
    ids = add_events(fake, 5)
    names = []
    for event in sync_client.events.paginate(SITE, page_size=2):
        names.append(sync_client.events.get(SITE, event.id).name)
        if len(names) == 3:
            break
    assert names == ["e0", "e1", "e2"]
    assert sync_client.events.list(SITE, limit=1).data[0].id == ids[0]
    by_two = sync_client.events.paginate(SITE, page_size=2)
    walks = zip(by_two, sync_client.events.paginate(SITE), strict=True)
    assert [(a.id, b.id) for a, b in walks] == [(i, i) for i in ids]


def test_sync_stops_when_has_more_is_false(sync_client: Client, fake: FakeFathom) -> None:
    """The blocking walk ends at the page with has_more false: 200 events take 2 requests."""
    add_events(fake, 200)
    assert len(list(sync_client.events.paginate(SITE))) == 200
    assert len(fake.requests) == 2


def test_sync_empty_page_stops_the_walk(sync_client: Client, fake: FakeFathom) -> None:
    """An empty page ends the blocking walk even if it claims has_more."""
    fake.inject(Fault.respond(200, json=page_json([], has_more=True)))
    assert list(sync_client.events.paginate(SITE)) == []
    assert list(sync_client.events.paginate(SITE).pages()) == []
    assert len(fake.requests) == 2


def test_sync_repeated_page_raises_pagination_error(sync_client: Client, fake: FakeFathom) -> None:
    """A server returning the same page again raises PaginationError in the blocking walk."""
    fake.inject(Fault.respond(200, json=page_json(["A", "B"], has_more=True)), times=2)
    events = iter(sync_client.events.paginate(SITE, page_size=2))
    assert [next(events).id for _ in range(2)] == ["A", "B"]
    with pytest.raises(PaginationError, match="'B'"):
        next(events)
    assert cursors_sent(fake, "starting_after") == [None, "B"]
    assert sync_client.events.list(SITE).data == []  # the portal survived the error


def test_sync_cursor_cycling_back_raises_pagination_error(sync_client: Client) -> None:
    """A blocking walk that comes back to an earlier page raises PaginationError."""
    fetch = ScriptedPages((["A", "B"], True), (["C", "D"], True), (["A", "B"], True))
    events = iter(Paginator(sync_client, AsyncPaginator(fetch, None)))
    assert [next(events).id for _ in range(4)] == ["A", "B", "C", "D"]
    with pytest.raises(PaginationError):
        next(events)
    assert fetch.cursors == [None, "B", "D"]


def test_sync_walk_retries_like_any_call(
    sync_client: Client, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A 503 during the blocking walk is retried by the client's policy; nothing is lost."""
    ids = add_events(fake, 5)
    fake.inject(Fault.respond(503, json={"error": "busy"}))
    assert [event.id for event in sync_client.events.paginate(SITE, page_size=2)] == ids
    assert sync_client.retries == 1
    assert len(fake_time.sleeps) == 1
    assert len(fake.requests) == 4


@pytest.mark.parametrize(
    "kwargs",
    [{"page_size": 0}, {"page_size": 101}, {"starting_after": "A", "ending_before": "B"}],
)
def test_sync_bad_arguments_fail_before_any_request(
    sync_client: Client, fake: FakeFathom, kwargs: dict[str, Any]
) -> None:
    """The blocking paginate() checks its arguments when called, before anything is sent."""
    with pytest.raises(InvalidRequestError):
        sync_client.events.paginate(SITE, **kwargs)
    assert fake.requests == []
