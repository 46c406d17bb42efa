"""Pull, plan and apply across many sites, against FakeFathom with injected faults."""

from __future__ import annotations

import asyncio
import inspect
import math
import pickle
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    AsyncEvents,
    BadRequestError,
    Client,
    ClientClosedError,
    Currency,
    Events,
    EventSpec,
    FathomError,
    InvalidRequestError,
    NotFoundError,
    Progress,
    SitePlan,
    SyncPlan,
    SyncReport,
    TooManyEventsError,
    UnexpectedError,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import Face, face_fixture, opened  # noqa: F401 - face_fixture: `face`
from tests.support.helpers import SITE, TOKEN, FakeTime

SITES = ["S1", "S2", "S3", "S4", "S5"]
SPEC = [EventSpec("Signed up"), EventSpec("Purchased", Currency.EURO)]


@pytest.fixture(name="many")
def _many(fake: FakeFathom) -> FakeFathom:
    for index, site in enumerate(SITES):
        fake.add_site(site)
        for number in range(index * 60):
            fake.add_event(site, f"Old {number}")
    return fake


def library_tasks() -> list[asyncio.Task[object]]:
    """Tasks still running code of the client (the fake server's own are left out)."""
    return [
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task()
        and "fathom_events/testing" not in repr(task)
        and "aiohttp" not in repr(task)
    ]


def listing_pages(fake: FakeFathom, site: str) -> int:
    return max(1, math.ceil(len(fake.events(site)) / 100))


def changes_sent(fake: FakeFathom) -> int:
    return len([r for r in fake.requests if r.method != "GET"])


async def test_pull_reads_every_event_of_every_site(client: AsyncClient, many: FakeFathom) -> None:
    """pull returns each site's events in order, at 100 per page, one listing per site."""
    result = await client.events.pull(SITES)
    assert list(result) == SITES
    for site in SITES:
        assert [e.id for e in result[site]] == [e["id"] for e in many.events(site)]
    assert all(r.query.get("limit") == "100" for r in many.requests)
    assert len(many.requests) == sum(listing_pages(many, s) for s in SITES)
    assert result.ok


async def test_pull_keeps_other_sites_when_one_fails(client: AsyncClient, many: FakeFathom) -> None:
    """A site that fails is reported in .failed while every other site is returned."""
    result = await client.events.pull(["S2", "MISSING", "S3", "S2"])
    assert list(result) == ["S2", "S3"]
    assert list(result.failed) == ["MISSING"]
    assert isinstance(result.failed["MISSING"], NotFoundError)
    assert not result.ok


async def test_pull_reports_progress_per_site(client: AsyncClient, many: FakeFathom) -> None:
    """on_progress is told as each site ends, with counts that only go up."""
    seen: list[Progress] = []
    await client.events.pull(SITES, concurrency=2, on_progress=seen.append)
    assert [p.sites_done for p in seen] == [1, 2, 3, 4, 5]
    assert {p.site_id for p in seen} == set(SITES)
    assert all(p.sites_total == 5 for p in seen)
    assert seen[-1].requests_sent == len(many.requests)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: e.pull("S1"), "site_ids"),
        (lambda e: e.pull(["S1", ""]), "site_ids"),
        (lambda e: e.pull(["S1"], concurrency=0), "concurrency"),
        (lambda e: e.pull(["S1"], max_events_per_site=0), "max_events_per_site"),
        (lambda e: e.pull(["S1"], max_events_per_site=True), "max_events_per_site"),
        (lambda e: e.pull(["S1"], max_events_per_site=2.5), "max_events_per_site"),
        (lambda e: e.plan({"S1": []}, max_events_per_site=-1), "max_events_per_site"),
        (lambda e: e.plan({"S1": []}, max_events_per_site="9"), "max_events_per_site"),
        (lambda e: e.plan({"S1": [EventSpec("a"), EventSpec("a")]}), "desired['S1']"),
        (lambda e: e.plan({"S1": ["a"]}), "desired['S1']"),
        (lambda e: e.apply({"S1": []}), "plan"),
        (lambda e: e.plan({"S1": []}, prune="no"), "prune"),
        (lambda e: e.plan({"S1": []}, set_currency=1), "set_currency"),
        (lambda e: e.pull(["S1"], on_progress=5), "on_progress"),
        (lambda e: e.plan({"S1": []}, on_progress="print"), "on_progress"),
        (
            lambda e: e.apply(SyncPlan((), prune=False, set_currency=False), on_progress=5),
            "on_progress",
        ),
        (lambda e: e.sync({"S1": [EventSpec("a"), EventSpec("a")]}), "desired['S1']"),
        (lambda e: e.sync({"S1": "Signed up"}), "desired['S1']"),
        (lambda e: e.sync({"S1": SPEC}, concurrency=0), "concurrency"),
        (lambda e: e.sync({"S1": SPEC}, max_events_per_site=0), "max_events_per_site"),
        (lambda e: e.sync({"S1": SPEC}, check_token="yes"), "check_token"),
        (lambda e: e.sync({"S1": SPEC}, report={}), "report"),
        (lambda e: e.sync({"S1": SPEC}, prune="no"), "prune"),
        (lambda e: e.sync({"S1": SPEC}, set_currency=None), "set_currency"),
        (lambda e: e.sync({"S1": SPEC}, on_progress=5), "on_progress"),
    ],
)
async def test_bulk_input_checked_before_sending(
    client: AsyncClient, fake: FakeFathom, call: object, field: str
) -> None:
    """Bad input to pull, plan, apply or sync is an InvalidRequestError naming the field, unsent."""
    with pytest.raises(InvalidRequestError) as info:
        await call(client.events)  # type: ignore[operator]
    assert info.value.field == field
    assert fake.requests == []


def test_event_spec_checks_its_fields() -> None:
    """EventSpec refuses an empty name or an unknown currency, and accepts currency strings."""
    with pytest.raises(InvalidRequestError, match="name"):
        EventSpec("")
    with pytest.raises(InvalidRequestError, match="currency"):
        EventSpec("ok", "gold")
    assert EventSpec("ok", "yen").currency is Currency.YEN


async def test_plan_counts_exactly_what_apply_sends(client: AsyncClient, many: FakeFathom) -> None:
    """The plan asks the token once, lists each site once; apply sends plan.requests requests."""
    many.add_event("S1", "Signed up")
    desired = dict.fromkeys(SITES, SPEC)
    plan = await client.events.plan(desired)
    assert len(many.requests_for("GET", "/v1/token")) == 1
    listed = len(many.requests) - 1
    assert listed == plan.list_requests == sum(listing_pages(many, s) for s in SITES)
    assert plan.summary()["create"] == 9
    assert plan.requests == 9
    many.reset_requests()
    report = await client.events.apply(plan)
    assert len(many.requests) == plan.requests == report.requests_sent
    assert report.ok
    assert report.totals()["created"] == 9
    created = next(r for r in many.requests if r.json == {"name": "Purchased", "currency": "euro"})
    assert created.method == "POST"
    again = await client.events.plan(desired)
    assert again.empty


async def test_prune_deletes_what_the_spec_lacks(client: AsyncClient, fake: FakeFathom) -> None:
    """With prune, events not in the spec and second events of a name are deleted."""
    keep = fake.add_event(SITE, "Signed up")
    fake.add_event(SITE, "Signed up")
    fake.add_event(SITE, "Stale")
    plan = await client.events.plan({SITE: [EventSpec("Signed up")]}, prune=True)
    assert [e.name for e in plan.sites[0].delete] == ["Stale", "Signed up"]
    report = await client.events.apply(plan)
    assert [e["id"] for e in fake.events(SITE)] == [keep["id"]]
    assert report.sites[SITE].deleted == [e.id for e in plan.sites[0].delete]


@pytest.mark.parametrize("body", [{}, {"deleted": True}, []])
async def test_apply_records_a_delete_answered_without_an_id_as_done(
    face: Face, fake: FakeFathom, body: object
) -> None:
    """A prune whose delete is answered 2xx without an id is recorded deleted, not failed."""
    fake.add_event(SITE, "Signed up")
    stale = fake.add_event(SITE, "Stale")
    fake.inject(Fault.respond(200, json=body, after_action=True), method="DELETE")
    async with opened(face, fake) as run:
        plan = await run(lambda c: c.events.plan({SITE: [EventSpec("Signed up")]}, prune=True))
        report = await run(lambda c: c.events.apply(plan))
    assert report.ok
    assert report.sites[SITE].deleted == [stale["id"]]
    assert [e["name"] for e in fake.events(SITE)] == ["Signed up"]


async def test_without_prune_nothing_is_deleted(client: AsyncClient, fake: FakeFathom) -> None:
    """Without prune, events outside the spec are left alone and counted unchanged."""
    fake.add_event(SITE, "Stale")
    plan = await client.events.plan({SITE: [EventSpec("New")]})
    assert plan.sites[0].delete == ()
    assert [e.name for e in plan.sites[0].unchanged] == ["Stale"]


async def test_set_currency_rewrites_existing_events(client: AsyncClient, fake: FakeFathom) -> None:
    """Currency cannot be read back, so only set_currency=True rewrites it: one update each."""
    stored = fake.add_event(SITE, "Purchased", currency="dollar")
    quiet = await client.events.plan({SITE: SPEC[1:]})
    assert quiet.empty
    plan = await client.events.plan({SITE: SPEC[1:]}, set_currency=True)
    assert plan.requests == 1
    report = await client.events.apply(plan)
    assert [e.currency for e in report.sites[SITE].updated] == [Currency.EURO]
    assert fake.events(SITE)[0]["currency"] == "euro"
    assert fake.requests[-1].json == {"currency": "euro"}
    assert fake.requests[-1].path.endswith(stored["id"])


async def test_failures_are_reported_and_a_rerun_converges(
    client: AsyncClient, many: FakeFathom
) -> None:
    """A failed change is recorded, the rest is done, and plan+apply again finishes the job."""
    many.inject(Fault.respond(400, json={"error": "Nope."}), method="POST", path="/v1/sites/S3/*")
    desired = dict.fromkeys(SITES, SPEC)
    report = await client.events.apply(await client.events.plan(desired))
    assert not report.ok
    failure = report.sites["S3"].failed[0]
    assert (failure.action, failure.target) == ("create", "Signed up")
    assert isinstance(failure.error, BadRequestError)
    assert report.totals()["created"] == 9
    second = await client.events.apply(await client.events.plan(desired))
    assert second.ok
    assert second.totals()["created"] == 1
    assert (await client.events.plan(desired)).empty


@pytest.mark.parametrize("after_action", [True, False])
async def test_ambiguous_create_relists_and_never_duplicates(
    client: AsyncClient, fake: FakeFathom, after_action: bool
) -> None:
    """After a create that may have taken effect, apply looks before creating again: one event."""
    fake.inject(Fault.html(502, after_action=after_action), method="POST")
    report = await client.events.apply(await client.events.plan({SITE: [EventSpec("Once")]}))
    assert report.ok
    assert [e["name"] for e in fake.events(SITE)] == ["Once"]
    assert [e.name for e in report.sites[SITE].created] == ["Once"]
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == (1 if after_action else 2)


async def test_plan_reports_sites_it_could_not_list(client: AsyncClient, fake: FakeFathom) -> None:
    """A site whose listing fails is in plan.failed, and the other sites are planned."""
    plan = await client.events.plan({SITE: SPEC, "MISSING": SPEC})
    assert [s.site_id for s in plan.sites] == [SITE]
    assert list(plan.failed) == ["MISSING"]
    assert plan.summary()["failed_sites"] == 1


async def cancel_after_first_site(
    job: Callable[[Callable[[Progress], None]], Awaitable[object]],
) -> None:
    """Run ``job(on_progress)`` as a task, cancel it as its first site ends, see it end."""
    task: asyncio.Future[object]

    def stop_after_first(progress: Progress) -> None:
        if progress.sites_done == 1:
            task.cancel()

    task = asyncio.ensure_future(job(stop_after_first))
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_apply_keeps_its_report(
    base_url: str, many: FakeFathom, fake_time: FakeTime
) -> None:
    """Cancelling apply stops cleanly: no task left, the report says what was done, and it was."""
    async with AsyncClient(TOKEN, base_url, clock=fake_time.clock, sleep=fake_time.sleep) as client:
        plan = await client.events.plan(dict.fromkeys(SITES, SPEC))
        report = SyncReport()
        await cancel_after_first_site(
            lambda on_progress: client.events.apply(
                plan, concurrency=1, on_progress=on_progress, report=report
            )
        )
    assert report.cancelled
    assert not report.ok
    done = [e.name for site in report.sites.values() for e in site.created]
    assert 2 <= len(done) < 10
    stored = [
        e["name"] for site in SITES for e in many.events(site) if not e["name"].startswith("Old")
    ]
    # What the report says was done is done; a create cut off in flight may have landed too.
    in_flight = [text for site in report.sites.values() for text in site.interrupted]
    assert set(done) <= set(stored)
    assert len(stored) - len(done) <= len(in_flight) <= 1
    assert changes_sent(many) == len(done) + len(in_flight)
    assert library_tasks() == []


def test_blocking_client_offers_pull_plan_apply(sync_client: Client, fake: FakeFathom) -> None:
    """The blocking client has pull, plan and apply with the same results."""
    fake.add_event(SITE, "Old")
    assert [e.name for e in sync_client.events.pull([SITE])[SITE]] == ["Old"]
    plan = sync_client.events.plan({SITE: SPEC}, prune=True)
    assert isinstance(plan, SyncPlan)
    report = sync_client.events.apply(plan)
    assert report.ok
    assert sorted(e["name"] for e in fake.events(SITE)) == ["Purchased", "Signed up"]
    assert sync_client.events.plan({SITE: SPEC}, prune=True).empty


async def test_plan_reports_progress_per_site(client: AsyncClient, many: FakeFathom) -> None:
    """plan's on_progress is told as each site is listed."""
    seen: list[Progress] = []
    plan = await client.events.plan(dict.fromkeys(SITES, SPEC), on_progress=seen.append)
    assert sorted(p.site_id for p in seen) == sorted(SITES)
    assert [p.sites_done for p in seen] == [1, 2, 3, 4, 5]
    assert seen[-1].requests_sent == plan.list_requests


async def test_plan_reads_generators_once(client: AsyncClient, fake: FakeFathom) -> None:
    """Specs given as a generator are all planned; prune never deletes what was asked for."""
    fake.add_event(SITE, "A")
    fake.add_event(SITE, "Stale")
    specs = (EventSpec(n) for n in ["A", "B"])
    # plan() is annotated with Sequence but documented (docs, bulk work) to take any iterable: the
    # generator is the case under test.
    plan = await client.events.plan({SITE: specs}, prune=True)  # type: ignore[dict-item]
    site = plan.sites[0]
    assert [s.name for s in site.create] == ["B"]
    assert [e.name for e in site.delete] == ["Stale"]


async def test_plan_refuses_a_string_of_specs(client: AsyncClient, fake: FakeFathom) -> None:
    """A site mapped to a string rather than a list of EventSpec is refused before sending."""
    with pytest.raises(InvalidRequestError, match="list of EventSpec"):
        await client.events.plan({SITE: "Signed up"})  # type: ignore[dict-item]
    assert fake.requests == []


async def test_bulk_on_a_closed_client_raises(base_url: str) -> None:
    """pull, plan and apply on a closed client raise ClientClosedError, not a per-site report."""
    client = AsyncClient(TOKEN, base_url)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.events.pull([SITE])
    with pytest.raises(ClientClosedError):
        await client.events.plan({SITE: SPEC})
    with pytest.raises(ClientClosedError):
        await client.events.apply(SyncPlan((), prune=False, set_currency=False))


async def test_progress_callback_errors_surface_once(client: AsyncClient, many: FakeFathom) -> None:
    """An exception from on_progress stops the job and is raised as itself, not in a group."""

    def broken(_: Progress) -> None:
        raise LookupError("callback broke")

    with pytest.raises(LookupError, match="callback broke"):
        await client.events.pull(SITES, on_progress=broken)


async def test_list_requests_count_a_final_empty_page(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """A listing that ends on an empty page counts that request too."""
    stored = fake.add_event(SITE, "Only")
    page = {
        "object": "list",
        "url": "/v1",
        "has_more": True,
        "data": [
            {
                "id": stored["id"],
                "object": "event",
                "name": "Only",
                "currency": None,
                "created_at": "2020-08-21 15:24:00",
            }
        ],
    }
    fake.inject(Fault.respond(200, json=page), method="GET", path="/v1/sites/*")
    plan = await client.events.plan({SITE: [EventSpec("Only")]})
    assert plan.list_requests == len(fake.requests_for("GET", "/v1/sites/*")) == 2


@pytest.mark.parametrize("face", [AsyncEvents, Events])
@pytest.mark.parametrize("method", ["pull", "plan", "sync"])
def test_the_per_site_cap_defaults_to_100_000(face: type, method: str) -> None:
    """pull, plan and sync, on both faces, cap each site at 100,000 events unless told otherwise."""
    parameter = inspect.signature(getattr(face, method)).parameters["max_events_per_site"]
    assert parameter.default == 100_000
    assert SyncPlan((), prune=False, set_currency=False).max_events_per_site == 100_000


def break_for(
    monkeypatch: pytest.MonkeyPatch,
    client: AsyncClient,
    name: str,
    site: str,
    error: BaseException,
    *,
    after_sending: bool = False,
) -> None:
    """Make ``client.events.<name>`` raise ``error`` for one site (before or after the real call).

    A monkeypatch stands in for a bug or a hostile answer that raises something other than a
    FathomError: the other sites run the real method over real HTTP.
    """
    real: Callable[..., Awaitable[Any]] = getattr(client.events, name)

    async def broken(site_id: str, *args: Any, **kwargs: Any) -> Any:
        if site_id != site:
            return await real(site_id, *args, **kwargs)
        if after_sending:
            await real(site_id, *args, **kwargs)
        raise error

    monkeypatch.setattr(client.events, name, broken)


def assert_unexpected(error: FathomError, cause: type[BaseException]) -> None:
    assert isinstance(error, UnexpectedError)
    assert isinstance(error.__cause__, cause)
    assert cause.__name__ in str(error)


async def test_pull_records_an_unexpected_error_as_that_sites_failure(
    client: AsyncClient, many: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-Fathom error listing one site is that site's UnexpectedError; the rest are read."""
    break_for(monkeypatch, client, "list", "S3", ZeroDivisionError("boom"))
    result = await client.events.pull(SITES)
    assert list(result) == ["S1", "S2", "S4", "S5"]
    assert list(result.failed) == ["S3"]
    assert_unexpected(result.failed["S3"], ZeroDivisionError)
    assert "boom" in str(result.failed["S3"])


async def test_plan_records_an_unexpected_error_as_that_sites_failure(
    client: AsyncClient, many: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-Fathom error in one site's listing is in plan.failed; the other sites are planned."""
    break_for(monkeypatch, client, "list", "S2", RecursionError("deep"))
    plan = await client.events.plan(dict.fromkeys(SITES, SPEC))
    assert [s.site_id for s in plan.sites] == ["S1", "S3", "S4", "S5"]
    assert_unexpected(plan.failed["S2"], RecursionError)


@pytest.mark.parametrize("action", ["update", "delete"])
async def test_apply_reports_a_write_broken_after_sending(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """A write that was sent and then broke unexpectedly is a failure that may have been applied."""
    fake.add_site("S2")
    for site in (SITE, "S2"):
        fake.add_event(site, "Purchased")
        fake.add_event(site, "Stale")
    plan = await client.events.plan(
        dict.fromkeys([SITE, "S2"], SPEC[1:]), prune=True, set_currency=True
    )
    break_for(monkeypatch, client, action, "S2", OverflowError("out of range"), after_sending=True)
    report = await client.events.apply(plan)
    [failure] = report.sites["S2"].failed
    assert failure.action == action
    assert_unexpected(failure.error, OverflowError)
    assert failure.error.may_have_been_applied
    assert "may have" in str(failure)
    assert report.sites[SITE].failed == []
    assert len(report.sites[SITE].updated) == len(report.sites[SITE].deleted) == 1
    # Each site's other change still went through.
    assert len(report.sites["S2"].updated) + len(report.sites["S2"].deleted) == 1


async def test_apply_looks_before_creating_again_after_an_unexpected_error(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create that landed and then broke unexpectedly is found by the look: done, not doubled."""
    fake.add_site("S2")
    plan = await client.events.plan(dict.fromkeys([SITE, "S2"], SPEC))
    break_for(monkeypatch, client, "create", "S2", ZeroDivisionError("boom"), after_sending=True)
    report = await client.events.apply(plan)
    assert report.ok
    assert sorted(e.name for e in report.sites["S2"].created) == ["Purchased", "Signed up"]
    assert sorted(e["name"] for e in fake.events("S2")) == ["Purchased", "Signed up"]


async def test_apply_records_a_site_that_breaks_outside_any_request(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """An error outside any request (a hand-made plan holding a non-event) fails that site only."""
    fake.add_site("S2")
    bogus = SitePlan("S2", (), update=((object(), EventSpec("x", Currency.EURO)),))  # type: ignore[arg-type]
    good = SitePlan(SITE, (), create=(EventSpec("New"),))
    report = await client.events.apply(SyncPlan((bogus, good), prune=False, set_currency=True))
    [failure] = report.sites["S2"].failed
    assert (failure.action, failure.target) == ("apply", "S2")
    assert_unexpected(failure.error, AttributeError)
    assert [e.name for e in report.sites[SITE].created] == ["New"]


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt: a BaseException bulk work must not swallow."""


async def test_bulk_work_does_not_swallow_base_exceptions(
    client: AsyncClient, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BaseException in a site's work ends the job; apply's report marks the change cut off."""
    plan = await client.events.plan({SITE: SPEC[:1]})
    break_for(monkeypatch, client, "create", SITE, Interrupt(), after_sending=True)
    report = SyncReport()
    with pytest.raises(BaseException) as info:  # noqa: PT011 - raised as is or in a group
        await client.events.apply(plan, report=report)
    assert info.type is Interrupt or info.group_contains(Interrupt)
    assert report.cancelled
    assert report.sites[SITE].interrupted == ["create 'Signed up'"]
    break_for(monkeypatch, client, "list", SITE, Interrupt())
    with pytest.raises(BaseException) as info:  # noqa: PT011 - raised as is or in a group
        await client.events.pull([SITE])
    assert info.type is Interrupt or info.group_contains(Interrupt)


def test_the_bulk_errors_survive_pickling() -> None:
    """TooManyEventsError and UnexpectedError pickle with their class, fields and message."""
    too_many = pickle.loads(pickle.dumps(TooManyEventsError("S1", 250)))  # noqa: S301 - our own
    assert isinstance(too_many, TooManyEventsError)
    assert (too_many.site_id, too_many.limit) == ("S1", 250)
    assert str(too_many) == str(TooManyEventsError("S1", 250))
    unexpected = UnexpectedError("unexpected OverflowError: date value out of range")
    unexpected.may_have_been_applied = True
    copy = pickle.loads(pickle.dumps(unexpected))  # noqa: S301 - our own bytes
    assert isinstance(copy, UnexpectedError)
    assert copy.may_have_been_applied
    assert str(copy) == str(unexpected)
