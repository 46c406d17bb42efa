"""Bulk work against a hostile server: a site that never ends, answers that break the reader.

The server is :class:`tests.hostile.RawServer` on loopback: it answers list
requests for good sites with three events, for ``ENDLESS`` with 100 fresh
events and ``has_more: true`` every time (up to a safety bound, so a broken
cap fails an assertion instead of hanging the suite), and for ``BROKEN`` with
a page the reader cannot take today (a ``created_at`` that overflows).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    Client,
    EventSpec,
    FathomError,
    RetryPolicy,
    SitePlan,
    SyncPlan,
    TooManyEventsError,
)
from tests.support.faces import TRANSPORTS, TransportKind, over
from tests.support.helpers import TOKEN, FakeTime
from tests.support.hostile import RawRequest, RawServer, http

#: Every error these tests meet is walked for the token once each test ends (see conftest).
pytestmark = pytest.mark.usefixtures("every_error_token_free")


@pytest.fixture(name="transport", params=TRANSPORTS)
def _transport(request: pytest.FixtureRequest) -> TransportKind:
    """Each test runs over aiohttp and over the docs' own transport."""
    transport: TransportKind = request.param
    return transport


GOOD = ["GOOD1", "GOOD2", "GOOD3"]
ENDLESS = "ENDLESS"
BROKEN = "BROKEN"
CAP = 250
SAFETY_PAGES = 40  # an endless site stops here, so a missing cap fails instead of hanging
OVERFLOWING = "9999-12-31T23:59:59-01:00"  # valid ISO 8601, past datetime.max once in UTC


def event(event_id: str, name: str, created_at: str = "2020-08-21 15:24:00") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "name": name,
        "currency": None,
        "created_at": created_at,
    }


def page(site: str, data: list[dict[str, Any]], *, has_more: bool) -> bytes:
    body = {"object": "list", "url": f"/v1/sites/{site}/events", "has_more": has_more, "data": data}
    return http(200, json.dumps(body).encode())


def site_of(request: RawRequest) -> str:
    """The site id in ``/v1/sites/{site}/events...``."""
    return request.target.split("/")[3]


class Hostile:
    """The reply function: good sites, one endless site, one whose answers overflow."""

    def __init__(self, *, on_create: Callable[[RawRequest], bytes] | None = None) -> None:
        self.fresh_ids = itertools.count()
        self.endless_pages = 0
        self.on_create = on_create

    def __call__(self, request: RawRequest) -> bytes:
        site = site_of(request)
        if request.method == "POST":
            assert self.on_create is not None
            return self.on_create(request)
        if site == ENDLESS:
            self.endless_pages += 1
            data = [event(f"E{next(self.fresh_ids):07d}", "Again") for _ in range(100)]
            return page(site, data, has_more=self.endless_pages < SAFETY_PAGES)
        if site == BROKEN:
            return page(site, [event("B1", "Broken", OVERFLOWING)], has_more=False)
        return page(site, [event(f"{site}E{i}", f"Old {i}") for i in range(3)], has_more=False)


def requests_to(server: RawServer, site: str) -> int:
    return sum(1 for r in server.requests if site_of(r) == site)


def async_client(url: str, fake_time: FakeTime, transport: TransportKind) -> AsyncClient:
    return AsyncClient(
        TOKEN,
        url,
        timeout=5.0,
        retry=RetryPolicy(max_retries=0),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        transport=over(transport),
    )


async def test_pull_stops_an_endless_site_at_the_cap(
    fake_time: FakeTime, transport: TransportKind
) -> None:
    """An endless site fails with TooManyEventsError once past the cap; the good sites are read."""
    server = RawServer(Hostile())
    async with server.serve() as url, async_client(url, fake_time, transport) as client:
        result = await client.events.pull([GOOD[0], ENDLESS, *GOOD[1:]], max_events_per_site=CAP)
    assert list(result) == GOOD
    assert all(len(result[site]) == 3 for site in GOOD)
    error = result.failed[ENDLESS]
    assert isinstance(error, TooManyEventsError)
    assert (error.site_id, error.limit) == (ENDLESS, CAP)
    assert "max_events_per_site" in str(error)
    # Stopped at the first page that passed the cap: 300 events held, never more.
    assert requests_to(server, ENDLESS) == 3


async def test_plan_stops_an_endless_site_at_the_cap(
    fake_time: FakeTime, transport: TransportKind
) -> None:
    """plan records an endless site as failed with TooManyEventsError and plans the others."""
    server = RawServer(Hostile())
    desired = {site: [EventSpec("Signed up")] for site in [ENDLESS, *GOOD]}
    async with server.serve() as url, async_client(url, fake_time, transport) as client:
        # This server answers only event lists: the token check is off (its own tests
        # serve hostile /token answers).
        plan = await client.events.plan(desired, max_events_per_site=CAP, check_token=False)
    assert [s.site_id for s in plan.sites] == GOOD
    assert list(plan.failed) == [ENDLESS]
    assert isinstance(plan.failed[ENDLESS], TooManyEventsError)
    assert plan.max_events_per_site == CAP
    assert requests_to(server, ENDLESS) == 3


def test_blocking_pull_stops_an_endless_site_at_the_cap(transport: TransportKind) -> None:
    """The blocking twin of pull takes max_events_per_site and stops the endless site too."""
    server = RawServer(Hostile())
    with (
        server.serve_in_thread() as url,
        Client(TOKEN, url, timeout=5.0, transport=over(transport)) as client,
    ):
        result = client.events.pull([ENDLESS, GOOD[0]], max_events_per_site=CAP)
    assert list(result) == [GOOD[0]]
    assert isinstance(result.failed[ENDLESS], TooManyEventsError)
    assert requests_to(server, ENDLESS) == 3


async def test_apply_looks_again_within_the_plans_cap(
    fake_time: FakeTime, transport: TransportKind
) -> None:
    """After an ambiguous create, the look before creating again stops at the plan's cap.

    The create is reported failed, still marked as possibly applied, and not sent twice.
    """
    server = RawServer(Hostile(on_create=lambda _: http(502, b"<html>bad gateway</html>")))
    plan = SyncPlan(
        (SitePlan(ENDLESS, (), create=(EventSpec("New"),)),),
        prune=False,
        set_currency=False,
        max_events_per_site=CAP,
    )
    async with server.serve() as url, async_client(url, fake_time, transport) as client:
        report = await client.events.apply(plan)
    [failure] = report.sites[ENDLESS].failed
    assert (failure.action, failure.target) == ("create", "New")
    assert failure.error.may_have_been_applied
    assert [r.method for r in server.requests] == ["POST", "GET", "GET", "GET"]


async def test_pull_keeps_other_sites_when_an_answer_breaks_the_reader(
    fake_time: FakeTime,
    transport: TransportKind,
) -> None:
    """A site whose answer cannot be read is a typed failure; pull returns the other sites."""
    server = RawServer(Hostile())
    async with server.serve() as url, async_client(url, fake_time, transport) as client:
        result = await client.events.pull([GOOD[0], BROKEN, GOOD[1]])
    # Today the reader raises OverflowError here (UnexpectedError once recorded); a typed
    # reader may raise ResponseDecodeError or read a value: each is accounted for.
    assert [site for site in result if site != BROKEN] == GOOD[:2]
    assert set(result) | set(result.failed) == {*GOOD[:2], BROKEN}
    assert all(isinstance(error, FathomError) for error in result.failed.values())


async def test_apply_accounts_for_a_create_whose_answer_breaks_the_reader(
    fake_time: FakeTime,
    transport: TransportKind,
) -> None:
    """A create that reached the server but whose answer cannot be read is in the report.

    Today it is a failure marked ``may_have_been_applied`` (the look before
    creating again cannot read the site either); the other site's create is done.
    """

    def created(request: RawRequest) -> bytes:
        site = site_of(request)
        stamp = OVERFLOWING if site == BROKEN else "2024-01-02 03:04:05"
        return http(200, json.dumps(event(f"{site}NEW", "New", stamp)).encode())

    server = RawServer(Hostile(on_create=created))
    plan = SyncPlan(
        tuple(SitePlan(site, (), create=(EventSpec("New"),)) for site in [BROKEN, GOOD[0]]),
        prune=False,
        set_currency=False,
    )
    async with server.serve() as url, async_client(url, fake_time, transport) as client:
        report = await client.events.apply(plan)
    assert [e.id for e in report.sites[GOOD[0]].created] == [f"{GOOD[0]}NEW"]
    broken = report.sites[BROKEN]
    # Done, or failed and marked as possibly applied: never missing from the report.
    maybe_done = [f for f in broken.failed if f.error.may_have_been_applied]
    assert [e.name for e in broken.created] + [f.target for f in maybe_done] == ["New"]
    assert all(isinstance(f.error, FathomError) for f in broken.failed)
    assert [(f.action, f.target) for f in broken.failed] == [("create", "New")] * len(maybe_done)
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2  # nothing was created twice
