"""The client's limits (``_limits``): any RateLimiter plugs in, and Limits keeps its promises."""

from __future__ import annotations

import pytest

from fathom_events import APITimeoutError, EventPage, RetryPolicy, ServerError, Timeouts
from fathom_events._http._sender import Sender
from fathom_events._limits import (
    InProcessRateLimiter,
    Limits,
    RateLimit,
    RateLimiter,
    WaitTooLong,
)
from fathom_events._options import DEFAULT_MAX_RESPONSE_BYTES, Secret
from fathom_events._protocol import MAX_RETRY_AFTER, build_list
from fathom_events._retry import call_with_retries
from fathom_events.testing import FakeFathom, MemoryTransport
from tests.support.helpers import SITE, TOKEN, FakeTime


class RecordingLimiter:
    """A RateLimiter written from the interface alone, recording what Limits asks of it."""

    def __init__(self, clock: FakeTime, *, refuse_turns: bool = False) -> None:
        self.clock = clock
        self.refuse_turns = refuse_turns
        self.calls: list[tuple[str, object]] = []
        self.cool_until = 0.0
        self.turns = 0

    async def wait_for_turn(
        self, deadline: float | None, max_cool_down: float, longest_attempt: float | None
    ) -> object:
        self.calls.append(("wait_for_turn", (deadline, max_cool_down, longest_attempt)))
        if self.refuse_turns:
            raise WaitTooLong(99.0, "waiting 99.0s for the shared window would pass the deadline")
        self.turns += 1
        return f"turn {self.turns}"

    async def finished(self, turn: object) -> None:
        self.calls.append(("finished", turn))

    async def cool_down(self, seconds: float) -> None:
        self.calls.append(("cool_down", seconds))
        self.cool_until = max(self.cool_until, self.clock.now + seconds)


def limits_over(limiter: RateLimiter, fake_time: FakeTime) -> Limits:
    """Limits of one request in flight over ``limiter``, on fake time."""
    return Limits(
        max_in_flight=1,
        rate_limit=None,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        limiter=limiter,
    )


def test_the_in_process_limiter_is_a_rate_limiter(fake_time: FakeTime) -> None:
    """The cell-rate limiter implements the interface, and is what Limits uses by default."""
    limiter: RateLimiter = InProcessRateLimiter(
        RateLimit(2, 10.0), clock=fake_time.clock, sleep=fake_time.sleep
    )
    limits = Limits(max_in_flight=1, rate_limit=None, clock=fake_time.clock, sleep=fake_time.sleep)
    assert isinstance(limiter, InProcessRateLimiter)
    assert isinstance(limits.limiter, InProcessRateLimiter)


async def test_each_turn_is_asked_for_and_finished_in_order(fake_time: FakeTime) -> None:
    """Limits asks for a turn with the call's deadline, longest cool-down and attempt timeout,
    and says when its request finished."""
    limiter = RecordingLimiter(fake_time)
    limits = limits_over(limiter, fake_time)

    async def answer() -> str:
        limiter.calls.append(("sent", None))
        return "answer"

    assert await limits.run(answer, deadline=1234.0, max_cool_down=60.0, longest_attempt=5.0) == (
        "answer"
    )
    assert limiter.calls == [
        ("wait_for_turn", (1234.0, 60.0, 5.0)),
        ("sent", None),
        ("finished", "turn 1"),
    ]
    assert limits.requests_sent == 1


async def test_a_failed_request_still_finishes_its_turn(fake_time: FakeTime) -> None:
    """A request that fails ends its turn too: the limiter hears of the failure's arrival."""
    limiter = RecordingLimiter(fake_time)
    limits = limits_over(limiter, fake_time)

    async def failure() -> None:
        raise ServerError("boom", status=500, body=None, headers={}, method="GET", url="u")

    with pytest.raises(ServerError):
        await limits.run(failure)
    assert limiter.calls[-1] == ("finished", "turn 1")


async def test_the_cool_down_goes_through_the_limiter_capped(fake_time: FakeTime) -> None:
    """Limits hands the cool-down to the limiter, at most the bound on Retry-After."""
    limiter = RecordingLimiter(fake_time)
    limits = limits_over(limiter, fake_time)
    await limits.cool_down(1e308)
    assert limiter.calls == [("cool_down", MAX_RETRY_AFTER)]


async def test_the_in_process_limiter_waits_out_the_cool_down(fake_time: FakeTime) -> None:
    """The in-process limiter holds a turn back until the cool-down is over."""
    limits = Limits(max_in_flight=1, rate_limit=None, clock=fake_time.clock, sleep=fake_time.sleep)
    await limits.cool_down(30.0)

    async def answer() -> float:
        return fake_time.clock()

    assert await limits.run(answer) == 1030.0
    assert fake_time.sleeps == [30.0]


async def test_a_cool_down_longer_than_allowed_is_refused_without_a_turn(
    fake_time: FakeTime,
) -> None:
    """A cool-down longer than the call's max_cool_down raises at once; no turn is taken."""
    limiter = InProcessRateLimiter(RateLimit(1, 10.0), clock=fake_time.clock, sleep=fake_time.sleep)
    await limiter.cool_down(30.0)
    with pytest.raises(WaitTooLong) as info:
        await limiter.wait_for_turn(None, 10.0, None)
    assert info.value.cool_down
    assert fake_time.sleeps == []
    await limiter.cool_down(-1e9)  # a shorter cool-down never shortens the one set
    with pytest.raises(WaitTooLong):
        await limiter.wait_for_turn(None, 10.0, None)


async def test_a_limiter_refusing_past_the_deadline_is_a_timeout(fake_time: FakeTime) -> None:
    """A limiter's WaitTooLong ends the call as APITimeoutError, with nothing sent."""
    limiter = RecordingLimiter(fake_time, refuse_turns=True)
    limits = limits_over(limiter, fake_time)
    fake = FakeFathom()
    fake.add_site(SITE)
    sender = Sender(
        MemoryTransport(fake),
        base_url="https://example.test",
        token=Secret(TOKEN),
        max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES,
    )

    with pytest.raises(APITimeoutError, match="shared window"):
        await call_with_retries(
            sender,
            build_list(SITE),
            EventPage,
            policy=RetryPolicy(deadline=10.0),
            limits=limits,
            timeouts=Timeouts(5.0, None),
        )
    assert fake.requests == []
    assert limiter.calls == [
        ("wait_for_turn", (fake_time.now + 10.0, RetryPolicy().max_retry_after, 5.0))
    ]
