"""The workloads, and how each kind of driver plays them.

A :class:`Workload` is plain data (it crosses into the worker process as
JSON); :func:`play_async` and :func:`play_blocking` run one against a driver.
Concurrency is "in flight": async drivers run that many tasks, blocking ones
that many threads, each taking the next item of one shared list.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import attrs

from . import dataset
from .drivers import run_in_threads

if TYPE_CHECKING:
    from .dataset import Dataset
    from .drivers import AsyncDriver, BlockingDriver

GETS = "gets"
CREATES = "creates"
WALK = "walk"
PULL = "pull"
BULK = "bulk"


@attrs.frozen
class Workload:
    """One workload: ``kind`` with its sizes.

    * ``gets``: ``count`` single-event GETs spread over the small sites.
    * ``creates``: ``count`` creates on the site ``NEW``.
    * ``walk``: page ``rounds`` times through ``site`` (of ``events`` events).
    * ``pull``: ``events.pull`` of the first ``sites`` small sites, ``in_flight``
      sites at a time.
    * ``bulk``: a bulk job over a slow network (W6): pull the first ``sites``
      remote sites, then sync them (list each again, then four changes each:
      see :func:`dataset.net_desired`), every answer ``delay`` seconds late,
      ``in_flight`` requests at most in flight. ``sites_at_once`` (0: the
      library's default) is the ``concurrency`` the fathom clients pass to
      ``pull``/``plan``/``apply``.

    ``once`` marks a workload measured in the first repeat only (the memory
    check, whose number is a peak, not a rate).
    """

    name: str
    kind: str
    title: str
    count: int = 0
    in_flight: int = 1
    site: str = ""
    events: int = 0
    rounds: int = 1
    sites: int = 0
    events_per_site: int = 0
    once: bool = False
    delay: float = 0.0
    sites_at_once: int = 0

    def net_sites(self) -> list[str]:
        """The remote sites a bulk job works on."""
        return [dataset.net_site_id(number) for number in range(1, self.sites + 1)]

    def requests(self) -> int:
        """HTTP requests one play of this workload sends."""
        if self.kind in (GETS, CREATES):
            return self.count
        if self.kind == WALK:
            return self.rounds * dataset.list_pages(self.events)
        if self.kind == BULK:  # each site listed twice (pull, then sync), then its changes
            return sum(
                2 * dataset.list_pages(dataset.net_site_events(site)) + dataset.NET_CHANGES_PER_SITE
                for site in self.net_sites()
            )
        return self.sites * dataset.list_pages(self.events_per_site)

    def bound(self) -> float | None:
        """A bulk job's least wall time: every request waits ``delay``, ``in_flight`` at once."""
        if self.kind != BULK:
            return None
        return self.requests() * self.delay / self.in_flight

    def expected_events(self) -> int:
        """Events a walk or pull must see (a bulk job: pulled, plus changes made), else 0.

        The worker checks it, to catch a driver that stops early.
        """
        if self.kind == WALK:
            return self.rounds * self.events
        if self.kind == PULL:
            return self.sites * self.events_per_site
        if self.kind == BULK:  # the events pulled, then the changes made
            return sum(
                dataset.net_site_events(site) + dataset.NET_CHANGES_PER_SITE
                for site in self.net_sites()
            )
        return 0

    def warmup(self) -> Workload:
        """A short version of this workload, to open connections and warm caches first."""
        if self.kind in (GETS, CREATES):
            return attrs.evolve(self, count=max(self.in_flight, self.count // 10))
        if self.kind == WALK:  # one walk through a small site
            return attrs.evolve(
                self, site=dataset.site_id(1), events=self.events_per_site, rounds=1
            )
        return attrs.evolve(self, sites=min(self.sites, self.in_flight))

    def summary(self) -> dict[str, Any]:
        """What the report shows of this workload."""
        shown: dict[str, Any] = {"name": self.name, "title": self.title}
        shown["requests"] = self.requests()
        if self.kind == BULK:
            shown.update(
                delay=self.delay,
                in_flight=self.in_flight,
                sites=self.sites,
                bound_seconds=self.bound(),
            )
        return shown

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workload:
        return cls(**data)


def standard(
    data: Dataset,
    *,
    w1: int,
    w2: int,
    w3_rounds: int,
    w4: int,
    w5_concurrency: int,
    w6_in_flight: int,
    w6_sites_at_once: int = 0,
) -> list[Workload]:
    """The issue's workloads at the given sizes, in table order."""
    w6_title = (
        f"W6: pull + sync {data.net_sites} sites, {data.net_delay * 1000:g} ms a request,"
        f" {w6_in_flight} in flight"
    )
    if w6_sites_at_once:
        w6_title += f", {w6_sites_at_once} sites at once"
    return [
        Workload("W1", GETS, f"W1: {w1:,} sequential GETs", count=w1),
        Workload("W2@32", GETS, f"W2: {w2:,} GETs, 32 in flight", count=w2, in_flight=32),
        Workload("W2@64", GETS, f"W2: {w2:,} GETs, 64 in flight", count=w2, in_flight=64),
        Workload(
            "W3",
            WALK,
            f"W3: paginate {data.big_site_events:,} events x{w3_rounds}",
            site=dataset.BIG_SITE,
            events=data.big_site_events,
            rounds=w3_rounds,
            events_per_site=data.events_per_site,
        ),
        Workload("W4", CREATES, f"W4: {w4:,} creates, 32 in flight", count=w4, in_flight=32),
        Workload(
            "W5",
            PULL,
            f"W5: pull {data.sites} sites x {data.events_per_site:,} events,"
            f" {w5_concurrency} at once",
            sites=data.sites,
            events_per_site=data.events_per_site,
            in_flight=w5_concurrency,
        ),
        Workload(
            "MEM",
            WALK,
            f"Memory: paginate {data.huge_site_events:,} events",
            site=dataset.HUGE_SITE,
            events=data.huge_site_events,
            events_per_site=data.events_per_site,
            once=True,
        ),
        Workload(
            "W6",
            BULK,
            w6_title,
            sites=data.net_sites,
            in_flight=w6_in_flight,
            delay=data.net_delay,
            sites_at_once=w6_sites_at_once,
        ),
    ]


def items_for(workload: Workload, data: Dataset) -> list[Any]:
    """What the workload's tasks or threads share out: (site, event) pairs or create indexes.

    GETs go round the small sites, then on to each site's next event. A bulk
    job's item is the desired state of each site, as plain (name, currency)
    pairs: each driver turns it into its own input before the clock starts
    (:meth:`~drivers.AsyncDriver.desired_state`).
    """
    if workload.kind == GETS:
        pairs = []
        for index in range(workload.count):
            site = dataset.site_id(index % data.sites + 1)
            position = (index // data.sites) % data.events_per_site
            pairs.append((site, dataset.event_id(site, position)))
        return pairs
    if workload.kind == CREATES:
        return list(range(workload.count))
    if workload.kind == BULK:
        return [{site: dataset.net_desired(site) for site in workload.net_sites()}]
    return []


def prepared(
    driver: AsyncDriver | BlockingDriver, workload: Workload, items: list[Any]
) -> list[Any]:
    """The items in the driver's own terms (a bulk job's desired state), made before timing."""
    if workload.kind == BULK:
        return [driver.desired_state(items[0])]
    return items


async def play_async(driver: AsyncDriver, workload: Workload, items: list[Any]) -> int:
    """Run the workload once; return what it saw (see :meth:`Workload.expected_events`)."""
    if workload.kind == WALK:
        seen = 0
        for _ in range(workload.rounds):
            seen += await driver.walk(workload.site)
        return seen
    if workload.kind == PULL:
        sites = [dataset.site_id(number) for number in range(1, workload.sites + 1)]
        return await driver.pull(sites, workload.in_flight)
    if workload.kind == BULK:
        return await driver.bulk(items[0], workload.in_flight, workload.sites_at_once)
    await _play_lanes(driver, workload, items)
    return 0


async def _play_lanes(driver: AsyncDriver, workload: Workload, items: list[Any]) -> None:
    """GETs or creates: ``in_flight`` tasks taking the next item of one shared list."""
    remaining = iter(items)
    if workload.kind == GETS:

        async def lane() -> None:
            for site, event_id in remaining:
                await driver.get(site, event_id)

    else:

        async def lane() -> None:
            for index in remaining:
                await driver.create(
                    dataset.CREATE_SITE, dataset.create_name(index), dataset.create_currency(index)
                )

    if workload.in_flight == 1:
        await lane()
    else:
        await asyncio.gather(*(lane() for _ in range(workload.in_flight)))


def play_blocking(driver: BlockingDriver, workload: Workload, items: list[Any]) -> int:
    """Run the workload once from ``in_flight`` threads (or this one); return events seen."""
    if workload.kind == WALK:
        return sum(driver.walk(workload.site) for _ in range(workload.rounds))
    if workload.kind == PULL:
        sites = [dataset.site_id(number) for number in range(1, workload.sites + 1)]
        return driver.pull(sites, workload.in_flight)
    if workload.kind == BULK:
        return driver.bulk(items[0], workload.in_flight, workload.sites_at_once)
    if workload.kind == GETS:

        def one(item: Any) -> None:
            driver.get(*item)

    else:

        def one(item: Any) -> None:
            driver.create(
                dataset.CREATE_SITE, dataset.create_name(item), dataset.create_currency(item)
            )

    if workload.in_flight == 1:
        for item in items:
            one(item)
    else:
        run_in_threads(items, workload.in_flight, one)
    return 0
