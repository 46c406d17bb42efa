"""Retry rules, backoff, Retry-After, deadlines and the limits a client shares, on fake time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from fathom_events import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    FathomError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    RateLimit,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
)
from fathom_events._limits import Limits
from fathom_events._protocol import Operation
from fathom_events._retry import retry_delay, retry_reason
from fathom_events.testing import FakeFathom, Fault
from tests.support.helpers import SITE, TOKEN, FakeTime

EVENTS = f"/v1/sites/{SITE}/events"


def make_client(url: str, fake_time: FakeTime, **options: object) -> AsyncClient:
    return AsyncClient(TOKEN, url, clock=fake_time.clock, sleep=fake_time.sleep, **options)  # type: ignore[arg-type]


async def test_429_waits_retry_after_then_succeeds(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A 429 is retried after exactly its Retry-After, and the call succeeds."""
    fake.inject(Fault.rate_limited("2"))
    page = await client.events.list(SITE)
    assert page.data == []
    assert len(fake.requests) == 2
    assert fake_time.sleeps == [2.0]
    assert client.retries == 1


async def test_retry_after_as_http_date(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A Retry-After given as an HTTP date is honoured as the seconds until then."""
    when = datetime.now(timezone.utc) + timedelta(seconds=20)
    fake.inject(Fault.rate_limited(format_datetime(when, usegmt=True)))
    await client.events.list(SITE)
    assert len(fake_time.sleeps) == 1
    assert 15 <= fake_time.sleeps[0] <= 21


async def test_retry_after_beyond_limit_raises_at_once(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A Retry-After longer than max_retry_after raises RateLimitError at once, without sleeping."""
    fake.inject(Fault.rate_limited("3600"))
    with pytest.raises(RateLimitError) as info:
        await client.events.list(SITE)
    assert info.value.retry_after == 3600.0
    assert info.value.attempts == 1
    assert fake_time.sleeps == []
    assert len(fake.requests) == 1


async def test_retries_exhausted_reports_attempts(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """After max_retries the last error is raised, saying how many attempts were made."""
    fake.inject(Fault.respond(503, json={"error": "down"}), times=10)
    with pytest.raises(ServerError) as info:
        await client.events.list(SITE)
    assert info.value.attempts == 4
    assert "after 4 attempts" in str(info.value)
    assert len(fake.requests) == 4
    assert len(fake_time.sleeps) == 3


async def test_backoff_grows_exponentially(
    base_url: str, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """Without Retry-After the waits follow base * 2**n (jitter off), capped."""
    fake.inject(Fault.respond(500, json={"error": "x"}), times=4)
    policy = RetryPolicy(max_retries=4, backoff_base=1.0, backoff_cap=3.0, jitter=0.0)
    async with make_client(base_url, fake_time, retry=policy) as client:
        await client.events.list(SITE)
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("retry_number", "draw", "expected"),
    [(1, 0.0, 0.5), (2, 0.0, 1.0), (3, 0.0, 2.0), (3, 1.0, 1.0), (10, 0.0, 30.0), (10, 0.5, 22.5)],
)
def test_retry_delay_table(retry_number: int, draw: float, expected: float) -> None:
    """The n-th delay is min(cap, base * 2**(n-1)) less up to `jitter` of it."""
    assert retry_delay(RetryPolicy(), retry_number, lambda: draw) == pytest.approx(expected)


async def test_deadline_stops_retrying(
    base_url: str, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A retry whose wait would pass the overall deadline is not made."""
    fake.inject(Fault.rate_limited("40"), times=5)
    policy = RetryPolicy(max_retries=5, deadline=100.0)
    async with make_client(base_url, fake_time, retry=policy) as client:
        with pytest.raises(RateLimitError) as info:
            await client.events.list(SITE)
    assert info.value.attempts == 3
    assert fake_time.sleeps == [40.0, 40.0]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.respond(400, json={"error": "bad"}), BadRequestError),
        (Fault.respond(404, json={"error": "nope"}), NotFoundError),
        (Fault.respond(410, json={"error": "gone"}), GoneError),
        (Fault.malformed_json(), ResponseDecodeError),
    ],
)
async def test_never_retried(
    client: AsyncClient, fake: FakeFathom, fault: Fault, error: type[Exception]
) -> None:
    """Other 4xx, 410 and unreadable answers are not retried."""
    fake.inject(fault)
    with pytest.raises(error):
        await client.events.get(SITE, "E")
    assert len(fake.requests) == 1


async def test_create_not_resent_after_ambiguous_502(client: AsyncClient, fake: FakeFathom) -> None:
    """A create answered 502 after it took effect is not resent; the error says it may exist."""
    fake.inject(Fault.html(502, after_action=True), method="POST")
    with pytest.raises(ServerError) as info:
        await client.events.create(SITE, "Signed up")
    assert info.value.may_have_been_applied is True
    assert "may have been created" in str(info.value)
    assert [e["name"] for e in fake.events(SITE)] == ["Signed up"]
    assert len(fake.requests) == 1


async def test_create_not_resent_after_dropped_connection(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """A create whose connection dropped after it was sent is not resent."""
    fake.inject(Fault.disconnect(after_action=True), method="POST")
    with pytest.raises(APIConnectionError) as info:
        await client.events.create(SITE, "Signed up")
    assert info.value.may_have_been_applied is True
    assert len(fake.events(SITE)) == 1
    assert len(fake.requests) == 1


async def test_create_retried_after_429_and_503(client: AsyncClient, fake: FakeFathom) -> None:
    """A create refused with 429 or 503 had no effect, so it is retried and made once."""
    fake.inject(Fault.rate_limited("1"), method="POST")
    fake.inject(Fault.respond(503, json={"error": "busy"}), method="POST")
    event = await client.events.create(SITE, "Signed up")
    assert [e["id"] for e in fake.events(SITE)] == [event.id]
    assert len(fake.requests) == 3


async def test_create_opt_in_resends_after_ambiguous_failure(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """with_options(retry_ambiguous_creates=True) resends a create after a 502."""
    fake.inject(Fault.html(502), method="POST")
    event = await client.with_options(retry_ambiguous_creates=True).events.create(SITE, "Once")
    assert [e["id"] for e in fake.events(SITE)] == [event.id]
    assert len(fake.requests) == 2


async def test_update_and_delete_retried_after_ambiguous_failures(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """Update and delete are retried after a lost answer: the end state is the same."""
    stored = fake.add_event(SITE, "Old")
    fake.inject(Fault.disconnect(after_action=True), method="POST")
    renamed = await client.events.update(SITE, stored["id"], name="New")
    assert renamed.name == "New"
    fake.inject(Fault.html(502, after_action=True), method="DELETE")
    gone = await client.events.delete(SITE, stored["id"])
    assert gone.deleted is True
    assert fake.events(SITE) == []


@pytest.mark.parametrize(
    ("policy", "fault"),
    [
        # No retry left after the first attempt.
        (RetryPolicy(max_retries=0), Fault.respond(500, json={"error": "boom"})),
        # A retry would wait past the overall deadline.
        (
            RetryPolicy(max_retries=3, deadline=10.0),
            Fault.respond(502, json={"error": "x"}, headers={"Retry-After": "60"}),
        ),
        # The server asks for a longer wait than max_retry_after allows.
        (
            RetryPolicy(max_retries=3, max_retry_after=5.0),
            Fault.respond(500, json={"error": "x"}, headers={"Retry-After": "60"}),
        ),
    ],
)
async def test_a_write_given_up_after_a_5xx_may_have_been_applied(
    base_url: str, fake: FakeFathom, fake_time: FakeTime, policy: RetryPolicy, fault: Fault
) -> None:
    """An update or delete whose last attempt got a 5xx may have taken effect: the error says so."""
    stored = fake.add_event(SITE, "Old")
    fake.inject(fault, method="POST")
    fake.inject(fault, method="DELETE")
    async with make_client(base_url, fake_time, retry=policy) as client:
        with pytest.raises(ServerError) as update:
            await client.events.update(SITE, stored["id"], name="New")
        with pytest.raises(ServerError) as delete:
            await client.events.delete(SITE, stored["id"])
    for info in (update, delete):
        assert info.value.attempts == 1
        assert info.value.may_have_been_applied
        assert "may have" in str(info.value)


async def test_retries_are_logged_without_the_token(
    client: AsyncClient, fake: FakeFathom, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry is logged to the fathom_events logger with its reason, never with the token."""
    fake.inject(Fault.respond(503, json={"error": "busy"}))
    with caplog.at_level(logging.DEBUG, logger="fathom_events"):
        await client.events.list(SITE)
    messages = [r.getMessage() for r in caplog.records if r.name == "fathom_events"]
    assert len(messages) == 1
    assert "503" in messages[0]
    assert "attempt 2 of 4" in messages[0]
    assert TOKEN not in caplog.text


async def test_timeout_per_attempt_is_retried_for_reads(
    fake: FakeFathom, base_url: str, fake_time: FakeTime
) -> None:
    """A server that never answers times out each attempt; a read is retried and succeeds."""
    fake.inject(Fault.hang())
    async with make_client(base_url, fake_time, timeout=0.2) as client:
        assert (await client.events.list(SITE)).data == []
    assert len(fake.requests) == 2


async def test_timeout_on_create_is_ambiguous(
    fake: FakeFathom, base_url: str, fake_time: FakeTime
) -> None:
    """A create that timed out after sending is not resent and says it may have been created."""
    fake.inject(Fault.hang(), method="POST")
    async with make_client(base_url, fake_time, timeout=0.2) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.events.create(SITE, "Slow")
    assert info.value.may_have_been_applied is True
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("operation", "sent", "retried"),
    [
        (Operation.CREATE, False, True),
        (Operation.CREATE, True, False),
        (Operation.GET, True, True),
        (Operation.DELETE, True, True),
    ],
)
def test_connection_errors_by_whether_sent(operation: Operation, sent: bool, retried: bool) -> None:
    """A connection that never carried the request is retried for every operation."""
    error = APIConnectionError("refused", method="POST", url="u")
    error.request_sent = sent
    assert (retry_reason(error, operation, RetryPolicy()).retry is not None) is retried


def test_tls_failures_are_never_retried() -> None:
    """A TLS failure is not retried, whatever the operation."""
    error = APIConnectionError("bad certificate", method="GET", url="u")
    error.request_sent = False
    error.tls_failure = True
    assert retry_reason(error, Operation.GET, RetryPolicy()).retry is None


def _connection_error(*, sent: bool, tls: bool = False) -> APIConnectionError:
    error = APIConnectionError("reset", method="POST", url="u")
    error.request_sent = sent
    error.tls_failure = tls
    return error


def _answered(kind: type[APIStatusError], status: int) -> Callable[[], FathomError]:
    return lambda: kind("no", status=status, body=None, headers={}, method="POST", url="u")


_OPT_IN = RetryPolicy(retry_ambiguous_creates=True)


@pytest.mark.parametrize(
    ("make_error", "operation", "policy", "retried", "may_have_taken_effect"),
    [
        (_answered(ServerError, 500), Operation.CREATE, None, False, True),
        (_answered(ServerError, 500), Operation.CREATE, _OPT_IN, True, True),
        (_answered(ServerError, 502), Operation.UPDATE, None, True, True),
        (_answered(ServerError, 503), Operation.CREATE, None, True, False),
        (_answered(RateLimitError, 429), Operation.CREATE, None, True, False),
        (lambda: _connection_error(sent=True), Operation.CREATE, None, False, True),
        (lambda: _connection_error(sent=True), Operation.DELETE, None, True, True),
        (lambda: _connection_error(sent=False), Operation.CREATE, None, True, False),
        (lambda: _connection_error(sent=False, tls=True), Operation.GET, None, False, False),
        (
            lambda: ResponseDecodeError("bad", method="POST", url="u", status=200, body=""),
            Operation.CREATE,
            None,
            False,
            True,
        ),
        (
            lambda: ResponseDecodeError("bad", method="GET", url="u", status=200, body=""),
            Operation.LIST,
            None,
            False,
            False,
        ),
        (
            lambda: ResponseDecodeError("huge", method="POST", url="u", status=500, body=""),
            Operation.CREATE,
            None,
            False,
            False,
        ),
        (_answered(NotFoundError, 404), Operation.DELETE, None, False, False),
    ],
)
def test_retry_reason_judges_without_changing_the_error(
    make_error: Callable[[], FathomError],
    operation: Operation,
    policy: RetryPolicy | None,
    retried: bool,
    may_have_taken_effect: bool,
) -> None:
    """retry_reason says whether to retry and whether the attempt may have landed; no mutation."""
    error = make_error()
    before = dict(vars(error))
    verdict = retry_reason(error, operation, policy or RetryPolicy())
    assert (verdict.retry is not None) is retried
    assert verdict.may_have_taken_effect is may_have_taken_effect
    assert vars(error) == before
    assert error.may_have_been_applied is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("jitter", 2.0),
        ("backoff_base", -1.0),
        ("deadline", -5.0),
    ],
)
def test_policy_rejects_nonsense(field: str, value: object) -> None:
    """A RetryPolicy with an impossible value is refused, naming the field."""
    with pytest.raises(InvalidRequestError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


async def test_cool_down_holds_every_call(fake_time: FakeTime) -> None:
    """After a cool-down starts, every later call of the client waits it out first."""
    limits = Limits(max_in_flight=4, rate_limit=None, clock=fake_time.clock, sleep=fake_time.sleep)
    await limits.cool_down(5.0)

    async def stamp() -> float:
        return fake_time.clock()

    started = fake_time.now
    results = await asyncio.gather(*(limits.run(stamp) for _ in range(3)))
    assert all(r >= started + 5.0 for r in results)


async def test_429_cools_down_concurrent_calls(
    base_url: str, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """One call's 429 Retry-After makes the client's other calls wait it out too."""
    fake.inject(Fault.rate_limited("30"))
    async with make_client(base_url, fake_time, max_in_flight=1) as client:
        await asyncio.gather(client.events.list(SITE), client.events.list(SITE))
    assert len(fake.requests) == 3
    # One wait is the 429'd call's own; the other is its sibling holding back for the cool-down.
    assert fake_time.sleeps == [30.0, 30.0]


async def test_rate_limit_spaces_requests(fake_time: FakeTime) -> None:
    """RateLimit(2, 10) lets a burst of 2 through, then the next 2 ten seconds after the answers."""
    limits = Limits(
        max_in_flight=8, rate_limit=RateLimit(2, 10.0), clock=fake_time.clock, sleep=fake_time.sleep
    )
    stamps: list[float] = []

    async def stamp() -> None:
        stamps.append(fake_time.clock())

    for _ in range(5):
        await limits.run(stamp)
    start = stamps[0]
    assert [round(s - start, 6) for s in stamps] == [0.0, 0.0, 10.0, 10.0, 20.0]


async def test_in_flight_cap_is_shared(fake_time: FakeTime) -> None:
    """No more than max_in_flight attempts run at once across concurrent calls."""
    limits = Limits(max_in_flight=2, rate_limit=None, clock=fake_time.clock, sleep=fake_time.sleep)
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1

    await asyncio.gather(*(limits.run(work) for _ in range(10)))
    assert peak == 2
    assert limits.requests_sent == 10


@pytest.mark.parametrize(("requests", "per"), [(0, 1.0), (1, 0.0), (1.5, 1.0)])
def test_rate_limit_rejects_nonsense(requests: object, per: float) -> None:
    """A rate limit of no requests or no time is refused."""
    with pytest.raises(InvalidRequestError):
        RateLimit(requests, per)  # type: ignore[arg-type]


async def test_deadline_covers_rate_limit_waits(base_url: str, fake_time: FakeTime) -> None:
    """A call whose turn under the rate limit would come after its deadline fails at once."""
    policy = RetryPolicy(deadline=10.0)
    async with make_client(
        base_url, fake_time, retry=policy, rate_limit=RateLimit(1, 100.0)
    ) as client:
        await client.events.list(SITE)
        with pytest.raises(APITimeoutError, match="rate limit"):
            await client.events.list(SITE)
    assert fake_time.sleeps == []


async def test_cool_down_starts_even_without_a_retry(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """A 429 on a call that will not retry still makes the client's next call wait it out."""
    fake.inject(Fault.rate_limited("30"))
    with pytest.raises(RateLimitError):
        await client.with_options(max_retries=0).events.list(SITE)
    await client.events.list(SITE)
    assert fake_time.sleeps == [30.0]


async def test_cool_down_beyond_limit_fails_other_calls_at_once(
    client: AsyncClient, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """After a Retry-After longer than max_retry_after, other calls raise instead of waiting."""
    fake.inject(Fault.rate_limited("3600"))
    with pytest.raises(RateLimitError):
        await client.events.list(SITE)
    with pytest.raises(RateLimitError, match="max_retry_after") as info:
        await client.events.get(SITE, "E")
    assert info.value.retry_after == pytest.approx(3600.0)
    assert fake_time.sleeps == []
    assert len(fake.requests) == 1


async def test_delete_404_after_refusals_is_raised(client: AsyncClient, fake: FakeFathom) -> None:
    """A 404 after attempts that were refused (503) is a real NotFoundError, not a success."""
    fake.inject(Fault.respond(503, json={"error": "busy"}), method="DELETE")
    with pytest.raises(NotFoundError) as info:
        await client.events.delete(SITE, "NOPE-TYPO")
    assert info.value.attempts == 2
    assert info.value.may_have_been_applied is False


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retry_ambiguous_creates": "no"}, "retry_ambiguous_creates"),
        ({"deadline": 0}, "deadline"),
        ({"backoff_base": float("inf")}, "backoff_base"),
        ({"max_retry_after": True}, "max_retry_after"),
    ],
)
def test_policy_rejects_careless_values(options: dict[str, object], field: str) -> None:
    """Values that would quietly misbehave (a truthy string, zero, infinity) are refused."""
    with pytest.raises(InvalidRequestError, match=field):
        RetryPolicy(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "field"),
    [({"rate_limit": 2000}, "rate_limit"), ({"clock": "now"}, "clock"), ({"sleep": 1}, "sleep")],
)
def test_client_rejects_wrong_kinds_of_options(options: dict[str, object], field: str) -> None:
    """A rate limit that is not a RateLimit, or a clock that is not callable, is refused at once."""
    with pytest.raises(InvalidRequestError) as info:
        AsyncClient(TOKEN, "http://127.0.0.1:1/v1", **options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_rate_limit_rejects_infinite_period() -> None:
    """A rate limit over an infinite period is refused."""
    with pytest.raises(InvalidRequestError, match="per_seconds"):
        RateLimit(10, float("inf"))
