"""Property: for any account and any desired state with renames, sync converges and never
destroys history by accident, even when a server's listings repeat events across pages.

The account is a real FakeFathom over real HTTP; its list answers are made hostile by a
middleware that repeats the item before each page (pages that overlap) and the first item of
each page right after it (an event twice in one page). Bulk work lists two events a page here,
so that every site of a few events takes several pages.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fathom_events import Client, EventSpec, _bulk
from fathom_events._bulk_types import NameClaims
from fathom_events._protocol import name_key
from fathom_events.testing import FakeFathom
from tests.support.helpers import TOKEN

# Few names, so that matches, renames, duplicates and padded twins are common.
POOL = ["A", "B", "C", "D", " A", "B\t"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OverlappingFake(FakeFathom):
    """A FakeFathom whose event listings repeat events, as overlapping pages would."""

    @property
    def app(self) -> web.Application:
        app = super().app
        app.middlewares.append(self._repeat)
        return app

    @web.middleware
    async def _repeat(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.method != "GET" or not request.path.endswith("/events"):
            return response
        if not isinstance(response, web.Response) or response.status != 200:
            return response
        assert isinstance(response.body, bytes)
        page = json.loads(response.body)
        data: list[dict[str, Any]] = page["data"]
        site = request.path.split("/")[3]
        cursor = request.query.get("starting_after")
        before = [self._as_listed(e) for e in self.events(site) if e["id"] == cursor]
        page["data"] = [*before, *data[:1], *data]
        return web.json_response(page)

    @staticmethod
    def _as_listed(event: dict[str, Any]) -> dict[str, Any]:
        moment = event["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        return {**event, "object": "event", "currency": None, "created_at": moment}


@pytest.fixture(name="served", scope="module")
def _served() -> Iterator[tuple[OverlappingFake, Client]]:
    fake = OverlappingFake({TOKEN: ["*"]})
    with fake.serve_in_thread() as url, Client(TOKEN, url) as client:
        yield fake, client


@st.composite
def specs(draw: st.DrawFn) -> list[EventSpec]:
    """A site's desired events: names and old names from the pool, claimed once each."""
    names = draw(st.lists(st.sampled_from(POOL), max_size=4))
    chosen: list[EventSpec] = []
    claims = NameClaims()
    for name in names:
        old = draw(st.lists(st.sampled_from(POOL), max_size=2))
        try:
            spec = EventSpec(
                name_key(name),
                draw(st.sampled_from([None, "euro"])),
                renamed_from=[name_key(n) for n in old],
            )
        except ValueError:  # an old name twice, or the event's own name
            continue
        if claims.claim(spec) is None:
            chosen.append(spec)
    return chosen


FRESH = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    account=st.lists(st.lists(st.sampled_from(POOL), max_size=6), min_size=1, max_size=3),
    wanted=st.lists(specs(), min_size=3, max_size=3),
    prune=st.booleans(),
    set_currency=st.booleans(),
)
def test_sync_then_plan_is_empty_and_history_is_kept(
    served: tuple[OverlappingFake, Client],
    account: list[list[str]],
    wanted: list[list[EventSpec]],
    prune: bool,
    set_currency: bool,
) -> None:
    """sync converges; a matched or renamed event keeps its id; no prune, no delete."""
    fake, client = served
    prefix = f"P{next(FRESH)}S"
    desired: dict[str, list[EventSpec]] = {}
    before: dict[str, list[dict[str, Any]]] = {}
    for index, names in enumerate(account):
        site = f"{prefix}{index}"
        fake.add_site(site)
        for name in names:
            fake.add_event(site, name)
        before[site] = fake.events(site)
        desired[site] = wanted[index]
    fake.reset_requests()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_bulk, "PAGE_SIZE", 2)
        report = client.events.sync(desired, prune=prune, set_currency=set_currency)
        assert report.ok, report
        again = client.events.plan(desired, prune=prune)
    assert again.empty, again.summary()
    if not prune:
        assert not [r for r in fake.requests if r.method == "DELETE"]

    for site, specs_of_site in desired.items():
        after = {e["id"]: e["name"] for e in fake.events(site)}
        oldest: dict[str, str] = {}  # name (as compared) -> the oldest event's id
        for event in before[site]:
            oldest.setdefault(name_key(event["name"]), event["id"])
        for spec in specs_of_site:
            if name_key(spec.name) in oldest:  # matched: the very same event is kept
                assert after.get(oldest[name_key(spec.name)]) is not None
                continue
            olds = [oldest[name_key(o)] for o in spec.renamed_from if name_key(o) in oldest]
            if olds:  # renamed: the first old name's event now has the new name
                assert after.get(olds[0]) == spec.name
            else:  # created
                assert spec.name in after.values()
