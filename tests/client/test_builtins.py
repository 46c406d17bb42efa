"""``to_builtins`` gives JSON-ready builtins for every result, and ``from_builtins`` reads back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

import fathom_events
from fathom_events import (
    AnswerReceived,
    AsyncClient,
    CallFinished,
    CallRecord,
    CallStarted,
    Currency,
    DeletedEvent,
    Event,
    EventPage,
    EventSpec,
    Failure,
    NotFoundError,
    Progress,
    PullResult,
    RateLimit,
    RequestSent,
    RetryPolicy,
    RetryScheduled,
    Site,
    SitePage,
    SitePlan,
    SiteReport,
    SyncPlan,
    SyncReport,
    Timeouts,
    TokenInfo,
    TransportRequest,
    Waited,
    from_builtins,
    to_builtins,
)
from fathom_events.testing import FakeFathom, Fault, MemoryTransport
from tests.support.helpers import SITE, TOKEN

#: What on_event receives: dumped by to_builtins, never read back (they are not results).
RECORDS = (
    CallRecord,
    CallStarted,
    Waited,
    RequestSent,
    AnswerReceived,
    RetryScheduled,
    CallFinished,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(name="memory_client")
async def _memory_client(fake: FakeFathom) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(TOKEN, transport=MemoryTransport(fake)) as client:
        yield client


async def answers(client: AsyncClient, fake: FakeFathom) -> dict[type, object]:
    """One real value of each answer type, as the client reads it from the fake."""
    fake.add_site("WXYZ", "Shop", timezone="Europe/Paris")
    event = await client.events.create(SITE, "Purchased", currency="euro")
    odd = fake.add_event(SITE, "Old promo")
    return {
        Event: event,
        EventPage: await client.events.list(SITE),
        DeletedEvent: await client.events.delete(SITE, odd["id"]),
        Site: await client.sites.get("WXYZ"),
        SitePage: await client.sites.list(),
        TokenInfo: await client.token(),
    }


SETTINGS: dict[type, object] = {
    EventSpec: EventSpec("Signed up", Currency.POUND, renamed_from=["Sign-up", "Joined"]),
    Progress: Progress(3, 10, SITE, 7, 1, failed=False),
    RetryPolicy: RetryPolicy(max_retries=5, deadline=None),
    RateLimit: RateLimit(2000, 3600),
}


async def test_answers_round_trip_through_json(
    memory_client: AsyncClient, fake: FakeFathom
) -> None:
    """Each answer type survives to_builtins, json.dumps, json.loads and from_builtins."""
    for cls, value in (await answers(memory_client, fake)).items():
        text = json.dumps(to_builtins(value))
        assert from_builtins(json.loads(text), cls) == value, cls.__name__


def test_settings_round_trip_through_json() -> None:
    """EventSpec, Progress, RetryPolicy and RateLimit read back equal, checked again."""
    for cls, value in SETTINGS.items():
        assert from_builtins(json.loads(json.dumps(to_builtins(value))), cls) == value
    with pytest.raises(fathom_events.InvalidRequestError, match="name"):
        from_builtins({"name": " padded", "currency": None, "renamed_from": []}, EventSpec)


def test_event_becomes_iso_timestamps_and_enum_values() -> None:
    """An event's timestamp is ISO 8601 and its currency the enum's value; unknown stays text."""
    known = Event("AB", "Purchased", Currency.EURO, T0)
    unknown = Event("CD", "Odd", "doubloon", T0)
    assert to_builtins([known, unknown]) == [
        {"id": "AB", "name": "Purchased", "currency": "euro", "created_at": T0.isoformat()},
        {"id": "CD", "name": "Odd", "currency": "doubloon", "created_at": T0.isoformat()},
    ]
    assert from_builtins(to_builtins(unknown), Event).currency == "doubloon"


async def test_bulk_results_become_json_with_their_errors_described(
    memory_client: AsyncClient, fake: FakeFathom
) -> None:
    """Pull, plan and sync results dump to JSON, their errors as descriptions without the token."""
    fake.add_site("WXYZ")
    fake.add_event(SITE, "Old promo")
    fake.add_event(SITE, "Sign-up")
    fake.inject(Fault.respond(503), method="POST", times=20)  # every create fails
    pulled = await memory_client.events.pull([SITE, "MISSING"])
    desired = {
        SITE: [EventSpec("Signed up", renamed_from=["Sign-up"]), EventSpec("Purchased")],
        "WXYZ": [EventSpec("Purchased")],
        "MISSING": [EventSpec("Purchased")],
    }
    plan = await memory_client.events.plan(desired, prune=True)
    report = await memory_client.events.apply(plan)
    values: dict[type, Any] = {
        PullResult: pulled,
        SyncPlan: plan,
        SitePlan: plan.sites[0],
        SyncReport: report,
        SiteReport: report.sites["WXYZ"],
        Failure: report.sites["WXYZ"].failed[0],
    }
    for cls, value in values.items():
        text = json.dumps(to_builtins(value))
        assert TOKEN not in text, cls.__name__
        with pytest.raises(TypeError, match=f"not {cls.__name__}"):
            from_builtins(json.loads(text), cls)
    pulled_json = to_builtins(pulled)
    assert sorted(pulled_json) == ["failed", "repeated", "sites"]
    assert [e["name"] for e in pulled_json["sites"][SITE]] == ["Old promo", "Sign-up"]
    missing = pulled_json["failed"]["MISSING"]
    assert missing["type"] == NotFoundError.__name__
    assert missing["status"] == 404
    assert missing["method"] == "GET"
    assert missing["attempts"] == 1
    plan_json = to_builtins(plan)
    assert plan_json["failed"]["MISSING"]["type"] == "NotFoundError"
    site = plan_json["sites"][0]
    assert [spec["name"] for spec in site["create"]] == ["Purchased"]
    assert [[event["name"], spec["name"]] for event, spec in site["rename"]] == [
        ["Sign-up", "Signed up"]
    ]
    assert [event["name"] for event in site["delete"]] == ["Old promo"]
    failure = to_builtins(report.sites["WXYZ"].failed[0])
    assert failure["action"] == "create"
    assert failure["error"]["type"] == "ServerError"
    assert failure["error"]["may_have_been_applied"] is False


async def test_every_record_of_a_call_becomes_builtins(fake: FakeFathom) -> None:
    """Each on_event record of a call with a retry becomes a dict of its fields, JSON-ready."""
    seen: list[CallRecord] = []
    fake.inject(Fault.rate_limited("0"))
    async with (
        fake.serve() as url,
        AsyncClient(TOKEN, url, on_event=seen.append) as client,
    ):
        await client.events.list(SITE)
    assert {type(record) for record in seen} == set(RECORDS) - {CallRecord, Waited}
    seen.append(
        Waited(call_id=1, operation="events.list", attempt=1, reason="cool_down", seconds=1.5)
    )
    for record in seen:
        dumped = to_builtins(record)
        assert dumped == attrs.asdict(record)
        assert json.loads(json.dumps(dumped)) == dumped


def test_every_public_attrs_type_is_covered_here() -> None:
    """Each public attrs class is round-tripped or dumped by a test above (new ones must be)."""
    covered = {
        Event, EventPage, DeletedEvent, Site, SitePage, TokenInfo, *SETTINGS,
        PullResult, SyncPlan, SitePlan, SyncReport, SiteReport, Failure,
        Timeouts, TransportRequest, *RECORDS,
    }  # fmt: skip
    public = {
        value
        for name in fathom_events.__all__
        if attrs.has(value := getattr(fathom_events, name)) or value is PullResult
    }
    assert public == covered


def test_transport_contract_values_become_builtins() -> None:
    """Timeouts and a TransportRequest become dicts; a body's bytes are refused, named."""
    assert to_builtins(Timeouts(30.0, None)) == {"total": 30.0, "connect": None}
    request = TransportRequest("GET", "https://api.usefathom.com/v1/sites", {"Accept": "x"})
    assert to_builtins(request) == {
        "method": "GET",
        "url": "https://api.usefathom.com/v1/sites",
        "headers": {"Accept": "x"},
        "body": None,
    }
    with pytest.raises(TypeError, match="cannot turn a bytes"):
        to_builtins(TransportRequest("POST", "https://x/v1", {}, b"{}"))


def test_what_cannot_become_builtins_is_refused_by_name() -> None:
    """An object of another kind, or a mapping with a key that is not a string, is a TypeError."""
    with pytest.raises(TypeError, match="cannot turn a object"):
        to_builtins(object())
    with pytest.raises(TypeError, match="keys must be strings; got a int"):
        to_builtins({1: "one"})
    with pytest.raises(TypeError, match="from_builtins reads"):
        from_builtins({}, dict)


def test_a_rate_limits_redis_password_is_never_written() -> None:
    """to_builtins writes a RateLimit's redis_url with its password blotted out."""
    limit = RateLimit(10, 60.0, redis_url="redis://:s3cret-pw@localhost:6379/0")
    written = to_builtins(limit)
    assert "s3cret-pw" not in json.dumps(written)
    assert written["redis_url"] == "redis://:********@localhost:6379/0"
