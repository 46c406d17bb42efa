"""events.sync: plan and apply each site in one pass, over real HTTP, on both faces."""

from __future__ import annotations

import asyncio
import gc
import inspect
import weakref
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    AsyncEvents,
    ClientClosedError,
    Currency,
    Event,
    EventPage,
    Events,
    EventSpec,
    NotFoundError,
    Progress,
    SitePlan,
    SiteReport,
    SyncReport,
    TokenPermissionError,
    TooManyEventsError,
    _bulk,
)
from fathom_events.testing import FakeFathom, Fault, RecordedRequest
from tests.bulk.test_bulk import (
    SITES,
    SPEC,
    assert_unexpected,
    break_for,
    cancel_after_first_site,
    library_tasks,
)
from tests.support.faces import ASYNC, Face, face_fixture, opened  # noqa: F401 - face_fixture: `face`
from tests.support.helpers import SITE, TOKEN, FakeTime

SITE_IDS = ["S1", "S2", "S3"]


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    """Three sites, each with "Signed up", a stale event and a second "Signed up"."""
    fake = FakeFathom()
    for site in SITE_IDS:
        fake.add_event(site, "Signed up")
        fake.add_event(site, "Stale")
        fake.add_event(site, "Signed up")
    return fake


def writes(fake: FakeFathom) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method != "GET"]


def site_of(request: RecordedRequest) -> str:
    return request.path.split("/")[3]


async def test_sync_brings_every_site_to_the_desired_state(face: Face, fake: FakeFathom) -> None:
    """sync creates and prunes every site as plan+apply would; run again, it changes nothing."""
    desired = dict.fromkeys(SITE_IDS, SPEC)
    async with opened(face, fake) as run:
        report = await run(lambda c: c.events.sync(desired, prune=True, set_currency=True))
        assert isinstance(report, SyncReport)
        assert report.ok
        assert report.totals()["created"] == 3  # "Purchased" on each site
        assert report.totals()["deleted"] == 6  # "Stale" and the second "Signed up"
        assert (report.token_checked, report.token_note) == (True, None)
        for site in SITE_IDS:
            assert sorted(e["name"] for e in fake.events(site)) == ["Purchased", "Signed up"]
            assert [e.name for e in report.sites[site].created] == ["Purchased"]
            assert report.sites[site].skipped_count == 1  # "Signed up", counted, not named
        assert report.requests_sent == len(fake.requests)  # the token, the listings, 9 writes
        fake.reset_requests()
        again = await run(lambda c: c.events.sync(desired, prune=True))
        assert again.ok
        assert writes(fake) == []
        assert again.totals()["skipped"] == 6
        plan = await run(lambda c: c.events.plan(desired, prune=True))
    assert plan.empty


async def test_sync_sends_exactly_what_plan_and_apply_would(fake: FakeFathom) -> None:
    """The writes sync sends are the changes a plan of the same state lists, each sent once."""
    wanted = (EventSpec("Signed up", "euro"), EventSpec("New"))
    desired = dict.fromkeys(SITE_IDS, wanted)
    async with opened(ASYNC, fake) as run:
        plan = await run(lambda c: c.events.plan(desired, prune=True, set_currency=True))
        fake.reset_requests()
        report = await run(lambda c: c.events.sync(desired, prune=True, set_currency=True))
    planned = []
    for site in plan.sites:
        path = f"/v1/sites/{site.site_id}/events"
        planned += [("POST", path) for _ in site.create]
        planned += [("POST", f"{path}/{event.id}") for event, _ in site.update]
        planned += [("DELETE", f"{path}/{event.id}") for event in site.delete]
    planned.sort()
    assert sorted((r.method, r.path) for r in writes(fake)) == planned
    assert len(planned) == plan.requests == 12
    # The token's abilities are known from the plan: the sync lists and writes, nothing more.
    assert report.requests_sent == len(fake.requests) == plan.list_requests + plan.requests
    assert [e.currency for s in report.sites.values() for e in s.updated] == [Currency.EURO] * 3


async def test_sync_changes_a_site_as_soon_as_it_is_listed(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """One site at a time, each site's writes follow its own listing: no wait for the others."""
    await client.events.sync(dict.fromkeys(SITE_IDS, SPEC), prune=True, concurrency=1)
    order = [(r.method, site_of(r)) for r in fake.requests if r.path.startswith("/v1/sites/")]
    sites_in_order = [site for _, site in order]
    assert sites_in_order == sorted(sites_in_order)  # S1's work, then S2's, then S3's
    for site in SITE_IDS:
        own = [method for method, s in order if s == site]
        assert own[0] == "GET"
        assert set(own[1:]) == {"POST", "DELETE"}


async def test_sync_reports_a_site_it_could_not_list(client: AsyncClient, fake: FakeFathom) -> None:
    """A site that cannot be listed is a "list" failure, nothing written; the others are synced."""
    report = await client.events.sync({"S1": SPEC, "MISSING": SPEC})
    [failure] = report.sites["MISSING"].failed
    assert (failure.action, failure.target) == ("list", "MISSING")
    assert isinstance(failure.error, NotFoundError)
    assert not failure.error.may_have_been_applied
    assert not [r for r in writes(fake) if site_of(r) == "MISSING"]
    assert not report.ok
    assert [e.name for e in report.sites["S1"].created] == ["Purchased"]


async def test_sync_keeps_the_per_site_cap(client: AsyncClient, fake: FakeFathom) -> None:
    """A site over max_events_per_site fails as TooManyEventsError, with nothing written to it."""
    report = await client.events.sync(dict.fromkeys(SITE_IDS, SPEC), max_events_per_site=2)
    for site in SITE_IDS:
        [failure] = report.sites[site].failed
        assert failure.action == "list"
        assert isinstance(failure.error, TooManyEventsError)
    assert writes(fake) == []


async def test_sync_with_a_read_only_token_sends_only_reads(face: Face, fake: FakeFathom) -> None:
    """With a read-only token every change is refused in the report and none is sent."""
    fake.add_token("ro", ["all-sites-readonly"])
    async with opened(face, fake, "ro") as run:
        report = await run(lambda c: c.events.sync(dict.fromkeys(SITE_IDS, SPEC), prune=True))
    assert writes(fake) == []
    assert report.ok  # nothing was tried, so nothing failed
    refused = report.sites["S1"].refused
    assert [(f.action, f.target) for f in refused] == [
        ("create", "Purchased"),
        ("delete", "Stale"),
        ("delete", "Signed up"),
    ]
    assert all(isinstance(f.error, TokenPermissionError) for f in refused)
    assert report.totals()["refused"] == 9
    assert report.token_checked


async def test_sync_fails_a_site_the_token_may_not_read(fake: FakeFathom) -> None:
    """A site the token may not read fails before any request is sent for it."""
    fake.add_token("scoped", ["manage:S1"], name="deploy")
    async with opened(ASYNC, fake, "scoped") as run:
        report = await run(lambda c: c.events.sync({"S1": SPEC, "S2": SPEC}))
    [failure] = report.sites["S2"].failed
    assert failure.action == "list"
    assert isinstance(failure.error, TokenPermissionError)
    assert not [r for r in fake.requests if r.path.startswith("/v1/sites/S2")]
    assert [e.name for e in report.sites["S1"].created] == ["Purchased"]


async def test_sync_without_the_token_check_says_so(client: AsyncClient, fake: FakeFathom) -> None:
    """check_token=False sends no token request, and the report says the check was off."""
    report = await client.events.sync({"S1": SPEC}, check_token=False)
    assert fake.requests_for("GET", "/v1/token") == []
    assert report.token_checked is False
    assert "check_token=False" in (report.token_note or "")
    assert report.ok


async def test_apply_reports_the_plans_token_check(client: AsyncClient, fake: FakeFathom) -> None:
    """apply's report carries the plan's token_checked and token_note."""
    checked = await client.events.apply(await client.events.plan({"S1": SPEC}))
    assert (checked.token_checked, checked.token_note) == (True, None)
    plan = await client.events.plan({"S1": SPEC}, check_token=False)
    unchecked = await client.events.apply(plan)
    assert (unchecked.token_checked, unchecked.token_note) == (False, plan.token_note)


async def test_sync_reports_progress_per_site(client: AsyncClient, fake: FakeFathom) -> None:
    """on_progress is told as each site is done, with the requests sent so far."""
    seen: list[Progress] = []
    report = await client.events.sync(dict.fromkeys(SITE_IDS, SPEC), on_progress=seen.append)
    assert sorted(p.site_id for p in seen) == SITE_IDS
    assert [p.sites_done for p in seen] == [1, 2, 3]
    assert seen[-1].requests_sent == report.requests_sent  # the token's request included


async def test_sync_records_a_write_broken_unexpectedly(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-Fathom error after a delete was sent is that change's failure, maybe applied."""
    break_for(monkeypatch, client, "delete", "S2", OverflowError("out"), after_sending=True)
    report = await client.events.sync({"S1": SPEC[:1], "S2": SPEC[:1]}, prune=True)
    failures = report.sites["S2"].failed
    assert [f.action for f in failures] == ["delete", "delete"]
    assert_unexpected(failures[0].error, OverflowError)
    assert failures[0].error.may_have_been_applied
    assert report.sites["S1"].failed == []


async def test_cancelled_sync_keeps_its_report(
    base_url: str, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """Cancelling sync stops cleanly: no task left, the report says what was done, and it was."""
    async with AsyncClient(TOKEN, base_url, clock=fake_time.clock, sleep=fake_time.sleep) as client:
        report = SyncReport()
        await cancel_after_first_site(
            lambda on_progress: client.events.sync(
                dict.fromkeys(SITE_IDS, SPEC),
                concurrency=1,
                on_progress=on_progress,
                report=report,
            )
        )
    assert report.cancelled
    assert not report.ok
    assert [e.name for e in report.sites["S1"].created] == ["Purchased"]
    assert [e["name"] for e in fake.events("S1")].count("Purchased") == 1
    done = sum(len(s.created) for s in report.sites.values())
    in_flight = sum(len(s.interrupted) for s in report.sites.values())
    assert len(writes(fake)) == done + in_flight
    assert library_tasks() == []


async def test_sync_on_a_closed_client_raises(base_url: str) -> None:
    """sync on a closed client raises ClientClosedError, not a per-site report."""
    client = AsyncClient(TOKEN, base_url)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.events.sync({SITE: SPEC})


def test_the_blocking_sync_mirrors_the_async_one() -> None:
    """Events.sync takes what AsyncEvents.sync takes, with the same defaults."""
    blocking = inspect.signature(Events.sync).parameters
    coroutine = inspect.signature(AsyncEvents.sync).parameters
    assert list(blocking) == list(coroutine)
    assert [p.default for p in blocking.values()] == [p.default for p in coroutine.values()]
    assert coroutine["max_events_per_site"].default == 100_000


async def test_sync_lists_a_site_of_several_pages_whole(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """A site of several pages is listed to its end before its changes are worked out."""
    old = [f"Old {number}" for number in range(130)]
    for site in SITES:
        for name in old:
            fake.add_event(site, name)
    wanted = [EventSpec(name) for name in old] + [EventSpec("New")]
    report = await client.events.sync(dict.fromkeys(SITES, wanted))
    assert report.ok
    assert sorted((r.method, r.path) for r in writes(fake)) == [
        ("POST", f"/v1/sites/{site}/events") for site in sorted(SITES)
    ]
    for site in SITES:
        assert [e["name"] for e in fake.events(site)][-1] == "New"
        assert report.sites[site].skipped_count >= 130


@pytest.mark.parametrize("max_deletes", [None, 10])  # 10: every site planned first
async def test_sync_lets_a_sites_listing_go_before_its_changes(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch, max_deletes: int | None
) -> None:
    """While a site's changes are sent, only the events to update or delete are still held."""
    listed: weakref.WeakSet[Event] = weakref.WeakSet()
    alive_at_create: list[list[str]] = []
    real_list, real_create = client.events.list, client.events.create

    async def listing(*args: Any, **kwargs: Any) -> EventPage:
        page = await real_list(*args, **kwargs)
        listed.update(page.data)
        return page

    async def creating(*args: Any, **kwargs: Any) -> Event:
        gc.collect()
        alive_at_create.append(sorted(event.name for event in listed))
        return await real_create(*args, **kwargs)

    monkeypatch.setattr(client.events, "list", listing)
    monkeypatch.setattr(client.events, "create", creating)
    report = await client.events.sync(
        {"S1": SPEC},
        prune=True,
        report=SyncReport(keep_skipped_names=True),
        max_deletes=max_deletes,
    )
    assert report.ok
    assert report.sites["S1"].skipped == ["Signed up"]
    # Held: the two events to delete ("Stale" and the second "Signed up"); not the one kept.
    assert alive_at_create == [["Signed up", "Stale"]]


async def cancelled_once_sent(
    client: AsyncClient, fake: FakeFathom, method: str, path: str
) -> SyncReport:
    """Sync S1 with ``method path`` hanging; cancel it once that request has arrived."""
    fake.inject(Fault.hang(), method=method, path=path)
    report = SyncReport()
    task = asyncio.ensure_future(client.events.sync({"S1": SPEC}, report=report))
    for _ in range(100_000):  # the loop runs; no time passes
        if fake.requests_for(method, path):
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert report.cancelled
    return report


async def test_a_sync_cancelled_while_the_token_is_read_says_so(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """Cancelled while asking the token, sync's report is cancelled and counts the request."""
    report = await cancelled_once_sent(client, fake, "GET", "/v1/token")
    assert report.requests_sent == len(fake.requests) == 1
    assert report.sites == {}


async def test_a_sync_cancelled_mid_change_lists_the_change_in_flight(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """A create cut off by cancellation is in interrupted: it may or may not have landed."""
    report = await cancelled_once_sent(client, fake, "POST", "/v1/sites/S1/events")
    assert report.sites["S1"].interrupted == ["create 'Purchased'"]
    assert report.sites["S1"].created == []
    assert report.requests_sent == len(fake.requests)


async def test_sync_records_an_unexpected_error_listing_a_site(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-Fathom error listing one site is its "list" failure; nothing was sent to change it."""
    break_for(monkeypatch, client, "list", "S2", OverflowError("date value out of range"))
    report = await client.events.sync(dict.fromkeys(SITE_IDS, SPEC), prune=True)
    [failure] = report.sites["S2"].failed
    assert failure.action == "list"
    assert_unexpected(failure.error, OverflowError)
    assert not failure.error.may_have_been_applied
    assert not [r for r in writes(fake) if site_of(r) == "S2"]
    assert report.sites["S1"].failed == report.sites["S3"].failed == []


async def test_sync_records_a_site_that_breaks_outside_any_change(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after planning and outside any one change is that site's "apply" failure."""
    real = _bulk._apply_site

    async def broken(events: Any, site: SitePlan, report: SiteReport, limit: int) -> bool:
        if site.site_id == "S2":
            raise ZeroDivisionError("a bug")
        return await real(events, site, report, limit)

    monkeypatch.setattr(_bulk, "_apply_site", broken)
    report = await client.events.sync(dict.fromkeys(SITE_IDS, SPEC))
    [failure] = report.sites["S2"].failed
    assert (failure.action, failure.target) == ("apply", "S2")
    assert_unexpected(failure.error, ZeroDivisionError)
    assert [e.name for e in report.sites["S1"].created] == ["Purchased"]


@pytest.mark.parametrize("after_action", [True, False])
async def test_sync_looks_before_creating_again(
    client: AsyncClient, fake: FakeFathom, after_action: bool
) -> None:
    """After a create that may have taken effect, sync lists the site before sending it again."""
    fake.inject(Fault.html(502, after_action=after_action), method="POST")
    report = await client.events.sync({"S1": [EventSpec("Once")]})
    assert report.ok
    assert [e["name"] for e in fake.events("S1")].count("Once") == 1
    assert [e.name for e in report.sites["S1"].created] == ["Once"]
    assert len(fake.requests_for("POST", "/v1/sites/S1/events")) == (1 if after_action else 2)
