"""The shared budget keeps RateLimit(N, S) literally, in a real Redis, for every process at once.

Each limiter here stands for one process: two limiters on one server share one
budget. Time is fake: the limiters' sleeps move ``FakeTime`` (or, for requests
running side by side, ``VirtualTime``, which moves only when every one of them
sleeps), and the scripts read "now" from it (``now_ms``) rather than from
Redis's ``TIME``, so that the windows are tested against the real server
without real waits.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

import pytest

from fathom_events import RateLimit
from fathom_events._limits import Limits, WaitTooLong
from fathom_events._options import Secret
from fathom_events._redis_limiter import LEASE_WITHOUT_TIMEOUT, RedisRateLimiter
from tests.limits.test_window import most_counted_at_once
from tests.support.helpers import TOKEN, FakeTime
from tests.support.redis import MakeLimiter, RedisServer, VirtualTime


def limits_over(limiter: RedisRateLimiter, time: FakeTime | VirtualTime) -> Limits:
    return Limits(
        max_in_flight=64,
        rate_limit=limiter.rate_limit,
        clock=time.clock,
        sleep=time.sleep,
        limiter=limiter,
    )


async def run_requests(
    limits: list[Limits], time: VirtualTime, count: int, takes: float
) -> list[tuple[float, float]]:
    """``count`` requests at once through each of ``limits``, each taking ``takes`` seconds."""
    spans: list[tuple[float, float]] = []

    async def request() -> None:
        sent = time.clock()
        await time.sleep(takes)
        spans.append((sent, time.clock()))

    await time.run(*(one.run(request) for one in limits for _ in range(count)))
    return sorted(spans)


async def spans_through(
    make_limiter: MakeLimiter, rate_limit: RateLimit, count: int, takes: float
) -> tuple[list[tuple[float, float]], VirtualTime]:
    """``count`` requests at once through one shared limiter of ``rate_limit``, on virtual time."""
    time = VirtualTime()
    limiter = make_limiter(rate_limit, time=time)
    return await run_requests([limits_over(limiter, time)], time, count, takes), time


async def test_a_burst_of_n_goes_at_once(redis_url: str, make_limiter: MakeLimiter) -> None:
    """The first N requests are sent at once through the shared budget."""
    spans, time = await spans_through(make_limiter, RateLimit(5, 10.0, redis_url=redis_url), 5, 0.5)
    assert [sent for sent, _ in spans] == [1000.0] * 5
    assert time.now == 1000.5


async def test_never_more_than_n_counted_in_any_window(
    redis_url: str, make_limiter: MakeLimiter
) -> None:
    """Of 20 requests taking 1 s each, never more than 3 count at once (send to S after answer)."""
    spans, _ = await spans_through(make_limiter, RateLimit(3, 10.0, redis_url=redis_url), 20, 1.0)
    assert len(spans) == 20
    assert most_counted_at_once(spans, 10.0) == 3


async def test_the_next_burst_waits_for_the_window_after_the_answers(
    redis_url: str, make_limiter: MakeLimiter
) -> None:
    """After a burst of N, the next N go S seconds after the burst's answers, not paced in."""
    spans, _ = await spans_through(make_limiter, RateLimit(3, 10.0, redis_url=redis_url), 7, 2.0)
    sends = [round(sent - 1000.0, 6) for sent, _ in spans]
    assert sends == [0.0, 0.0, 0.0, 12.0, 12.0, 12.0, 24.0]


async def test_two_processes_share_one_budget(redis_url: str, make_limiter: MakeLimiter) -> None:
    """Two limiters (two processes) of one token count in one window: N in all, not N each."""
    time = VirtualTime()
    first = make_limiter(RateLimit(3, 10.0, redis_url=redis_url), time=time)
    second = make_limiter(RateLimit(3, 10.0, redis_url=redis_url), time=time)
    every = await run_requests([limits_over(first, time), limits_over(second, time)], time, 4, 1.0)
    assert len(every) == 8
    assert most_counted_at_once(every, 10.0) == 3
    assert [round(sent - 1000.0, 6) for sent, _ in every][:4] == [0.0, 0.0, 0.0, 11.0]


async def test_a_cool_down_one_process_hears_of_holds_every_process(
    redis_url: str, fake_time: FakeTime, make_limiter: MakeLimiter
) -> None:
    """A Retry-After seen by one limiter holds the other back, in Redis, until it is over."""
    first = make_limiter(RateLimit(100, 10.0, redis_url=redis_url))
    second = make_limiter(RateLimit(100, 10.0, redis_url=redis_url))
    await first.cool_down(30.0)
    turn = await second.wait_for_turn(None, 60.0, 5.0)
    assert fake_time.now == 1030.0
    await second.finished(turn)
    await second.cool_down(5.0)
    with pytest.raises(WaitTooLong) as refused:
        await first.wait_for_turn(None, 2.0, 5.0)  # longer than this call's max_cool_down
    assert refused.value.cool_down
    await second.cool_down(1.0)  # a shorter cool-down never shortens the one set
    with pytest.raises(WaitTooLong, match="deadline"):
        await first.wait_for_turn(fake_time.now + 4.0, 60.0, 5.0)


async def test_a_wait_past_the_deadline_is_refused_at_once(
    redis_url: str, fake_time: FakeTime, make_limiter: MakeLimiter
) -> None:
    """With every place taken until past the deadline, the wait is refused without sleeping."""
    limiter = make_limiter(RateLimit(1, 10.0, redis_url=redis_url))
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    with pytest.raises(WaitTooLong, match="rate limit"):
        await limiter.wait_for_turn(fake_time.now + 5.0, 60.0, 5.0)
    assert fake_time.sleeps == []


async def test_with_every_place_in_flight_the_wait_is_at_most_s_before_a_new_look(
    redis_url: str, make_limiter: MakeLimiter
) -> None:
    """All N places in flight: the next look comes S later (none can free sooner)."""
    time = VirtualTime()
    limiter = make_limiter(RateLimit(2, 10.0, redis_url=redis_url), time=time)
    turns = [await limiter.wait_for_turn(None, 60.0, 30.0) for _ in range(2)]

    async def answer_the_first_after_ten_seconds() -> None:
        await time.sleep(10.0)
        await limiter.finished(turns[0])  # its place frees at 1020, long before its lease

    async def when_a_turn_comes() -> float:
        await limiter.finished(await limiter.wait_for_turn(None, 60.0, 30.0))
        return time.now

    _, turn_at = await time.run(answer_the_first_after_ten_seconds(), when_a_turn_comes())
    assert turn_at == 1020.0
    assert 10.0 in time.sleeps
    assert max(time.sleeps) == 10.0  # the lease (1040) was never waited for whole


async def test_a_cancelled_wait_takes_no_place(
    redis_url: str, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """A wait cancelled before its turn (asleep, or in the middle of the script) holds nothing."""
    time = VirtualTime()
    limiter = make_limiter(RateLimit(1, 10.0, redis_url=redis_url), time=time)
    given_back: list[str] = []
    give_back = limiter._give_back

    async def recorded(turn_id: str) -> None:
        given_back.append(turn_id)
        await give_back(turn_id)

    limiter._give_back = recorded  # type: ignore[method-assign]
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))  # frees at 1010
    asleep = asyncio.ensure_future(limiter.wait_for_turn(None, 60.0, 5.0))
    await time.asleep()
    asleep.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asleep
    time.now += 10.0
    for attempt in range(150):  # cancelled at every step of the way into Redis and back
        asking = asyncio.ensure_future(limiter.wait_for_turn(None, 60.0, 5.0))
        for _ in range(attempt % 15):
            await asyncio.sleep(0)
        asking.cancel()
        await asyncio.wait({asking}, timeout=5.0)
        assert asking.done(), "a cancelled wait went on waiting"
        if asking.cancelled():
            continue
        await limiter.finished(asking.result())  # its turn came before the cancel
        time.now += 10.0
    await limiter._settle()
    assert given_back  # some were cancelled while the script ran
    left = redis_server.places(limiter._turns_key)
    assert all(score <= time.now * 1000 for _, score in left)  # every place is free now


async def test_a_lease_frees_the_place_of_a_process_killed_mid_request(
    redis_url: str, fake_time: FakeTime, make_limiter: MakeLimiter
) -> None:
    """A turn never finished (its process died) frees longest_attempt + S after it was taken."""
    dead = make_limiter(RateLimit(1, 10.0, redis_url=redis_url))
    alive = make_limiter(RateLimit(1, 10.0, redis_url=redis_url))
    await dead.wait_for_turn(None, 60.0, 30.0)  # never finished
    turn = await alive.wait_for_turn(None, 60.0, 30.0)
    assert fake_time.now == 1040.0  # 30 s of attempt, then S
    await alive.finished(turn)


async def test_a_turn_without_a_timeout_is_leased_for_the_documented_cap(
    redis_url: str, fake_time: FakeTime, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """longest_attempt None leases the place LEASE_WITHOUT_TIMEOUT + S, then S after its answer."""
    limiter = make_limiter(RateLimit(1, 10.0, redis_url=redis_url))
    turn = await limiter.wait_for_turn(None, 60.0, None)
    (key,) = redis_server.everything()
    ((_, score),) = redis_server.places(key)
    assert score == (1000.0 + LEASE_WITHOUT_TIMEOUT + 10.0) * 1000
    fake_time.now += 2.0
    await limiter.finished(turn)
    ((_, score),) = redis_server.places(key)
    assert score == 1012.0 * 1000


async def test_keys_expire_when_idle(
    redis_url: str, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """Each key expires when its last place frees (or its cool-down ends): nothing stays."""
    limiter = make_limiter(RateLimit(3, 10.0, redis_url=redis_url))
    turn = await limiter.wait_for_turn(None, 60.0, 5.0)
    (turns_key,) = redis_server.everything()
    assert 14_000 < redis_server.inspector.pttl(turns_key) <= 15_000  # the lease: 5 s + S
    await limiter.finished(turn)
    assert 9_000 < redis_server.inspector.pttl(turns_key) <= 10_000  # S after the answer
    await limiter.cool_down(30.0)
    (cool_key,) = set(redis_server.everything()) - {turns_key}
    assert 29_000 < redis_server.inspector.pttl(cool_key) <= 30_000


async def test_by_default_the_window_runs_on_redis_time(
    redis_url: str, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """Without an injected now, a place's end is reckoned on Redis's own clock (TIME)."""
    limiter = make_limiter(RateLimit(3, 10.0, redis_url=redis_url), redis_time=True)
    before = redis_server.time_ms()
    await limiter.wait_for_turn(None, 60.0, 5.0)
    after = redis_server.time_ms()
    (key,) = redis_server.everything()
    ((_, score),) = redis_server.places(key)
    assert before + 15_000 <= score <= after + 15_000


async def test_the_key_is_the_same_for_one_token_and_another_for_another(
    redis_url: str, fake_time: FakeTime, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """Two clients of one token share a key; another token has its own budget."""
    rate_limit = RateLimit(1, 10.0, redis_url=redis_url)
    await make_limiter(rate_limit).wait_for_turn(None, 60.0, 5.0)
    await make_limiter(rate_limit).wait_for_turn(None, 60.0, 5.0)  # same token: it waited
    assert fake_time.now == 1015.0
    await make_limiter(rate_limit, token="another-token-of-the-account").wait_for_turn(
        None, 60.0, 5.0
    )
    assert fake_time.now == 1015.0  # its own budget: no wait
    keys = sorted(redis_server.everything())
    assert len(keys) == 2
    digest = hashlib.sha256(b"fathom-events rate budget v1\0" + TOKEN.encode()).hexdigest()
    assert f"fathom-events:budget:{{token:{digest}}}:turns".encode() in keys


async def test_a_key_shares_one_budget_across_tokens(
    redis_url: str, fake_time: FakeTime, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """key= names the budget: clients of different tokens giving it share it."""
    rate_limit = RateLimit(1, 10.0, redis_url=redis_url, key="shop:prod")
    await make_limiter(rate_limit, token="first-token-xxxxxxxxxx").wait_for_turn(None, 60.0, 5.0)
    await make_limiter(rate_limit, token="second-token-yyyyyyyyy").wait_for_turn(None, 60.0, 5.0)
    assert fake_time.now == 1015.0
    assert list(redis_server.everything()) == [b"fathom-events:budget:{key:shop:prod}:turns"]


async def test_nothing_in_redis_reveals_the_token(
    redis_url: str, make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    """After turns, answers and a cool-down, no key or value holds the token in any form."""
    time = VirtualTime()
    limiter = make_limiter(RateLimit(2, 10.0, redis_url=redis_url), time=time)
    spans = await run_requests([limits_over(limiter, time)], time, 5, 1.0)
    assert len(spans) == 5
    await limiter.cool_down(3.0)
    held = redis_server.everything()
    assert len(held) == 2
    dumped = repr(held).encode() + b"".join(held)
    for form in token_forms(TOKEN):
        assert form not in dumped


def token_forms(token: str) -> list[bytes]:
    """The token as it is and as it is often encoded: hex, base64, reversed, upper case."""
    import base64  # noqa: PLC0415

    raw = token.encode()
    return [
        raw,
        raw.hex().encode(),
        base64.b64encode(raw),
        raw[::-1],
        raw.upper(),
        raw[: len(raw) // 2],
    ]


def test_the_token_is_held_only_as_a_secret(redis_url: str, fake_time: FakeTime) -> None:
    """The limiter keeps no copy of the token, and its repr shows no URL password."""
    limiter = RedisRateLimiter(
        RateLimit(1, redis_url="redis://:pw-shown-nowhere@127.0.0.1:1/0"),
        token=Secret(TOKEN),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert TOKEN not in repr(vars(limiter))
    assert "pw-shown-nowhere" not in repr(limiter)


async def test_a_unix_socket_url_reaches_the_same_budget(
    fake_time: FakeTime, make_limiter: MakeLimiter, start_redis: Callable[..., RedisServer]
) -> None:
    """A unix:// URL and a redis:// URL to one server share one budget."""
    server = start_redis(unix_socket=True)
    await make_limiter(RateLimit(1, 10.0, redis_url=server.unix_url)).wait_for_turn(None, 60.0, 5.0)
    await make_limiter(RateLimit(1, 10.0, redis_url=server.url)).wait_for_turn(None, 60.0, 5.0)
    assert fake_time.now == 1015.0  # the second waited for the first's lease
