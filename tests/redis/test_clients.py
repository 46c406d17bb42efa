"""RateLimit(N, S, redis_url=...) end to end: both faces, served fakes, real Redis, fake time.

The fake counts requests as Laravel does (a fixed window per token, opened by
its first request) on the same fake clock as the clients, and retries are off,
so a single 429 would fail the call. Each client's limiter reads "now" from the
fake clock too (``on_fake_time``). Calls running side by side run on
``VirtualTime``, which moves only when every one of them sleeps: a clock that
jumped while a request was in flight would make it outlive its lease.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from time import monotonic
from time import sleep as wall_sleep
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    CallRecord,
    Client,
    InvalidRequestError,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    SharedBudgetError,
    Waited,
)
from fathom_events._options import ClientOptions
from fathom_events._redis_limiter import RedisRateLimiter
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import FACES, Face
from tests.support.helpers import SITE, TOKEN, FakeTime
from tests.support.redis import RedisServer, VirtualTime, free_port, on_fake_time
from tests.support.secrecy import assert_chain_free

PASSWORD = "Client-redis-pw-4Kd"


def fixed_window_fake(time: VirtualTime, requests: int, seconds: float) -> FakeFathom:
    """A fake allowing ``requests`` per fixed window of ``seconds``, on the fake clock."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def server_now() -> datetime:
        return start + timedelta(seconds=time.now - 1000.0)

    fake = FakeFathom({TOKEN: ["*"]}, now=server_now, rate_limit=(requests, seconds))
    fake.add_site(SITE)
    return fake


def on_virtual_time(time: VirtualTime, rate_limit: RateLimit) -> dict[str, Any]:
    """A client's options for calls run side by side on ``time``: no retries, room for all."""
    return {
        "rate_limit": rate_limit,
        "retry": RetryPolicy(max_retries=0),
        "max_in_flight": 16,  # every call waits on the clock, none on the cap (VirtualTime)
        "timeout": 5.0,
        "clock": time.clock,
        "sleep": time.sleep,
    }


def our_connections(server: RedisServer, settled_at: int | None = None) -> int:
    """How many clients are connected to ``server``, the test's own inspector aside.

    Given ``settled_at``, wait (a little) for the count to reach it: the server
    notices a closed connection a moment after the client has closed it.
    """
    gives_up = monotonic() + 5.0
    while True:
        listed: list[dict[str, object]] = server.inspector.client_list()  # type: ignore[assignment]
        count = len(listed) - 1
        if settled_at is None or count == settled_at or monotonic() > gives_up:
            return count
        wall_sleep(0.01)


@pytest.mark.parametrize("face", FACES, ids=lambda face: face.id)
async def test_both_faces_keep_the_shared_budget_against_a_fixed_window_server(
    face: Face, redis_url: str, redis_server: RedisServer
) -> None:
    """5 calls at once through RateLimit(2, 30, redis_url=...): no 429, three windows."""
    time = VirtualTime()
    fake = fixed_window_fake(time, 2, 30)
    options = on_virtual_time(time, RateLimit(2, 30.0, redis_url=redis_url))
    async with face.serve(fake) as url, face.open(TOKEN, url, **options) as opened:
        on_fake_time(opened.client, time)
        # Five: a blocking call waits in a worker thread of the test loop (five at least).
        pages = await time.run(*(opened.events.list(SITE) for _ in range(5)))
        assert our_connections(redis_server) >= 1
    assert len(pages) == len(fake.requests) == 5  # no retries allowed: a 429 would raise
    assert time.now - 1000.0 >= 60.0  # three windows of 30 s: 0, 30, 60
    assert our_connections(redis_server, settled_at=0) == 0  # closed with the client


async def test_an_async_and_a_blocking_client_share_one_budget(redis_url: str) -> None:
    """Two clients of one token (as two processes would) stay within one budget together."""
    time = VirtualTime()
    fake = fixed_window_fake(time, 3, 20)
    options = on_virtual_time(time, RateLimit(3, 20.0, redis_url=redis_url))
    with fake.serve_in_thread() as url:
        blocking = await asyncio.to_thread(lambda: Client(TOKEN, url, **options))
        try:
            on_fake_time(blocking, time)
            async with AsyncClient(TOKEN, url, **options) as client:
                on_fake_time(client, time)
                await time.run(
                    *(client.events.list(SITE) for _ in range(5)),
                    *(asyncio.to_thread(blocking.events.list, SITE) for _ in range(4)),
                )
        finally:
            await asyncio.to_thread(blocking.close)
    assert len(fake.requests) == 9
    assert time.now - 1000.0 >= 40.0  # three windows of 20 s


async def test_a_429_one_client_hears_holds_every_client_back(
    fake: FakeFathom, base_url: str, fake_time: FakeTime, redis_url: str
) -> None:
    """A Retry-After answered to one client cools down another that shares the budget."""
    options: dict[str, Any] = {
        "rate_limit": RateLimit(100, 10.0, redis_url=redis_url),
        "retry": RetryPolicy(max_retries=0),
        "clock": fake_time.clock,
        "sleep": fake_time.sleep,
    }
    async with (
        AsyncClient(TOKEN, base_url, **options) as first,
        AsyncClient(TOKEN, base_url, **options) as second,
    ):
        on_fake_time(first, fake_time)
        on_fake_time(second, fake_time)
        fake.inject(Fault.rate_limited("20"))
        with pytest.raises(RateLimitError):
            await first.events.list(SITE)  # 429: the cool-down starts, and (no retries) it raises
        assert fake_time.sleeps == []
        await second.events.list(SITE)
        assert fake_time.sleeps == [20.0]  # the cool-down was in Redis, not in `first` alone
    assert len(fake.requests) == 2


async def test_on_redis_error_raise_fails_the_call_before_it_is_sent(
    fake: FakeFathom, base_url: str
) -> None:
    """Redis unreachable with on_redis_error="raise": the call raises, nothing was sent."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    rate_limit = RateLimit(10, 60.0, redis_url=url, on_redis_error="raise")
    async with AsyncClient(TOKEN, base_url, rate_limit=rate_limit) as client:
        with pytest.raises(SharedBudgetError) as raised:
            await client.events.list(SITE)
    assert raised.value.attempts == 0
    assert fake.requests == []
    assert raised.value.__context__ is None
    assert_chain_free(raised.value, PASSWORD)


async def test_a_client_falls_back_when_redis_is_unreachable(
    fake: FakeFathom, base_url: str, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable by default: the calls go, limited in-process, with one warning."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    rate_limit = RateLimit(2, 10.0, redis_url=url)
    async with AsyncClient(
        TOKEN, base_url, rate_limit=rate_limit, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        for _ in range(3):
            await client.events.list(SITE)
    assert len(fake.requests) == 3
    assert fake_time.now >= 1010.0
    warned = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.name for record in warned] == ["fathom_events"]
    assert PASSWORD not in caplog.text


async def test_closing_the_client_closes_its_redis_connections(
    fake: FakeFathom, base_url: str, redis_url: str, redis_server: RedisServer
) -> None:
    """aclose() ends the client's connections to Redis; a twin from with_options closes none."""
    client = AsyncClient(TOKEN, base_url, rate_limit=RateLimit(10, 60.0, redis_url=redis_url))
    twin = client.with_options(timeout=3.0)
    await twin.events.list(SITE)
    assert our_connections(redis_server, settled_at=1) == 1
    await twin.aclose()
    await client.events.list(SITE)
    assert our_connections(redis_server, settled_at=1) == 1
    await client.aclose()
    assert our_connections(redis_server, settled_at=0) == 0
    await client.aclose()  # closing again does nothing


def test_one_async_client_serves_several_event_loops(
    fake: FakeFathom, redis_url: str, redis_server: RedisServer
) -> None:
    """One AsyncClient awaited from loops in two threads: a Redis client each, ended with each."""
    with fake.serve_in_thread() as url:
        client = AsyncClient(TOKEN, url, rate_limit=RateLimit(10, 60.0, redis_url=redis_url))
        errors: list[BaseException] = []

        def call_in_a_loop_of_its_own() -> None:
            try:
                asyncio.run(client.events.list(SITE))
            except BaseException as error:  # noqa: BLE001 - reported by the test below
                errors.append(error)

        threads = [threading.Thread(target=call_in_a_loop_of_its_own) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        asyncio.run(client.events.list(SITE))
        assert errors == []
        assert (
            our_connections(redis_server, settled_at=0) == 0
        )  # each loop's client ended with its loop
        asyncio.run(client.aclose())
    assert len(fake.requests) == 3
    assert len(redis_server.places(client._limits.limiter._turns_key)) == 3  # type: ignore[attr-defined]


def test_a_loop_closed_by_hand_lets_its_connection_go_without_a_warning(
    fake: FakeFathom, redis_url: str, redis_server: RedisServer
) -> None:
    """A loop closed without shutting down: its Redis connection is closed, without a warning."""
    with fake.serve_in_thread() as url:
        client = AsyncClient(TOKEN, url, rate_limit=RateLimit(10, 60.0, redis_url=redis_url))
        loop = asyncio.new_event_loop()
        loop.run_until_complete(client.events.list(SITE))
        loop.close()  # no shutdown_asyncgens: the session and the Redis client are left
        assert our_connections(redis_server, settled_at=1) == 1
        asyncio.run(client.aclose())
        gc.collect()  # a connection left unclosed would warn here (warnings are errors)
    assert our_connections(redis_server, settled_at=0) == 0


def test_uvloop_runs_the_shared_budget(fake: FakeFathom, redis_url: str) -> None:
    """Under uvloop (when installed) the budget is kept in Redis as under asyncio."""
    uvloop = pytest.importorskip("uvloop")
    with fake.serve_in_thread() as url:

        async def calls() -> None:
            rate_limit = RateLimit(10, 60.0, redis_url=redis_url)
            async with AsyncClient(TOKEN, url, rate_limit=rate_limit) as client:
                await client.events.list(SITE)
                limiter = client._limits.limiter
                assert isinstance(limiter, RedisRateLimiter)

        uvloop.run(calls())
    assert len(fake.requests) == 1


def test_the_options_show_the_rate_limit_without_the_password() -> None:
    """A client's settings show its RateLimit with the URL's password blotted out."""
    url = f"redis://user:{PASSWORD}@redis.internal:6379/0"
    options = ClientOptions(TOKEN, rate_limit=RateLimit(10, 60.0, redis_url=url))
    shown = repr(options)
    assert "redis://user:********@redis.internal:6379/0" in shown
    assert PASSWORD not in shown
    client = AsyncClient(TOKEN, rate_limit=RateLimit(10, 60.0, redis_url=url))
    assert PASSWORD not in repr(client._limits.limiter)
    asyncio.run(client.aclose())


def test_a_client_without_redis_py_says_how_to_install_it() -> None:
    """With redis-py missing, a RateLimit with redis_url is refused saying what to install."""
    script = (
        "import sys; sys.modules['redis'] = None\n"
        "from fathom_events import AsyncClient, InvalidRequestError, RateLimit\n"
        "try:\n"
        "    AsyncClient('t' * 20, rate_limit=RateLimit(5, redis_url='redis://localhost'))\n"
        "except InvalidRequestError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter running a fixed script
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == (
        "redis_url: a budget kept in Redis needs redis-py, which is not installed:"
        " pip install 'fathom-events[redis]'"
    )


def test_a_url_redis_py_cannot_read_is_refused_when_the_client_is_made() -> None:
    """A query redis-py refuses is an InvalidRequestError at once, not a failure at the call."""
    rate_limit = RateLimit(5, redis_url=f"redis://:{PASSWORD}@localhost/0?db=x")
    with pytest.raises(InvalidRequestError, match="redis-py cannot read it") as raised:
        AsyncClient(TOKEN, rate_limit=rate_limit)
    assert PASSWORD not in str(raised.value)


async def test_the_shared_limiters_waits_are_told_to_a_watched_call(
    fake: FakeFathom, base_url: str, fake_time: FakeTime, redis_url: str
) -> None:
    """on_event hears the shared limiter's waits as the in-process one's: cool-down, then rest."""
    seen: list[CallRecord] = []
    async with AsyncClient(
        TOKEN,
        base_url,
        rate_limit=RateLimit(1, 60, redis_url=redis_url),
        on_event=seen.append,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    ) as client:
        on_fake_time(client, fake_time)
        await client.events.list(SITE)
        await client.events.list(SITE)
        await client._limits.cool_down(45)  # as another call's 429 would; the place frees in 60
        await client.events.list(SITE)
    assert [(w.reason, w.seconds) for w in seen if isinstance(w, Waited)] == [
        ("rate_limit", 60.0),
        ("cool_down", 45.0),
        ("rate_limit", 15.0),
    ]
