"""RateLimit(N, S) keeps its promise literally: never more than N requests in any S seconds.

Each request counts from when it is sent until S seconds after its answer (or
failure) arrived, so a server counting requests in any window of S seconds,
sliding or fixed (Laravel's throttle opens one with its first request), never
sees N + 1. Bursts of up to N still go at once. Time is fake: no test sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from fathom_events import AsyncClient, RateLimit, RetryPolicy, ServerError
from fathom_events._limits import InProcessRateLimiter, Limits, WaitTooLong
from fathom_events.testing import FakeFathom, MemoryTransport
from tests.support.helpers import SITE, TOKEN, FakeTime


def limits_of(rate_limit: RateLimit, fake_time: FakeTime, in_flight: int = 64) -> Limits:
    return Limits(
        max_in_flight=in_flight,
        rate_limit=rate_limit,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )


def most_counted_at_once(spans: list[tuple[float, float]], per_seconds: float) -> int:
    """The most requests counted together: each from its send to ``per_seconds`` after its end."""
    return max(
        sum(1 for sent, ended in spans if sent <= moment < ended + per_seconds)
        for moment, _ in spans
    )


async def run_requests(
    limits: Limits, fake_time: FakeTime, count: int, takes: float
) -> list[tuple[float, float]]:
    """``count`` requests at once through ``limits``, each taking ``takes`` seconds."""
    spans: list[tuple[float, float]] = []

    async def request() -> None:
        sent = fake_time.clock()
        await fake_time.sleep(takes)
        spans.append((sent, fake_time.clock()))

    await asyncio.gather(*(limits.run(request) for _ in range(count)))
    return sorted(spans)


async def test_a_burst_of_n_goes_at_once(fake_time: FakeTime) -> None:
    """The first N requests are sent at once: a short job is not slowed."""
    spans = await run_requests(limits_of(RateLimit(5, 10.0), fake_time), fake_time, 5, 0.5)
    assert [sent for sent, _ in spans] == [1000.0] * 5
    assert fake_time.now == 1000.5


async def test_never_more_than_n_counted_in_any_window(fake_time: FakeTime) -> None:
    """Of 20 requests taking 1 s each, never more than 3 count at once (send to S after answer)."""
    spans = await run_requests(limits_of(RateLimit(3, 10.0), fake_time), fake_time, 20, 1.0)
    assert len(spans) == 20
    assert most_counted_at_once(spans, 10.0) == 3


async def test_the_next_burst_waits_for_the_window_after_the_answers(
    fake_time: FakeTime,
) -> None:
    """After a burst of N, the next N go S seconds after the burst's answers, not paced in."""
    spans = await run_requests(limits_of(RateLimit(3, 10.0), fake_time), fake_time, 7, 2.0)
    sends = [round(sent - 1000.0, 6) for sent, _ in spans]
    assert sends == [0.0, 0.0, 0.0, 12.0, 12.0, 12.0, 24.0]


async def test_a_failed_request_also_counts_until_s_after_it_failed(fake_time: FakeTime) -> None:
    """A request that fails holds its place in the window S seconds after the failure."""
    limits = limits_of(RateLimit(1, 10.0), fake_time)
    sent: list[float] = []

    async def failing() -> None:
        sent.append(fake_time.clock())
        await fake_time.sleep(3.0)
        raise ServerError("boom", status=500, body=None, headers={}, method="GET", url="u")

    for _ in range(2):
        with pytest.raises(ServerError):
            await limits.run(failing)
    assert [round(s - 1000.0, 6) for s in sent] == [0.0, 13.0]


async def test_a_cancelled_wait_takes_no_place(fake_time: FakeTime) -> None:
    """A call cancelled while waiting for its turn leaves the window as it found it."""
    limits = limits_of(RateLimit(1, 10.0), fake_time)

    async def quick() -> None:
        return None

    await limits.run(quick)
    waiting = asyncio.ensure_future(limits.run(quick))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    fake_time.now += 10.0
    stamps: list[float] = []

    async def stamp() -> None:
        stamps.append(fake_time.clock())

    await limits.run(stamp)
    assert stamps == [1010.0]


async def test_a_turn_past_the_deadline_is_refused_at_once(fake_time: FakeTime) -> None:
    """With every place taken until past the deadline, the wait is refused without sleeping."""
    limiter = InProcessRateLimiter(RateLimit(1, 10.0), clock=fake_time.clock, sleep=fake_time.sleep)
    turn = await limiter.wait_for_turn(None, 60.0, None)
    await limiter.finished(turn)
    with pytest.raises(WaitTooLong, match="rate limit"):
        await limiter.wait_for_turn(fake_time.now + 5.0, 60.0, None)
    assert fake_time.sleeps == []


async def test_with_every_place_in_flight_the_wait_is_at_least_s(fake_time: FakeTime) -> None:
    """All N places in flight: no turn can come sooner than S, so a nearer deadline is refused."""
    limiter = InProcessRateLimiter(RateLimit(2, 10.0), clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(2):
        await limiter.wait_for_turn(None, 60.0, None)
    with pytest.raises(WaitTooLong):
        await limiter.wait_for_turn(fake_time.now + 9.0, 60.0, None)


async def test_a_fixed_window_server_never_answers_429(fake_time: FakeTime) -> None:
    """Against a fake counting as Laravel does (fixed window), RateLimit(N, S) gets no 429."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def server_now() -> datetime:
        return start + timedelta(seconds=fake_time.now - 1000.0)

    fake = FakeFathom({TOKEN: ["*"]}, now=server_now, rate_limit=(4, 30))
    fake.add_site(SITE)
    async with AsyncClient(
        TOKEN,
        transport=MemoryTransport(fake),
        rate_limit=RateLimit(4, 30.0),
        retry=RetryPolicy(max_retries=0),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    ) as client:
        pages = await asyncio.gather(*(client.events.list(SITE) for _ in range(13)))
    assert len(pages) == len(fake.requests) == 13  # no retries allowed: a 429 would raise
    assert fake_time.now - 1000.0 >= 90.0  # four windows of 30 s: 0, 30, 60, 90
