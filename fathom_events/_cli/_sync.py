"""``sync FILE``: plan a sync file against the sites, show it, and (unless a dry run) apply it.

Planning lists every site once; applying sends one request per change. A dry
run stops after the plan and says how long applying it would take under the
rate limit. Interrupted, the command still says what was done.
"""

from __future__ import annotations

import argparse
import asyncio

from fathom_events import AsyncClient, Event, EventSpec, Failure, RateLimit, SyncPlan, SyncReport

from ._commands import connect, counters, every_site
from ._output import Output, duration, tally
from ._syncfile import SyncFile, read_sync_file

#: ``sync --check``'s exit code when something would change (and only then).
EXIT_CHANGES = 3
#: A sync that sent nothing: deletes not confirmed, or more than ``--max-deletes``.
EXIT_USAGE = 2

__all__ = [
    "EXIT_CHANGES",
    "EXIT_USAGE",
    "changes_done",
    "estimate_seconds",
    "plan_json",
    "report_json",
    "show_plan",
    "show_report",
    "sync",
]


def estimate_seconds(rate_limit: RateLimit | None, already_sent: int, requests: int) -> float:
    """How long the rate limit makes ``requests`` more requests take after ``already_sent``.

    The client's limiter sends requests in bursts of up to ``rate_limit.requests``
    (N), each burst ``per_seconds`` (S) after the answers to the one before:
    every burst beyond the first costs S. The time the requests themselves
    take is not counted.
    """
    if rate_limit is None:
        return 0.0
    return (_bursts(rate_limit, already_sent + requests) - 1) * rate_limit.per_seconds


def _bursts(rate_limit: RateLimit, requests: int) -> int:
    """The bursts of N that ``requests`` requests need (at least one)."""
    return max(1, -(-requests // rate_limit.requests))


def describe_estimate(rate_limit: RateLimit | None, already_sent: int, requests: int) -> str:
    if rate_limit is None:
        return "no rate limit set: as fast as the API answers"
    limit = f"{rate_limit.requests:,} requests per {duration(rate_limit.per_seconds)}"
    seconds = estimate_seconds(rate_limit, already_sent, requests)
    if seconds == 0:
        return f"within the burst of the rate limit ({limit}): no waiting"
    bursts = _bursts(rate_limit, already_sent + requests)
    return (
        f"about {duration(seconds)} under the rate limit ({limit}: {bursts:,} bursts of at"
        f" most {rate_limit.requests:,}, each {duration(rate_limit.per_seconds)} after the"
        " answers to the one before)"
    )


def _currency(spec: EventSpec) -> str | None:
    return None if spec.currency is None else str(spec.currency)


def _renamed_to(event: Event, spec: EventSpec) -> dict[str, object]:
    """A rename as JSON: the event, its old and new names, the currency sent with it."""
    return {"id": event.id, "from": event.name, "to": spec.name, "currency": _currency(spec)}


def plan_json(plan: SyncPlan) -> dict[str, object]:
    """The plan's counts, and the changes of every site that has some (or notes)."""
    return {
        **plan.summary(),
        "changes": [
            {
                "site_id": site.site_id,
                "create": [{"name": s.name, "currency": _currency(s)} for s in site.create],
                "rename": [_renamed_to(e, s) for e, s in site.rename],
                "update": [
                    {"id": e.id, "name": e.name, "currency": str(s.currency)}
                    for e, s in site.update
                ],
                "delete": [{"id": e.id, "name": e.name} for e in site.delete],
                "not_renamed": [
                    {"id": e.id, "name": e.name, "to": s.name} for e, s in site.not_renamed
                ],
                "repeated": list(site.repeated),
            }
            for site in plan.sites
            if site.changes or site.not_renamed or site.repeated
        ],
        "failed": {site: str(error) for site, error in plan.failed.items()},
        "refused": [
            {**_failure_json(site, f), "reason": str(f.error)}
            for site, failures in plan.refused.items()
            for f in failures
        ],
    }


def _failure_json(site_id: str, failure: Failure) -> dict[str, object]:
    """Where a failure was and what was tried (``to``: a rename's new name, else null)."""
    return {
        "site_id": site_id,
        "action": failure.action,
        "target": failure.target,
        "to": failure.to,
    }


_IN_FLIGHT = "in flight when interrupted (may have taken effect)"


def _deleted(report: SyncReport, plan: SyncPlan | None) -> list[tuple[str, str, str | None]]:
    """Each event the report says was deleted: site, id, and its name where the plan says."""
    names = (
        {} if plan is None else {(s.site_id, e.id): e.name for s in plan.sites for e in s.delete}
    )
    return [
        (site, event_id, names.get((site, event_id)))
        for site, site_report in report.sites.items()
        for event_id in site_report.deleted
    ]


def _renames(report: SyncReport, plan: SyncPlan | None) -> list[tuple[str, str, str | None, str]]:
    """Each event the report says was renamed: site, id, old name (as planned), new name."""
    old = (
        {} if plan is None else {(s.site_id, e.id): e.name for s in plan.sites for e, _ in s.rename}
    )
    return [
        (site, event.id, old.get((site, event.id)), event.name)
        for site, site_report in report.sites.items()
        for event in site_report.renamed
    ]


def report_json(report: SyncReport, plan: SyncPlan | None = None) -> dict[str, object]:
    """The report's totals, whether it is complete, each failure, each change cut off, and
    each event deleted or renamed (named as the plan names them)."""
    return {
        **report.totals(),
        "ok": report.ok,
        "cancelled": report.cancelled,
        "failures": [
            {**_failure_json(site, f), "error": str(f.error)}
            for site, site_report in report.sites.items()
            for f in site_report.failed
        ],
        "interrupted": [
            {"site_id": site, "change": change}
            for site, site_report in report.sites.items()
            for change in site_report.interrupted
        ],
        "refused": [
            {**_failure_json(site, f), "reason": str(f.error)}
            for site, site_report in report.sites.items()
            for f in site_report.refused
        ],
        "deleted_events": [
            {"site_id": site, "id": event_id, "name": name}
            for site, event_id, name in _deleted(report, plan)
        ],
        "renamed_events": [
            {"site_id": site, "id": event_id, "from": old, "to": new}
            for site, event_id, old, new in _renames(report, plan)
        ],
    }


def changes_done(report: SyncReport) -> int:
    """The changes an apply has finished so far, made or failed (for the apply bar)."""
    done = (
        len(s.created) + len(s.renamed) + len(s.updated) + len(s.deleted) + len(s.failed)
        for s in report.sites.values()
    )
    return sum(done)


def _names(items: list[str]) -> str:
    return ", ".join(repr(item) for item in items)


def _plan_rows(plan: SyncPlan) -> list[list[str]]:
    """One row per site that changes: what it creates, renames, updates and deletes (with ids)."""
    return [
        [
            site.site_id,
            _names([spec.name for spec in site.create]),
            ", ".join(f"{event.name!r} -> {spec.name!r}" for event, spec in site.rename),
            _names([event.name for event, _ in site.update]),
            ", ".join(f"{event.name!r} ({event.id})" for event in site.delete),
        ]
        for site in plan.sites
        if site.changes
    ]


def _count(count: int, text: str) -> str:
    """``, 2 to rename`` when there is any; nothing otherwise (a kind most plans lack)."""
    return f", {count:,} {text}" if count else ""


def show_plan(out: Output, plan: SyncPlan, *, per_site: bool) -> None:
    """The plan in words: each changed site (``per_site``), then the totals and failures.

    Notes on stderr say what the plan leaves as it is and why: an event of an
    old name beside its new one, an event the listing showed twice.
    """
    if per_site and (rows := _plan_rows(plan)):
        headers = ["site", "create", "rename", "update (currency)", "delete"]
        out.table(headers, rows, header_line=True)
    s = plan.summary()
    refused = f", {s['refused']:,} refused (the token may not)" if s["refused"] else ""
    unlisted = f"; {tally(len(plan.failed), 'site')} could not be listed" if plan.failed else ""
    out.result(
        f"plan: {s['sites']:,} sites: {s['create']:,} to create{_count(s['rename'], 'to rename')},"
        f" {s['update']:,} to update, {s['delete']:,} to delete, {s['unchanged']:,} unchanged"
        f"{refused}{unlisted}"
    )
    for site in plan.sites:
        renamed = {spec.name: event for event, spec in site.rename}
        for event, spec in site.not_renamed:
            other = renamed.get(spec.name)
            why = (
                f"the site has {spec.name!r} already"
                if other is None
                else f"{other.name!r} ({other.id}) is renamed to it"
            )
            kept = "it is deleted, as --prune says" if plan.prune else "--prune would delete it"
            out.note(
                f"plan {site.site_id}: {event.name!r} ({event.id}) is not renamed to"
                f" {spec.name!r}: {why}; {kept}"
            )
        for event_id in site.repeated:
            out.note(
                f"plan {site.site_id}: the listing showed the event {event_id} more than once;"
                " it counts once"
            )
    for site_id, error in plan.failed.items():
        out.problem(f"plan {site_id}: could not list its events: {error}")
    for site_id, failures in plan.refused.items():
        for failure in failures:
            out.problem(f"plan {site_id}: refused: {failure}")


def show_report(out: Output, report: SyncReport, plan: SyncPlan | None = None) -> None:
    """What applying did, each event renamed and deleted (named as ``plan`` names them), then
    (on stderr, in every mode) each failure and each change cut off."""
    t = report.totals()
    done = "interrupted after" if report.cancelled else "sync:"
    out.result(
        f"{done} {t['created']:,} created{_count(t['renamed'], 'renamed')}, {t['updated']:,}"
        f" updated, {t['deleted']:,} deleted, {t['failed']:,} failed;"
        f" {tally(t['requests_sent'], 'request')}, {tally(t['retries'], 'retry', 'retries')}"
    )
    for site_id, event_id, old, new in _renames(report, plan):
        out.result(f"renamed {site_id} {event_id} {old!r} -> {new!r}")
    for site_id, event_id, name in _deleted(report, plan):
        out.result(f"deleted {site_id} {event_id}" + ("" if name is None else f" {name!r}"))
    for site_id, site_report in report.sites.items():
        for failure in site_report.failed:
            out.problem(f"sync {site_id}: {failure}")
        for change in site_report.interrupted:
            out.problem(f"sync {site_id}: {_IN_FLIGHT}: {change}")


async def sync(args: argparse.Namespace, out: Output) -> int:
    """Run ``sync FILE``; 0 when everything was done, 1 when a site or change failed.

    With ``sites = "all"`` in the file (or ``--all-sites``) the sites are
    found first, with ``client.sites.ids()``, and the file's ``[site.ID]``
    tables checked against them, before anything is planned.

    With ``--check`` nothing is applied: 0 when nothing would change, 3
    (:data:`EXIT_CHANGES`) when something would, 1 when a site could not be
    listed (whatever the others would need: the check is incomplete).

    A plan that deletes is shown with each delete (site, id, name) before
    anything is sent, and is applied only when confirmed: ``--yes``, or a yes
    at the prompt on a terminal; otherwise exit 2 and nothing is sent.
    ``--max-deletes N``: a plan deleting more than N events exits 2, nothing
    sent (with ``--check`` and ``--dry-run`` too).
    """
    file = read_sync_file(args.file)
    if args.all_sites:
        file = file.for_every_site()
    async with connect(args) as client:
        desired = await _desired(file, client, out)
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
            if _beyond_max_deletes(out, plan, args.max_deletes):
                return EXIT_USAGE
            if args.check and not failed and drift:
                return EXIT_CHANGES
            return failed
        if not out.json_mode:
            show_plan(out, plan, per_site=plan.deletes > 0)
        if _beyond_max_deletes(out, plan, args.max_deletes) or not _deletes_confirmed(
            out, plan, yes=args.yes
        ):
            if out.json_mode:
                out.json({"dry_run": False, "applied": False, "plan": plan_json(plan)})
            return EXIT_USAGE
        report = SyncReport()
        try:
            with out.progress(
                "apply", plan.requests, counters(client), done=lambda: changes_done(report)
            ) as on_progress:
                await client.events.apply(
                    plan, on_progress=on_progress, report=report, max_deletes=args.max_deletes
                )
        except (asyncio.CancelledError, KeyboardInterrupt):
            _finish(out, plan, report)  # what was done before the interrupt
            raise
        _finish(out, plan, report)
    return 0 if report.ok and not failed else 1


async def _desired(file: SyncFile, client: AsyncClient, out: Output) -> dict[str, list[EventSpec]]:
    """What the file wants of each site; with ``sites = "all"``, of each site found now."""
    if not file.all_sites:
        return file.desired()
    found = await every_site(client, out)
    chosen = file.sites_to_sync(found)
    account = set(found)
    for site_id in file.exclude:
        if site_id not in account:
            out.note(f"exclude: the account has no site {site_id!r} (nothing to leave out)")
    if len(chosen) < len(found):
        out.note(f"syncing {len(chosen):,} sites ({len(found) - len(chosen):,} excluded)")
    return file.desired(chosen)


def _beyond_max_deletes(out: Output, plan: SyncPlan, max_deletes: int | None) -> bool:
    """Whether the plan deletes more than ``--max-deletes``; if so, say so."""
    if max_deletes is None or plan.deletes <= max_deletes:
        return False
    out.problem(
        f"sync: the plan deletes {tally(plan.deletes, 'event')}, more than --max-deletes"
        f" {max_deletes:,}; nothing was sent"
    )
    return True


def _deletes_confirmed(out: Output, plan: SyncPlan, *, yes: bool) -> bool:
    """Whether the plan's deletes (if any) may be sent: --yes, or yes at a terminal's prompt.

    Unless the plan's rows were shown on a terminal (JSON mode, or stdout
    redirected to a file or a pipe), each delete is named on stderr first,
    where whoever is asked sees it.
    """
    if not plan.deletes:
        return True
    if not out.results_on_terminal:  # then the plan's rows may not be before anyone's eyes
        for site in plan.sites:
            for event in site.delete:
                out.problem(f"sync {site.site_id}: deleting {event.id} {event.name!r}")
    if yes:
        return True
    deletes = tally(plan.deletes, "event")
    answer = out.confirm(
        f"delete {deletes} for good? Their conversion history cannot be recovered."
    )
    if answer is None:
        out.problem(
            f"sync: the plan deletes {deletes} (listed above), and a delete cannot be undone;"
            " nothing was sent: pass --yes to delete them"
        )
    elif not answer:
        out.problem("sync: nothing was sent")
    return bool(answer)


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
        out.json({"dry_run": False, "plan": plan_json(plan), "report": report_json(report, plan)})
    show_report(out, report, plan)
