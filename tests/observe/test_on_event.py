"""``on_event``: a record for every step of every call, on both faces, over real HTTP.

The callback gets frozen records (``CallStarted``, ``RequestSent``,
``AnswerReceived``, ``RetryScheduled``, ``Waited``, ``CallFinished``), in the
order the steps happen, on fake time (so every ``elapsed`` and ``seconds`` is
exact). A callback that raises changes nothing and is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TypeVar

import attrs
import pytest

from fathom_events import (
    AnswerReceived,
    APIConnectionError,
    AsyncClient,
    CallFinished,
    CallRecord,
    CallStarted,
    Client,
    RateLimit,
    RequestSent,
    RetryPolicy,
    RetryScheduled,
    ServerError,
    UnsupportedEventLoopError,
    Waited,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import ASYNC, Face, face_fixture  # noqa: F401 - `face`: both faces
from tests.support.helpers import SITE, TOKEN

pytestmark = pytest.mark.usefixtures("every_error_token_free")

R = TypeVar("R", bound=CallRecord)


def of_call(records: list[CallRecord], kind: type[R]) -> list[R]:
    """The records of one kind, in order."""
    return [record for record in records if isinstance(record, kind)]


async def test_a_call_reports_each_step_in_order(face: Face, fake: FakeFathom) -> None:
    """One GET: started, sent, answered, finished, in that order, all of one call."""
    seen: list[CallRecord] = []
    event = fake.add_event(SITE, "Signed up")
    async with face.opened(fake, on_event=seen.append) as client:
        await client.events.get(SITE, event["id"])
    started, sent, answered, finished = seen
    call = started.call_id
    assert started == CallStarted(call_id=call, operation="events.get", site_id=SITE)
    assert sent == RequestSent(
        call_id=call,
        operation="events.get",
        attempt=1,
        method="GET",
        url=f"{client.base_url}/sites/{SITE}/events/{event['id']}",
    )
    assert answered == AnswerReceived(
        call_id=call, operation="events.get", attempt=1, status=200, elapsed=0.0, error=None
    )
    assert finished == CallFinished(
        call_id=call,
        operation="events.get",
        outcome="ok",
        error=None,
        attempts=1,
        elapsed=0.0,
        may_have_been_applied=False,
    )


async def test_a_429_then_success_reports_the_retry(face: Face, fake: FakeFathom) -> None:
    """A 429 then a 200: two attempts, the 429's answer, a retry after its Retry-After."""
    seen: list[CallRecord] = []
    fake.inject(Fault.rate_limited("2"))
    async with face.opened(fake, on_event=seen.append) as client:
        await client.events.create(SITE, "Signed up")
    assert [type(record) for record in seen] == [
        CallStarted,
        RequestSent,
        AnswerReceived,
        RetryScheduled,
        RequestSent,
        AnswerReceived,
        CallFinished,
    ]
    first, second = of_call(seen, AnswerReceived)
    assert (first.attempt, first.status, second.attempt, second.status) == (1, 429, 2, 200)
    (retry,) = of_call(seen, RetryScheduled)
    assert retry == RetryScheduled(
        call_id=retry.call_id,
        operation="events.create",
        attempt=2,
        reason="429 rate or concurrency limit",
        delay=2.0,
    )
    (finished,) = of_call(seen, CallFinished)
    assert (finished.outcome, finished.attempts, finished.elapsed) == ("ok", 2, 2.0)
    assert finished.may_have_been_applied  # a create that succeeded was applied


async def test_a_failed_call_reports_its_error(face: Face, fake: FakeFathom) -> None:
    """A create answered 500 is not resent: the call ends in ServerError, maybe applied."""
    seen: list[CallRecord] = []
    fake.inject(Fault.respond(500, json={"error": "boom"}))
    async with face.opened(fake, on_event=seen.append) as client:
        with pytest.raises(ServerError):
            await client.events.create(SITE, "Signed up")
    (answered,) = of_call(seen, AnswerReceived)
    assert (answered.status, answered.error) == (500, None)
    (finished,) = of_call(seen, CallFinished)
    assert (finished.outcome, finished.error, finished.attempts) == ("error", "ServerError", 1)
    assert finished.may_have_been_applied


async def test_an_attempt_without_an_answer_names_its_failure(face: Face, fake: FakeFathom) -> None:
    """A dropped connection: the answer record has no status and names the error's class."""
    seen: list[CallRecord] = []
    fake.inject(Fault.disconnect())
    async with face.opened(fake, on_event=seen.append, retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(APIConnectionError):
            await client.events.list(SITE)
    (answered,) = of_call(seen, AnswerReceived)
    assert answered.status is None
    assert answered.error == "APIConnectionError"


async def test_a_wait_for_the_in_flight_cap_is_reported(fake: FakeFathom) -> None:
    """With one request slot, the second of two calls waits for it, and says so."""
    seen: list[CallRecord] = []
    async with ASYNC.opened(fake, max_in_flight=1, on_event=seen.append) as client:
        await asyncio.gather(client.events.list(SITE), client.events.list(SITE))
    (wait,) = [record for record in seen if isinstance(record, Waited)]
    assert (wait.reason, wait.seconds, wait.attempt) == ("in_flight", 0.0, 1)
    second = [r for r in seen if r.call_id == wait.call_id]
    assert [type(r) for r in second][:3] == [CallStarted, Waited, RequestSent]


async def test_the_limiter_wait_is_split_into_cool_down_and_rate_limit(fake: FakeFathom) -> None:
    """The limiter's wait is told as the cool-down's part, then the rate limit's rest."""
    seen: list[CallRecord] = []
    async with ASYNC.opened(fake, rate_limit=RateLimit(1, 60), on_event=seen.append) as opened:
        client = opened.client
        assert isinstance(client, AsyncClient)
        await client.events.list(SITE)
        await client.events.list(SITE)
        await client._limits.cool_down(45)  # as another call's 429 would; the place frees in 60
        await client.events.list(SITE)
    assert [(w.reason, w.seconds) for w in seen if isinstance(w, Waited)] == [
        ("rate_limit", 60.0),
        ("cool_down", 45.0),
        ("rate_limit", 15.0),
    ]


async def test_bulk_work_reports_every_request(face: Face, fake: FakeFathom) -> None:
    """events.pull over two sites: each listing is a call of its own, reported whole."""
    fake.add_site("WXYZ")
    fake.add_event("WXYZ", "Purchased")
    seen: list[CallRecord] = []
    async with face.opened(fake, on_event=seen.append) as client:
        result = await client.run(lambda c: c.events.pull([SITE, "WXYZ"]))
    assert set(result) == {SITE, "WXYZ"}
    finished = of_call(seen, CallFinished)
    assert [(f.operation, f.outcome) for f in finished] == [("events.list", "ok")] * 2
    assert {s.site_id for s in of_call(seen, CallStarted)} == {SITE, "WXYZ"}
    assert len({r.call_id for r in seen}) == 2


async def test_the_token_and_sites_calls_are_named(face: Face, fake: FakeFathom) -> None:
    """client.token() and client.sites.list() are reported as token.get and sites.list."""
    seen: list[CallRecord] = []
    async with face.opened(fake, on_event=seen.append) as client:
        await client.run(lambda c: c.token())
        await client.run(lambda c: c.sites.list())
    assert [(s.operation, s.site_id) for s in of_call(seen, CallStarted)] == [
        ("token.get", None),
        ("sites.list", None),
    ]


async def test_a_raising_callback_changes_nothing_and_is_logged_once(
    face: Face, fake: FakeFathom, caplog: pytest.LogCaptureFixture
) -> None:
    """Every call succeeds although the callback always raises; one WARNING, then DEBUG."""
    calls = 0

    def broken(record: CallRecord) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"my callback broke, token {TOKEN}")

    caplog.set_level(logging.DEBUG, logger="fathom_events")
    async with face.opened(fake, on_event=broken) as client:
        for _ in range(2):
            assert (await client.events.list(SITE)).data == []
    ours = [r for r in caplog.records if "on_event" in r.getMessage()]
    assert calls == 8
    assert [r.levelno for r in ours] == [logging.WARNING] + [logging.DEBUG] * 7
    assert f"raised ValueError at {__file__}:" in ours[0].getMessage()
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_with_options_twins_keep_the_callback(face: Face, fake: FakeFathom) -> None:
    """A with_options twin reports through the same callback."""
    seen: list[CallRecord] = []
    async with face.opened(fake, on_event=seen.append) as client:
        await client.run(lambda c: c.with_options(max_retries=0).events.list(SITE))
    assert type(seen[0]) is CallStarted
    assert of_call(seen, CallFinished)


def test_the_blocking_client_calls_back_from_its_own_thread(fake: FakeFathom) -> None:
    """Client calls back from its event loop's thread, where calling the client is refused."""
    threads: set[int] = set()
    refused: list[BaseException] = []

    with fake.serve_in_thread() as url:
        client: Client

        def record(record: CallRecord) -> None:
            threads.add(threading.get_ident())
            if isinstance(record, CallFinished) and not refused:
                try:
                    client.events.list(SITE)
                except UnsupportedEventLoopError as error:
                    refused.append(error)

        with Client(TOKEN, url, on_event=record) as client:
            client.events.list(SITE)
    assert threads
    assert threading.get_ident() not in threads
    assert len(refused) == 1
    assert "on_event" in str(refused[0])


async def test_a_cancelled_call_is_reported_cancelled(fake: FakeFathom) -> None:
    """A call cancelled while its request is out ends as cancelled, maybe applied."""
    seen: list[CallRecord] = []
    sent = asyncio.Event()

    def record(record: CallRecord) -> None:
        seen.append(record)
        if isinstance(record, RequestSent):
            sent.set()

    fake.inject(Fault.hang())
    async with fake.serve() as url, AsyncClient(TOKEN, url, on_event=record) as client:
        task = asyncio.create_task(client.events.create(SITE, "Signed up"))
        await sent.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (finished,) = of_call(seen, CallFinished)
    assert (finished.outcome, finished.error) == ("cancelled", "CancelledError")
    assert finished.may_have_been_applied
    assert not of_call(seen, AnswerReceived)


def test_records_are_frozen() -> None:
    """A record cannot be changed once made."""
    record = Waited(call_id=1, operation="events.list", attempt=1, reason="cool_down", seconds=2.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.seconds = 3.0  # type: ignore[misc]
