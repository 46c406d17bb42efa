"""plan() asks the token first and spends no request on what it may not do, on both faces."""

from __future__ import annotations

import pytest

from fathom_events import (
    EventSpec,
    Failure,
    InvalidRequestError,
    RetryPolicy,
    SyncPlan,
    TokenPermissionError,
)
from fathom_events.testing import FakeFathom, Fault, RecordedRequest
from tests.support.faces import Face, face_fixture, opened  # noqa: F401 - face_fixture: `face`

NO_RETRY = RetryPolicy(max_retries=0)
WANTED = [EventSpec("Signed up"), EventSpec("Bought", "euro")]


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    """Three sites: each has "Signed up" and an event a pruning sync deletes."""
    fake = FakeFathom()
    for site in ("A", "B", "C"):
        fake.add_event(site, "Signed up")
        fake.add_event(site, "Old")
    return fake


def writes(fake: FakeFathom) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method != "GET"]


def paths(fake: FakeFathom) -> list[str]:
    return sorted({r.path for r in fake.requests})


async def test_read_only_token_sends_the_lists_and_no_write(face: Face, fake: FakeFathom) -> None:
    """With all-sites-readonly, plan lists each site and refuses every change; apply sends none."""
    fake.add_token("ro", ["all-sites-readonly"])
    desired = dict.fromkeys("AB", WANTED)
    async with opened(face, fake, "ro") as run:
        plan = await run(lambda c: c.events.plan(desired, prune=True))
        report = await run(lambda c: c.events.apply(plan))
    assert paths(fake) == ["/v1/sites/A/events", "/v1/sites/B/events", "/v1/token"]
    assert writes(fake) == []
    assert (plan.token_checked, plan.token_note, plan.failed) == (True, None, {})
    assert (plan.requests, plan.empty) == (0, True)
    refused = plan.refused["A"]
    assert [(f.action, f.target) for f in refused] == [("create", "Bought"), ("delete", "Old")]
    assert all(isinstance(f.error, TokenPermissionError) for f in refused)
    assert "may not manage site 'A'" in str(refused[0].error)
    assert plan.summary()["refused"] == 4
    assert report.requests_sent == 0
    assert report.sites["A"].refused == list(refused)
    assert report.totals()["refused"] == 4
    assert report.ok  # nothing was tried, so nothing failed


async def test_per_site_token(face: Face, fake: FakeFathom) -> None:
    """manage:A plans A; read:B lists B and refuses its changes; C is failed without a request."""
    fake.add_token("scoped", ["manage:A", "read:B"], name="deploy")
    desired = dict.fromkeys("ABC", WANTED)
    async with opened(face, fake, "scoped") as run:
        plan = await run(lambda c: c.events.plan(desired))
        report = await run(lambda c: c.events.apply(plan))
    error = plan.failed["C"]
    assert isinstance(error, TokenPermissionError)
    assert (error.site_id, error.action, error.token_name) == ("C", "read", "deploy")
    assert str(error).startswith("the token 'deploy' may not read site 'C'")
    assert not [r for r in fake.requests if r.path.startswith("/v1/sites/C")]
    assert [s.site_id for s in plan.sites] == ["A", "B"]
    assert [spec.name for spec in plan.sites[0].create] == ["Bought"]
    assert plan.sites[0].refused == ()
    assert [(f.action, f.target) for f in plan.sites[1].refused] == [("create", "Bought")]
    assert plan.requests == 1
    assert [(r.method, r.path) for r in writes(fake)] == [("POST", "/v1/sites/A/events")]
    assert report.ok
    assert [e.name for e in report.sites["A"].created] == ["Bought"]


async def test_the_check_can_be_turned_off(face: Face, fake: FakeFathom) -> None:
    """check_token=False sends no token request and plans every change, saying the check was off."""
    fake.add_token("ro", ["all-sites-readonly"])
    async with opened(face, fake, "ro") as run:
        plan = await run(lambda c: c.events.plan({"A": WANTED}, check_token=False))
    assert fake.requests_for("GET", "/v1/token") == []
    assert plan.token_checked is False
    assert "check_token=False" in (plan.token_note or "")
    assert (plan.requests, plan.refused) == (1, {})


async def test_a_failing_token_endpoint_leaves_the_plan_unchecked(
    face: Face, fake: FakeFathom
) -> None:
    """When /v1/token fails, plan goes on without the check and its note says why."""
    fake.add_token("ro", ["all-sites-readonly"])
    fake.inject(Fault.respond(500, json={"error": "Server Error"}), path="/v1/token")
    async with opened(face, fake, "ro", retry=NO_RETRY) as run:
        plan = await run(lambda c: c.events.plan({"A": WANTED}))
    assert plan.token_checked is False
    assert "could not be read" in (plan.token_note or "")
    assert "500" in (plan.token_note or "")
    assert (plan.requests, plan.failed) == (1, {})


async def test_the_token_is_asked_once_per_client(face: Face, fake: FakeFathom) -> None:
    """Two plans and a token() call on one client send one token request between them."""
    async with opened(face, fake) as run:
        await run(lambda c: c.events.plan({"A": WANTED}))
        await run(lambda c: c.events.plan({"B": WANTED}))
        await run(lambda c: c.token())
    assert len(fake.requests_for("GET", "/v1/token")) == 1


async def test_an_empty_plan_asks_nothing(face: Face, fake: FakeFathom) -> None:
    """A plan of no sites sends no request at all, not even the token's."""
    async with opened(face, fake) as run:
        plan = await run(lambda c: c.events.plan({}))
    assert fake.requests == []
    assert plan.token_checked is False


async def test_check_token_must_be_a_bool(face: Face, fake: FakeFathom) -> None:
    """check_token takes True or False only, checked before anything is sent."""
    async with opened(face, fake) as run:
        with pytest.raises(InvalidRequestError, match="check_token"):
            await run(lambda c: c.events.plan({"A": WANTED}, check_token="no"))
    assert fake.requests == []


def test_a_plan_made_by_hand_says_it_was_not_checked() -> None:
    """SyncPlan's new fields default to "not checked" and no refusals; old fields mean the same."""
    plan = SyncPlan((), prune=False, set_currency=False)
    assert (plan.token_checked, plan.token_note, plan.refused) == (False, None, {})
    assert plan.summary() == {
        "sites": 0,
        "create": 0,
        "rename": 0,
        "update": 0,
        "delete": 0,
        "unchanged": 0,
        "requests": 0,
        "refused": 0,
        "failed_sites": 0,
    }
    assert str(Failure("create", "x", TokenPermissionError("S", "manage"))).startswith(
        "create 'x': the token may not manage site 'S': it has none of * or manage:S"
    )
