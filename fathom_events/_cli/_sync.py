"""``sync FILE``: plan a sync file against the sites, show it, and (unless a dry run) apply it.

Planning lists every site once; applying sends one request per change. A dry
run stops after the plan and says how long applying it would take under the
rate limit. Interrupted, the command still says what was done.
"""

from __future__ import annotations

import argparse
import asyncio

from fathom_events import RateLimit, SyncPlan, SyncReport

from ._commands import connect, counters, every_site
from ._output import Output, duration, tally
from ._syncfile import read_sync_file

#: ``sync --check``'s exit code when something would change (and only then).
EXIT_CHANGES = 3

__all__ = [
    "EXIT_CHANGES",
    "estimate_seconds",
    "plan_json",
    "report_json",
    "show_plan",
    "show_report",
    "sync",
]


def estimate_seconds(rate_limit: RateLimit | None, already_sent: int, requests: int) -> float:
    """How long the rate limit makes ``requests`` more requests take after ``already_sent``.

    The client's limiter lets a burst of ``rate_limit.requests`` through at
    once and spaces every request after that ``per_seconds / requests``
    apart; the time the requests themselves take is not counted.
    """
    if rate_limit is None:
        return 0.0
    beyond = max(0, already_sent + requests - rate_limit.requests)
    return beyond * rate_limit.per_seconds / rate_limit.requests


def describe_estimate(rate_limit: RateLimit | None, already_sent: int, requests: int) -> str:
    if rate_limit is None:
        return "no rate limit set: as fast as the API answers"
    limit = f"{rate_limit.requests:,} requests per {duration(rate_limit.per_seconds)}"
    seconds = estimate_seconds(rate_limit, already_sent, requests)
    if seconds == 0:
        return f"within the burst of the rate limit ({limit}): no waiting"
    interval = duration(rate_limit.per_seconds / rate_limit.requests)
    return f"about {duration(seconds)} under the rate limit ({limit}: one every {interval})"


def plan_json(plan: SyncPlan) -> dict[str, object]:
    """The plan's counts, and the changes of every site that has some."""
    return {
        **plan.summary(),
        "changes": [
            {
                "site_id": site.site_id,
                "create": [
                    {"name": s.name, "currency": None if s.currency is None else str(s.currency)}
                    for s in site.create
                ],
                "update": [
                    {"id": e.id, "name": e.name, "currency": str(s.currency)}
                    for e, s in site.update
                ],
                "delete": [{"id": e.id, "name": e.name} for e in site.delete],
            }
            for site in plan.sites
            if site.changes
        ],
        "failed": {site: str(error) for site, error in plan.failed.items()},
        "refused": [
            {"site_id": site, "action": f.action, "target": f.target, "reason": str(f.error)}
            for site, failures in plan.refused.items()
            for f in failures
        ],
    }


_IN_FLIGHT = "in flight when interrupted (may have taken effect)"


def report_json(report: SyncReport) -> dict[str, object]:
    """The report's totals, whether it is complete, each failure, and each change cut off."""
    return {
        **report.totals(),
        "ok": report.ok,
        "cancelled": report.cancelled,
        "failures": [
            {"site_id": site, "action": f.action, "target": f.target, "error": str(f.error)}
            for site, site_report in report.sites.items()
            for f in site_report.failed
        ],
        "interrupted": [
            {"site_id": site, "change": change}
            for site, site_report in report.sites.items()
            for change in site_report.interrupted
        ],
        "refused": [
            {"site_id": site, "action": f.action, "target": f.target, "reason": str(f.error)}
            for site, site_report in report.sites.items()
            for f in site_report.refused
        ],
    }


def _names(items: list[str]) -> str:
    return ", ".join(repr(item) for item in items)


def show_plan(out: Output, plan: SyncPlan, *, per_site: bool) -> None:
    """The plan in words: each changed site (``per_site``), then the totals and failures."""
    if per_site:
        rows = [
            [
                site.site_id,
                _names([spec.name for spec in site.create]),
                _names([event.name for event, _ in site.update]),
                _names([event.name for event in site.delete]),
            ]
            for site in plan.sites
            if site.changes
        ]
        if rows:
            out.table(["site", "create", "update (currency)", "delete"], rows)
    s = plan.summary()
    refused = f", {s['refused']:,} refused (the token may not)" if s["refused"] else ""
    unlisted = f"; {tally(len(plan.failed), 'site')} could not be listed" if plan.failed else ""
    out.result(
        f"plan: {s['sites']:,} sites: {s['create']:,} to create, {s['update']:,} to update,"
        f" {s['delete']:,} to delete, {s['unchanged']:,} unchanged{refused}{unlisted}"
    )
    for site, error in plan.failed.items():
        out.problem(f"plan {site}: could not list its events: {error}")
    for site, failures in plan.refused.items():
        for failure in failures:
            out.problem(f"plan {site}: refused: {failure}")


def show_report(out: Output, report: SyncReport) -> None:
    """What applying did, then (on stderr, in every mode) each failure and each change cut off."""
    t = report.totals()
    done = "interrupted after" if report.cancelled else "sync:"
    out.result(
        f"{done} {t['created']:,} created, {t['updated']:,} updated, {t['deleted']:,} deleted,"
        f" {t['failed']:,} failed;"
        f" {tally(t['requests_sent'], 'request')}, {tally(t['retries'], 'retry', 'retries')}"
    )
    for site, site_report in report.sites.items():
        for failure in site_report.failed:
            out.problem(f"sync {site}: {failure}")
        for change in site_report.interrupted:
            out.problem(f"sync {site}: {_IN_FLIGHT}: {change}")


async def sync(args: argparse.Namespace, out: Output) -> int:
    """Run ``sync FILE``; 0 when everything was done, 1 when a site or change failed.

    With ``sites = "all"`` in the file (or ``--all-sites``) the sites are
    found first, with ``client.sites.ids()``, and the file's ``[site.ID]``
    tables checked against them, before anything is planned.

    With ``--check`` nothing is applied: 0 when nothing would change, 3
    (:data:`EXIT_CHANGES`) when something would, 1 when a site could not be
    listed (whatever the others would need: the check is incomplete).
    """
    file = read_sync_file(args.file)
    if args.all_sites:
        file = file.for_every_site()
    async with connect(args) as client:
        if file.all_sites:
            found = await every_site(client, out)
            chosen = file.sites_to_sync(found)
            account = set(found)
            for site_id in file.exclude:
                if site_id not in account:
                    out.note(f"exclude: the account has no site {site_id!r} (nothing to leave out)")
            if len(chosen) < len(found):
                out.note(f"syncing {len(chosen):,} sites ({len(found) - len(chosen):,} excluded)")
            desired = file.desired(chosen)
        else:
            desired = file.desired()
        with out.progress("plan", len(desired), counters(client)) as on_progress:
            plan = await client.events.plan(
                desired, prune=args.prune, set_currency=args.set_currency, on_progress=on_progress
            )
        # A change the token may not make is never sent, but the sites still differ from the
        # file: drift for --check, a failure for a sync.
        failed = 1 if plan.failed or (plan.refused and not args.check) else 0
        drift = not plan.empty or bool(plan.refused)
        if args.check or args.dry_run or plan.empty:
            _show_without_applying(out, plan, args, client.requests_sent)
            if args.check and not failed and drift:
                return EXIT_CHANGES
            return failed
        show_plan(out, plan, per_site=False)
        report = SyncReport()
        try:
            with out.progress("apply", len(plan.sites), counters(client)) as on_progress:
                await client.events.apply(plan, on_progress=on_progress, report=report)
        except (asyncio.CancelledError, KeyboardInterrupt):
            _finish(out, plan, report)  # what was done before the interrupt
            raise
        _finish(out, plan, report)
    return 0 if report.ok and not failed else 1


def _show_without_applying(
    out: Output, plan: SyncPlan, args: argparse.Namespace, already_sent: int
) -> None:
    """A dry run's plan and estimate, or the news that there is nothing to do."""
    limit: RateLimit | None = args.rate_limit
    check: bool = args.check
    if out.json_mode:
        estimate = {
            "seconds": estimate_seconds(limit, already_sent, plan.requests),
            "rate_limit": None if limit is None else [limit.requests, limit.per_seconds],
        }
        out.json(
            {
                "dry_run": args.dry_run or check,
                "check": check,
                "ok": not plan.failed,
                "plan": plan_json(plan),
                "estimate": estimate,
            }
        )
        return
    show_plan(out, plan, per_site=args.dry_run or check)
    if plan.empty and not plan.sites and not plan.failed:
        out.result("nothing to change: no site to sync")
    elif plan.empty and not plan.sites:
        out.result(f"nothing done: none of the {tally(len(plan.failed), 'site')} could be listed")
    elif plan.empty and plan.failed:
        out.result(
            f"nothing to change on the {tally(len(plan.sites), 'site')} that could be listed;"
            f" {tally(len(plan.failed), 'site')} could not be listed"
        )
    elif plan.empty and plan.refused:
        needed = tally(plan.summary()["refused"], "change")
        out.result(f"nothing can change: the token may not make the {needed} the sites need")
    elif plan.empty:
        out.result("nothing to change: every site has the file's events")
    elif check and not plan.failed:
        out.result(
            f"check: the sites differ from the file: {tally(plan.requests, 'change')} to make"
            " (sync without --check makes them)"
        )
    else:
        estimate_text = describe_estimate(limit, already_sent, plan.requests)
        out.result(
            f"dry run: applying would send {tally(plan.requests, 'request')}, {estimate_text}"
        )


def _finish(out: Output, plan: SyncPlan, report: SyncReport) -> None:
    if out.json_mode:
        out.json({"dry_run": False, "plan": plan_json(plan), "report": report_json(report)})
    show_report(out, report)
