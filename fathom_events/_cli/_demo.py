"""``demo``: bulk work against an in-process FakeFathom with a realistic spread.

120 sites (100 small ones, and 20 shops whose events take two pages), a few
milliseconds of latency on every answer, and a few 429s and 503s scripted
on the way. It pulls every site, syncs a spec onto all of them, shows that a
second plan is empty, and says how many requests and retries that took.
"""

from __future__ import annotations

import argparse
import time

from fathom_events import AsyncClient, Currency, EventSpec, SyncReport
from fathom_events.testing import FakeFathom, Fault

from ._commands import counters
from ._output import Output, duration
from ._sync import changes_done, plan_json, report_json, show_plan, show_report

__all__ = ["COMMON", "SHOP_EXTRAS", "demo"]

LATENCY = 0.002
COMMON = (
    EventSpec("Signed up to newsletter #1"),  # every seeded site has it already
    EventSpec("Booked a demo"),
    EventSpec("Upgraded plan", Currency.EURO),
)
SHOP_EXTRAS = (EventSpec("Purchased product #2"), EventSpec("Abandoned cart", Currency.POUND))
_UNAVAILABLE = Fault.respond(503, json={"error": "Service Unavailable"})


def _names(specs: tuple[EventSpec, ...]) -> str:
    return ", ".join(f"{s.name!r}" + (f" ({s.currency})" if s.currency else "") for s in specs)


def _seeded_fake() -> tuple[FakeFathom, list[str], list[str]]:
    """The fake with its sites seeded and its faults scripted; the site and shop ids."""
    fake = FakeFathom(latency=LATENCY)
    sites = fake.seed(100, 30, prefix="SITE")
    shops = fake.seed(20, 130, prefix="SHOP")
    # Retry-After is short so that the demo stays short; Fathom's are longer.
    fake.inject(Fault.rate_limited("0.5"), method="GET", path="/v1/sites/SITE7/events")
    fake.inject(_UNAVAILABLE, method="GET", path="/v1/sites/SHOP3/events")
    fake.inject(Fault.rate_limited("0.5"), method="POST", path="/v1/sites/SITE42/events")
    fake.inject(_UNAVAILABLE, method="POST", path="/v1/sites/SHOP11/events")
    return fake, sites, shops


async def demo(args: argparse.Namespace, out: Output) -> int:
    """Run the demo; 0 when every step did what it should."""
    started = time.monotonic()
    fake, sites, shops = _seeded_fake()
    every_site = sites + shops
    stored = sum(len(fake.events(site)) for site in every_site)
    async with fake.serve() as base_url:
        out.note(
            f"demo: a fake Fathom at {base_url} with {len(every_site)} sites and {stored:,}"
            f" events, {LATENCY * 1000:.0f} ms latency, 2 x 429 and 2 x 503 scripted"
        )
        async with AsyncClient(
            FakeFathom.DEFAULT_TOKEN,
            base_url,
            max_in_flight=args.max_in_flight,
            rate_limit=args.rate_limit,
        ) as client:
            with out.progress("pull", len(every_site), counters(client)) as on_progress:
                pulled = await client.events.pull(every_site, on_progress=on_progress)
            events = sum(len(found) for found in pulled.values())
            out.result(f"pulled {events:,} events from {len(pulled)} sites")

            desired = {site: list(COMMON) for site in sites}
            desired.update({shop: [*COMMON, *SHOP_EXTRAS] for shop in shops})
            out.result(
                f"spec: every site gets {_names(COMMON)}; the {len(shops)} shops also"
                f" {_names(SHOP_EXTRAS)}"
            )
            with out.progress("plan", len(desired), counters(client)) as on_progress:
                plan = await client.events.plan(desired, on_progress=on_progress)
            show_plan(out, plan, per_site=False)
            report = SyncReport()
            with out.progress(
                "apply", plan.requests, counters(client), done=lambda: changes_done(report)
            ) as on_progress:
                await client.events.apply(plan, on_progress=on_progress, report=report)
            show_report(out, report, plan)
            with out.progress("replan", len(desired), counters(client)) as on_progress:
                again = await client.events.plan(desired, on_progress=on_progress)
            if again.empty:
                out.result("second plan: empty, every site has the spec's events")
            else:
                out.result(f"second plan: {again.requests} changes left")
            sent, retries = client.requests_sent, client.retries
    elapsed = time.monotonic() - started
    ok = pulled.ok and report.ok and again.empty and not again.failed
    if out.json_mode:
        out.json(
            {
                "sites": len(every_site),
                "events_pulled": events,
                "pull_failed": {site: str(error) for site, error in pulled.failed.items()},
                "plan": {key: value for key, value in plan_json(plan).items() if key != "changes"},
                "report": report_json(report),
                "second_plan": again.summary(),
                "requests_sent": sent,
                "retries": retries,
                "elapsed_seconds": round(elapsed, 3),
                "ok": ok,
            }
        )
    else:
        out.result(
            f"requests sent: {sent:,}, retries: {retries:,}, elapsed: {duration(elapsed)}"
            f" (the fake received {len(fake.requests):,})"
        )
    return 0 if ok else 1
