"""How many sites a bulk job keeps in flight: four per request slot, or ``concurrency``."""

from __future__ import annotations

import anyio.lowlevel
import pytest

from fathom_events import _bulk
from fathom_events.types import DeletedEvent, Event, EventPage


class Usage:
    """A client's shared limits, as a bulk job reads them."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.requests_sent = 0
        self.retries = 0


class Counting:
    """EventCalls whose list answers an empty page after a few turns of the loop, counting sites."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.listed: list[str] = []

    async def list(self, site_id: str, limit: int, *, starting_after: str | None) -> EventPage:
        del limit, starting_after  # every site here is one empty page
        self.active += 1
        self.peak = max(self.peak, self.active)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        self.active -= 1
        self.listed.append(site_id)
        return EventPage([], has_more=False, url=f"/v1/sites/{site_id}/events")

    async def create(self, site_id: str, name: str, currency: str | None) -> Event:
        raise NotImplementedError

    async def update(
        self, site_id: str, event_id: str, name: str | None = None, currency: str | None = None
    ) -> Event:
        raise NotImplementedError

    async def delete(self, site_id: str, event_id: str) -> DeletedEvent:
        raise NotImplementedError


SITES = [f"S{number}" for number in range(1, 21)]


@pytest.mark.parametrize(
    ("max_in_flight", "concurrency", "peak"),
    [(2, None, 8), (1, None, 4), (8, None, 20), (2, 3, 3), (64, 1, 1)],
)
async def test_a_job_keeps_its_sites_in_flight(
    max_in_flight: int, concurrency: int | None, peak: int
) -> None:
    """By default four sites per request slot are in flight, or all; concurrency bounds them."""
    events = Counting()
    result = await _bulk.pull(
        events,
        Usage(max_in_flight),
        SITES,
        concurrency=concurrency,
        max_events_per_site=100,
        on_progress=None,
    )
    assert events.peak == peak
    assert sorted(events.listed) == sorted(SITES)
    assert list(result) == SITES  # the result keeps the order the sites were given in
