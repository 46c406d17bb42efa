"""When Redis fails: the budget falls back to the process (one warning) or raises, never hangs.

Redis is "down" here in each way it can be: nothing listens on its port, a
server accepts the connection and never answers, a server answers an error
(a wrong password, a key of the wrong type), a server stops mid-run. Time is
fake, except for the bound on each Redis call, which is real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

import pytest

from fathom_events import RateLimit, SharedBudgetError
from fathom_events._limits import WaitTooLong
from fathom_events._redis_limiter import RETRY_REDIS_AFTER
from tests.support.helpers import FakeTime
from tests.support.redis import MakeLimiter, RedisServer, free_port
from tests.support.secrecy import assert_chain_free

PASSWORD = "Redis-pw-7Qz-never-shown"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def assert_no_password_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in repr(record.args)
        assert record.exc_info is None


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A server that accepts connections and never answers: its port."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_an_unreachable_redis_falls_back_with_one_warning(
    fake_time: FakeTime, make_limiter: MakeLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing on Redis's port: one WARNING (no password), and the budget is kept in-process."""
    caplog.set_level(logging.INFO, logger="fathom_events")
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    limiter = make_limiter(RateLimit(2, 10.0, redis_url=url))
    sent = []
    for _ in range(5):
        turn = await limiter.wait_for_turn(None, 60.0, 5.0)
        sent.append(fake_time.now - 1000.0)
        await limiter.finished(turn)
    assert sent == [0.0, 0.0, 10.0, 10.0, 20.0]  # RateLimit(2, 10) all the same
    (warning,) = warnings_of(caplog)
    assert warning.name == "fathom_events"
    message = warning.getMessage()
    assert "redis://:********@127.0.0.1:" in message
    assert "this process keeps the budget (2 per 10s) by itself" in message
    assert f"every {RETRY_REDIS_AFTER:g}s" in message
    assert_no_password_logged(caplog)


async def test_redis_is_asked_again_after_the_pause(
    fake_time: FakeTime,
    make_limiter: MakeLimiter,
    start_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a failure Redis is left alone for the pause, then used again once it answers."""
    caplog.set_level(logging.INFO, logger="fathom_events")
    port = free_port()
    limiter = make_limiter(RateLimit(5, 10.0, redis_url=f"redis://127.0.0.1:{port}/0"))
    own_turn = await limiter.wait_for_turn(None, 60.0, 5.0)  # Redis down: this process's own
    server = start_redis(port=port)
    fake_time.now += RETRY_REDIS_AFTER - 0.5
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    assert server.everything() == {}  # still in the pause: Redis not asked
    fake_time.now += 0.5
    shared_turn = await limiter.wait_for_turn(None, 60.0, 5.0)
    (key,) = server.everything()
    assert len(server.places(key)) == 1  # the turn is Redis's
    await limiter.finished(own_turn)  # each turn ends in the budget that gave it
    assert limiter._own._sent == 0
    await limiter.finished(shared_turn)
    ((_, frees_at),) = server.places(key)
    assert frees_at == (fake_time.now + 10.0) * 1000
    told = [r for r in caplog.records if r.name == "fathom_events" and r.levelno >= logging.INFO]
    assert [r.levelname for r in told] == ["WARNING", "INFO"]
    assert "answers again" in told[1].getMessage()


async def test_one_warning_per_outage(
    fake_time: FakeTime,
    make_limiter: MakeLimiter,
    start_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failures within one outage warn once; a new outage after Redis came back warns again."""
    caplog.set_level(logging.WARNING, logger="fathom_events")
    port = free_port()
    limiter = make_limiter(RateLimit(100, 10.0, redis_url=f"redis://127.0.0.1:{port}/0"))
    for _ in range(3):  # three tries, each after the pause: one outage
        await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
        fake_time.now += RETRY_REDIS_AFTER
    assert len(warnings_of(caplog)) == 1
    server = start_redis(port=port)
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    server.stop()
    fake_time.now += 1.0
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    assert len(warnings_of(caplog)) == 2


async def test_on_redis_error_raise_gives_the_typed_error(
    make_limiter: MakeLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    """With on_redis_error="raise" an unreachable Redis raises SharedBudgetError, alone."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    limiter = make_limiter(RateLimit(2, 10.0, redis_url=url, on_redis_error="raise"))
    with pytest.raises(SharedBudgetError) as raised:
        await limiter.wait_for_turn(None, 60.0, 5.0)
    error = raised.value
    assert error.redis_url == url.replace(PASSWORD, "********")
    assert "cannot be used" in str(error)
    assert "not sent" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_chain_free(error, PASSWORD)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)  # noqa: S301 - our own bytes
    with pytest.raises(SharedBudgetError):  # no pause in this mode: Redis is asked each time
        await limiter.wait_for_turn(None, 60.0, 5.0)
    assert_no_password_logged(caplog)


async def test_a_wrong_password_is_a_redis_error_shown_without_it(
    make_limiter: MakeLimiter,
    start_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server refusing the password: the error (raise) and the warning (fallback) hide it."""
    caplog.set_level(logging.WARNING, logger="fathom_events")
    server = start_redis(password="the-right-password")
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    raising = make_limiter(RateLimit(2, 10.0, redis_url=url, on_redis_error="raise"))
    with pytest.raises(SharedBudgetError) as raised:
        await raising.wait_for_turn(None, 60.0, 5.0)
    assert "AuthenticationError" in str(raised.value)
    assert_chain_free(raised.value, PASSWORD)
    falling_back = make_limiter(RateLimit(2, 10.0, redis_url=url))
    await falling_back.wait_for_turn(None, 60.0, 5.0)
    (warning,) = warnings_of(caplog)
    assert "AuthenticationError" in warning.getMessage()
    assert_no_password_logged(caplog)


async def test_an_error_answered_by_redis_falls_back(
    make_limiter: MakeLimiter, redis_url: str, redis_server: RedisServer
) -> None:
    """A script refused by Redis (its key holds another type) is a Redis error like any other."""
    limiter = make_limiter(RateLimit(1, 10.0, redis_url=redis_url))
    redis_server.inspector.set(limiter._turns_key, "not a sorted set")
    with pytest.raises(SharedBudgetError, match="WRONGTYPE"):
        await make_limiter(
            RateLimit(1, 10.0, redis_url=redis_url, on_redis_error="raise")
        ).wait_for_turn(None, 60.0, 5.0)
    turn = await limiter.wait_for_turn(None, 60.0, 5.0)
    assert turn.redis_id is None  # this process's own budget gave it


@pytest.mark.parametrize("on_redis_error", ["fallback", "raise"])
async def test_a_silent_server_does_not_hold_a_call_past_its_deadline(
    fake_time: FakeTime, make_limiter: MakeLimiter, on_redis_error: Literal["fallback", "raise"]
) -> None:
    """A Redis that never answers is given the time left to the deadline, no more."""
    async with silent_server() as port:
        limiter = make_limiter(
            RateLimit(
                2, 10.0, redis_url=f"redis://127.0.0.1:{port}/0", on_redis_error=on_redis_error
            )
        )
        began = time.monotonic()
        if on_redis_error == "raise":
            with pytest.raises(SharedBudgetError, match=r"no answer within 0\.3s"):
                await limiter.wait_for_turn(fake_time.now + 0.3, 60.0, 5.0)
        else:
            turn = await limiter.wait_for_turn(fake_time.now + 0.3, 60.0, 5.0)
            assert turn.redis_id is None
        assert time.monotonic() - began < 2.0


async def test_without_a_deadline_each_redis_call_has_its_own_bound(
    make_limiter: MakeLimiter,
) -> None:
    """With no deadline, a silent Redis is given operation_timeout for each call."""
    async with silent_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        limiter = make_limiter(
            RateLimit(2, 10.0, redis_url=url, on_redis_error="raise"), operation_timeout=0.2
        )
        began = time.monotonic()
        with pytest.raises(SharedBudgetError, match=r"no answer within 0\.2s"):
            await limiter.wait_for_turn(None, 60.0, 5.0)
        await limiter.cool_down(5.0)  # bounded too; a cool-down Redis did not take never raises
        await limiter.finished(await limiter._own.wait_for_turn(None, 60.0, 5.0))
        assert time.monotonic() - began < 2.0


async def test_a_passed_deadline_is_refused_without_asking_redis(
    fake_time: FakeTime, make_limiter: MakeLimiter, redis_url: str, redis_server: RedisServer
) -> None:
    """A call whose deadline has passed waits for nothing: it is refused, and Redis untouched."""
    limiter = make_limiter(RateLimit(2, 10.0, redis_url=redis_url, on_redis_error="raise"))
    with pytest.raises(WaitTooLong, match="deadline"):
        await limiter.wait_for_turn(fake_time.now, 60.0, 5.0)
    assert redis_server.everything() == {}


async def test_the_fallback_keeps_the_cool_down_redis_could_not_hear_of(
    fake_time: FakeTime, make_limiter: MakeLimiter
) -> None:
    """A Retry-After heard during an outage holds this process back all the same."""
    limiter = make_limiter(RateLimit(5, 10.0, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    await limiter.cool_down(30.0)
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    assert fake_time.now == 1030.0


async def test_the_cool_down_is_kept_in_process_even_when_redis_takes_it(
    fake_time: FakeTime,
    make_limiter: MakeLimiter,
    redis_url: str,
    redis_server: RedisServer,
) -> None:
    """A cool-down sent to Redis is also kept here: lost from Redis, it still holds this process."""
    limiter = make_limiter(RateLimit(5, 10.0, redis_url=redis_url))
    await limiter.cool_down(30.0)
    redis_server.inspector.flushall()
    await limiter.finished(await limiter.wait_for_turn(None, 60.0, 5.0))
    assert fake_time.now == 1030.0


@pytest.mark.parametrize("on_redis_error", ["fallback", "raise"])
async def test_a_finish_redis_cannot_hear_is_logged_not_raised(
    make_limiter: MakeLimiter,
    start_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
    on_redis_error: Literal["fallback", "raise"],
) -> None:
    """The end of a turn never raises (it would hide the answer): Redis down, it warns once."""
    caplog.set_level(logging.WARNING, logger="fathom_events")
    server = start_redis(password=PASSWORD)
    limiter = make_limiter(RateLimit(5, 10.0, redis_url=server.url, on_redis_error=on_redis_error))
    turns = [await limiter.wait_for_turn(None, 60.0, 5.0) for _ in range(2)]
    server.stop()
    for turn in turns:
        await limiter.finished(turn)
    (warning,) = warnings_of(caplog)
    assert "cannot be used" in warning.getMessage()
    assert_no_password_logged(caplog)
