"""How FakeFathom scales: seeding, and a bulk sync against it.

    python -m benchmarks.fake_scaling                  # every case below
    python -m benchmarks.fake_scaling --seed-only      # seconds: seeding only
    python -m benchmarks.fake_scaling --events 10000,100000 --sync-sites 1000,4000

Seeding puts N events in one site, then N events across 1,000 sites (N/1,000
each), through `FakeFathom.seed`. The sync seeds S sites with 5 events each,
then times `events.plan` and `events.apply` of the async client over loopback
(the fake serving in the same process, as in a user's test), where the plan
creates 2 events per site and keeps 1. Not part of the test suite; it times
one run of each case and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Sequence

from fathom_events import AsyncClient, EventSpec
from fathom_events.testing import FakeFathom

_SPREAD_SITES = 1000
_SYNC_EVENTS_PER_SITE = 5
_SYNC_CONCURRENCY = 16


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def seed_one_site(total: int) -> float:
    """Seconds to seed `total` events into one site."""
    return _timed(lambda: FakeFathom().seed(1, total))


def seed_spread(total: int) -> float:
    """Seconds to seed `total` events across 1,000 sites."""
    return _timed(lambda: FakeFathom().seed(_SPREAD_SITES, total // _SPREAD_SITES))


async def _sync(sites: int) -> tuple[float, float, float, int]:
    fake = FakeFathom()
    started = time.perf_counter()
    site_ids = fake.seed(sites, _SYNC_EVENTS_PER_SITE)
    seeded = time.perf_counter() - started
    # Each seeded site has "Signed up to newsletter #1"; keep it, add two.
    specs = [
        EventSpec("Signed up to newsletter #1"),
        EventSpec("Bench goal A"),
        EventSpec("Bench goal B"),
    ]
    async with (
        fake.serve() as base_url,
        AsyncClient(FakeFathom.DEFAULT_TOKEN, base_url, max_in_flight=64) as client,
    ):
        started = time.perf_counter()
        plan = await client.events.plan(
            dict.fromkeys(site_ids, specs), concurrency=_SYNC_CONCURRENCY
        )
        planned = time.perf_counter() - started
        started = time.perf_counter()
        report = await client.events.apply(plan, concurrency=_SYNC_CONCURRENCY)
        applied = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"the sync of {sites} sites failed: {report}")
    return seeded, planned, applied, len(fake.requests)


def sync(sites: int) -> tuple[float, float, float, int]:
    """Seconds to seed, plan and apply a sync of `sites` sites; requests sent."""
    return asyncio.run(_sync(sites))


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_scaling")
    parser.add_argument("--events", type=_numbers, default=[10_000, 100_000])
    parser.add_argument("--sync-sites", type=_numbers, default=[1000, 4000])
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args(argv)
    print("| Case | Seconds |")
    print("|---|---|")
    for total in args.events:
        print(f"| seed {total:,} events in 1 site | {seed_one_site(total):.2f} |", flush=True)
        spread = seed_spread(total)
        print(
            f"| seed {total:,} events across {_SPREAD_SITES:,} sites | {spread:.2f} |", flush=True
        )
    if args.seed_only:
        return 0
    for sites in args.sync_sites:
        seeded, planned, applied, requests = sync(sites)
        label = f"sync {sites:,} sites ({requests:,} requests)"
        print(
            f"| {label}: seed / plan / apply | {seeded:.2f} / {planned:.2f} / {applied:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
