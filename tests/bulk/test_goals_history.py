"""Goals as code never destroys history: renames, outer whitespace, repeated listings, deletes.

Everything runs over real HTTP against FakeFathom, on both faces.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    EventSpec,
    InvalidRequestError,
    SyncPlan,
    SyncReport,
    TooManyDeletesError,
)
from fathom_events._protocol import OUTER_SPACE, name_key
from fathom_events.testing import FakeFathom, Fault, RecordedRequest
from fathom_events.testing._input import TRIMMED
from tests.support.faces import Face, face_fixture, opened  # noqa: F401 - face_fixture: `face`
from tests.support.helpers import SITE, TOKEN, FakeTime


def writes(fake: FakeFathom) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method != "GET"]


def names(fake: FakeFathom, site: str = SITE) -> list[str]:
    return [event["name"] for event in fake.events(site)]


# --- renames --------------------------------------------------------------------------------


def test_event_spec_takes_the_names_it_had_before() -> None:
    """EventSpec keeps renamed_from as a tuple of checked names, in the order given."""
    spec = EventSpec("Signed up", renamed_from=["Sign-up", "Registered"])
    assert spec.renamed_from == ("Sign-up", "Registered")
    assert EventSpec("Signed up").renamed_from == ()


@pytest.mark.parametrize(
    ("renamed_from", "rule"),
    [
        ("Sign-up", "a list of names (not one string)"),
        (["Sign-up", "Sign-up"], "'Sign-up' twice"),
        (["Signed up"], "the event's own name"),
        (["Signed up "], "must not begin or end with whitespace"),
        ([""], "must not be empty"),
        ([3], "must be a string"),
        (None, "a list of names"),
    ],
)
def test_event_spec_refuses_a_bad_renamed_from(renamed_from: object, rule: str) -> None:
    """A bad renamed_from is an InvalidRequestError naming the field and the rule."""
    with pytest.raises(InvalidRequestError) as raised:
        EventSpec("Signed up", renamed_from=renamed_from)  # type: ignore[arg-type]
    assert raised.value.field.startswith("renamed_from")
    assert rule in str(raised.value)


async def test_a_rename_keeps_the_event_and_its_history(face: Face) -> None:
    """An old name is renamed in place (same id), one request, and a second plan is empty."""
    fake = FakeFathom()
    old = fake.add_event(SITE, "Sign-up")
    desired = {SITE: [EventSpec("Signed up", renamed_from=["Sign-up"])]}
    async with opened(face, fake) as run:
        plan = await run(lambda c: c.events.plan(desired, prune=True))
        (site,) = plan.sites
        assert [(e.id, s.name) for e, s in site.rename] == [(old["id"], "Signed up")]
        assert (site.create, site.delete, plan.requests) == ((), (), 1)
        assert plan.summary()["rename"] == 1
        report = await run(lambda c: c.events.apply(plan))
        assert [e.name for e in report.sites[SITE].renamed] == ["Signed up"]
        assert report.totals()["renamed"] == 1
        again = await run(lambda c: c.events.plan(desired, prune=True))
    assert again.empty
    assert fake.events(SITE) == [{**old, "name": "Signed up", "currency": "dollar"}]
    (write,) = writes(fake)
    assert (write.method, write.path) == ("POST", f"/v1/sites/{SITE}/events/{old['id']}")
    assert write.json == {"name": "Signed up"}


async def test_a_rename_leaves_the_currency_alone_unless_set_currency(face: Face) -> None:
    """A rename sends the spec's currency only with set_currency, in the same one request."""
    fake = FakeFathom()
    old = fake.add_event(SITE, "Sign-up", "pound")
    spec = EventSpec("Signed up", "euro", renamed_from=["Sign-up"])
    async with opened(face, fake) as run:
        await run(lambda c: c.events.sync({SITE: [spec]}))
        assert fake.events(SITE)[0]["currency"] == "pound"
        fake.add_event("OTHER", "Sign-up", "pound")
        await run(lambda c: c.events.sync({"OTHER": [spec]}, set_currency=True))
    assert [w.json for w in writes(fake)] == [
        {"name": "Signed up"},
        {"name": "Signed up", "currency": "euro"},
    ]
    assert fake.events("OTHER")[0]["currency"] == "euro"
    assert fake.events(SITE)[0]["id"] == old["id"]


async def test_an_old_name_beside_the_new_one_is_an_extra(face: Face) -> None:
    """Where the new name exists, the old event is left (said so), deleted only with prune."""
    fake = FakeFathom()
    fake.add_event(SITE, "Signed up")
    old = fake.add_event(SITE, "Sign-up")
    desired = {SITE: [EventSpec("Signed up", renamed_from=["Sign-up"])]}
    async with opened(face, fake) as run:
        plan = await run(lambda c: c.events.plan(desired))
        (site,) = plan.sites
        assert site.rename == ()
        assert [(e.id, s.name) for e, s in site.not_renamed] == [(old["id"], "Signed up")]
        assert plan.empty
        pruned = await run(lambda c: c.events.plan(desired, prune=True))
    assert [e.id for e in pruned.sites[0].delete] == [old["id"]]
    assert [(e.id, s.name) for e, s in pruned.sites[0].not_renamed] == [(old["id"], "Signed up")]


async def test_the_first_old_name_found_is_renamed(face: Face) -> None:
    """With several old names on one site, the first in renamed_from order is renamed."""
    fake = FakeFathom()
    older = fake.add_event(SITE, "Registered")
    newer = fake.add_event(SITE, "Sign-up")
    desired = {SITE: [EventSpec("Signed up", renamed_from=["Sign-up", "Registered"])]}
    async with opened(face, fake) as run:
        await run(lambda c: c.events.sync(desired))
    assert {e["id"]: e["name"] for e in fake.events(SITE)} == {
        older["id"]: "Registered",
        newer["id"]: "Signed up",
    }


async def test_a_renamed_from_missing_everywhere_is_harmless(face: Face) -> None:
    """An old name no site has: the event is created as usual, and nothing else happens."""
    fake = FakeFathom()
    fake.add_site(SITE)
    desired = {SITE: [EventSpec("Signed up", renamed_from=["Never existed"])]}
    async with opened(face, fake) as run:
        report = await run(lambda c: c.events.sync(desired, prune=True))
    assert report.ok
    assert names(fake) == ["Signed up"]


@pytest.mark.parametrize(
    ("specs", "rule"),
    [
        (
            [EventSpec("A", renamed_from=["B"]), EventSpec("B")],
            "the event 'B' is wanted, but 'A' is renamed from it",
        ),
        (
            [EventSpec("B"), EventSpec("A", renamed_from=["B"])],
            "names the event 'B', which is also wanted",
        ),
        (
            [EventSpec("A", renamed_from=["C"]), EventSpec("B", renamed_from=["C"])],
            "'C' is in the renamed_from of both 'A' and 'B'",
        ),
        ([EventSpec("A"), EventSpec("A")], "names 'A' twice"),
    ],
)
async def test_plan_refuses_renames_that_contradict(
    face: Face, specs: list[EventSpec], rule: str
) -> None:
    """A desired state whose renames contradict its names is refused before anything is sent."""
    fake = FakeFathom()
    fake.add_site(SITE)
    async with opened(face, fake) as run:
        with pytest.raises(InvalidRequestError, match=rule):
            await run(lambda c: c.events.plan({SITE: specs}))
    assert fake.requests == []


async def test_a_token_that_may_only_read_refuses_a_rename(face: Face) -> None:
    """A rename on a site the token may only read is refused, counted nowhere, never sent."""
    fake = FakeFathom({TOKEN: ["all-sites-readonly"]})
    fake.add_event(SITE, "Sign-up")
    desired = {SITE: [EventSpec("Signed up", renamed_from=["Sign-up"])]}
    async with opened(face, fake) as run:
        report = await run(lambda c: c.events.sync(desired))
    (refused,) = report.sites[SITE].refused
    assert (refused.action, refused.target, refused.to) == ("rename", "Sign-up", "Signed up")
    assert str(refused).startswith("rename 'Sign-up' -> 'Signed up': the token")
    assert writes(fake) == []


# --- names as Fathom stores them ------------------------------------------------------------


def test_what_fathom_trims_is_what_a_name_may_not_begin_or_end_with() -> None:
    """OUTER_SPACE is Python's whitespace and what Laravel trims besides (as FakeFathom does)."""
    spaces = {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}
    assert set(OUTER_SPACE) == spaces | set(TRIMMED)
    assert all(name_key(f"{c}A{c}") == "A" for c in OUTER_SPACE)


@pytest.mark.parametrize("name", ["Signed up ", " Signed up", "Signed up\n", "\u200bSigned up"])
async def test_a_padded_name_is_refused_before_sending(face: Face, name: str) -> None:
    """create, update and EventSpec refuse outer whitespace, naming the rule and the value."""
    fake = FakeFathom()
    fake.add_site(SITE)
    with pytest.raises(InvalidRequestError, match="must not begin or end with whitespace") as bad:
        EventSpec(name)
    assert repr(name) in str(bad.value)
    async with opened(face, fake) as run:
        for call in (
            lambda c: c.events.create(SITE, name),
            lambda c: c.events.update(SITE, "ABCDEFGH", name=name),
        ):
            with pytest.raises(InvalidRequestError, match="whitespace") as raised:
                await run(call)
            assert raised.value.field == "name"
    assert fake.requests == []


async def test_names_that_differ_by_outer_whitespace_are_one_event(face: Face) -> None:
    """An event stored padded (by another client) matches its trimmed spec: kept, no create."""
    fake = FakeFathom()
    padded = fake.add_event(SITE, " Signed up\t")
    desired = {SITE: [EventSpec("Signed up")]}
    async with opened(face, fake) as run:
        plan = await run(lambda c: c.events.plan(desired, prune=True))
        await run(lambda c: c.events.sync(desired, prune=True))
    assert plan.empty
    assert [e.id for e in plan.sites[0].unchanged] == [padded["id"]]
    assert writes(fake) == []


async def test_names_are_compared_case_sensitively(face: Face) -> None:
    """Names that differ by case are different events, as Fathom stores them."""
    fake = FakeFathom()
    fake.add_event(SITE, "signed up")
    async with opened(face, fake) as run:
        plan = await run(lambda c: c.events.plan({SITE: [EventSpec("Signed up")]}))
    assert [s.name for s in plan.sites[0].create] == ["Signed up"]  # names are case-sensitive


# --- a listing that repeats an event --------------------------------------------------------


def repeating_listing(fake: FakeFathom, site: str) -> None:
    """The site's first page answers with its first event twice, as overlapping pages would."""
    first = fake.events(site)[0]
    event = {**first, "object": "event", "currency": None, "created_at": "2024-01-01 00:00:00"}
    others = [
        {**e, "object": "event", "currency": None, "created_at": "2024-01-01 00:00:00"}
        for e in fake.events(site)[1:]
    ]
    fake.inject(
        Fault.respond(
            200,
            json={
                "object": "list",
                "url": "/x",
                "has_more": False,
                "data": [event, *others, event],
            },
        ),
        method="GET",
        path=f"/v1/sites/{site}/events",
    )


async def test_an_event_listed_twice_is_one_event_and_never_deleted(face: Face) -> None:
    """An id seen twice in a listing is one event (said so): prune never deletes the only one."""
    fake = FakeFathom()
    only = fake.add_event(SITE, "Signed up")
    fake.add_event(SITE, "Stale")
    desired = {SITE: [EventSpec("Signed up")]}
    async with opened(face, fake) as run:
        repeating_listing(fake, SITE)
        plan = await run(lambda c: c.events.plan(desired, prune=True))
        (site,) = plan.sites
        assert site.repeated == (only["id"],)
        assert [e.name for e in site.delete] == ["Stale"]
        repeating_listing(fake, SITE)
        report = await run(lambda c: c.events.sync(desired, prune=True))
        assert report.sites[SITE].repeated == [only["id"]]
        repeating_listing(fake, SITE)
        pulled = await run(lambda c: c.events.pull([SITE]))
    assert names(fake) == ["Signed up"]
    assert [e.id for e in pulled[SITE]] == [only["id"]]
    assert pulled.repeated == {SITE: (only["id"],)}


# --- max_deletes ----------------------------------------------------------------------------


@pytest.fixture(name="stale")
def _stale() -> FakeFathom:
    """Two sites, each with a wanted event and two stale ones."""
    fake = FakeFathom()
    for site in ("S1", "S2"):
        fake.add_event(site, "Signed up")
        fake.add_event(site, "Stale 1")
        fake.add_event(site, "Stale 2")
    return fake


DESIRED = {site: [EventSpec("Signed up"), EventSpec("New")] for site in ("S1", "S2")}


async def test_apply_over_max_deletes_sends_nothing(face: Face, stale: FakeFathom) -> None:
    """apply with more deletes than max_deletes raises TooManyDeletesError and sends no write."""
    async with opened(face, stale) as run:
        plan = await run(lambda c: c.events.plan(DESIRED, prune=True))
        with pytest.raises(TooManyDeletesError) as raised:
            await run(lambda c: c.events.apply(plan, max_deletes=3))
        assert (raised.value.deletes, raised.value.max_deletes) == (4, 3)
        report = await run(lambda c: c.events.apply(plan, max_deletes=4))
    assert report.totals()["deleted"] == 4
    assert "4 events" in str(raised.value)
    assert "3" in str(raised.value)
    copy = pickle.loads(pickle.dumps(raised.value))  # noqa: S301 - our own error
    assert (copy.deletes, copy.max_deletes, str(copy)) == (4, 3, str(raised.value))


async def test_sync_over_max_deletes_sends_no_write(face: Face, stale: FakeFathom) -> None:
    """sync with more deletes than max_deletes lists every site, then stops before any write."""
    refused = SyncReport()
    async with opened(face, stale) as run:
        with pytest.raises(TooManyDeletesError):
            await run(lambda c: c.events.sync(DESIRED, prune=True, max_deletes=0, report=refused))
        assert writes(stale) == []
        # The report says nothing was done: only the token's and the listings' requests.
        assert (refused.cancelled, refused.totals()["skipped"]) == (False, 0)
        assert refused.requests_sent == len(stale.requests) == 3
        report = await run(lambda c: c.events.sync(DESIRED, prune=True, max_deletes=4))
    assert report.ok
    assert report.totals()["deleted"] == 4
    assert report.totals()["created"] == 2


async def test_max_deletes_without_prune_changes_nothing(face: Face, stale: FakeFathom) -> None:
    """With no deletes planned, max_deletes=0 never stops a sync."""
    async with opened(face, stale) as run:
        report = await run(lambda c: c.events.sync(DESIRED, max_deletes=0))
    assert report.totals()["created"] == 2


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
async def test_max_deletes_is_checked(face: Face, stale: FakeFathom, bad: object) -> None:
    """max_deletes must be None or an int >= 0: refused before anything is sent."""
    async with opened(face, stale) as run:
        plan = SyncPlan((), prune=True, set_currency=False)
        for call in (
            lambda c: c.events.apply(plan, max_deletes=bad),
            lambda c: c.events.sync(DESIRED, prune=True, max_deletes=bad),
        ):
            with pytest.raises(InvalidRequestError, match="max_deletes"):
                await run(call)
    assert stale.requests == []


# --- only what was sent may have taken effect -----------------------------------------------


async def test_interrupted_lists_only_changes_that_were_sent(stale: FakeFathom) -> None:
    """Cancelled mid-apply, only changes whose request went out are listed as in flight."""
    async with stale.serve() as url:
        fake_time = FakeTime()
        async with AsyncClient(
            TOKEN, url, max_in_flight=1, clock=fake_time.clock, sleep=fake_time.sleep
        ) as client:
            plan = await client.events.plan(DESIRED, prune=True)
            stale.inject(Fault.hang(), method="POST")
            report = SyncReport()
            task = asyncio.ensure_future(client.events.apply(plan, report=report, concurrency=2))
            for _ in range(10_000):  # turns of the loop, never a real sleep
                if stale.requests_for("POST"):
                    break
                await asyncio.sleep(0)
            for _ in range(100):  # the second site's create now waits for the one slot
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    interrupted: list[Any] = [
        change for site in report.sites.values() for change in site.interrupted
    ]
    assert interrupted == ["create 'New'"]
    assert len(stale.requests_for("POST")) == 1


@pytest.mark.parametrize("job", ["apply", "sync"])
async def test_every_site_has_its_report_before_any_work(
    face: Face, stale: FakeFathom, job: str
) -> None:
    """report.sites holds every site, in order, before any work: it never grows meanwhile."""
    report = SyncReport()
    seen: list[list[str]] = []

    def on_progress(_: object) -> None:
        seen.append(list(report.sites))

    async with opened(face, stale) as run:
        if job == "apply":
            plan = await run(lambda c: c.events.plan(DESIRED))
            await run(
                lambda c: c.events.apply(
                    plan, report=report, on_progress=on_progress, concurrency=1
                )
            )
        else:
            await run(
                lambda c: c.events.sync(
                    DESIRED, report=report, on_progress=on_progress, concurrency=1
                )
            )
    assert seen == [["S1", "S2"], ["S1", "S2"]]
