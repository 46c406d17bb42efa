"""What a shared limiter makes of a reply of the wrong shape: only a turn, a wait or its error.

Redis is a server too: a reply that is not ``[verdict, milliseconds]`` (a proxy in
front of Redis, a script of another version) is Redis failing, handled as
``on_redis_error`` says; a wait is never longer than the window. A narrow unit
test: the script call is replaced, so no Redis is needed.
"""

from __future__ import annotations

from typing import Any

import pytest

from fathom_events import RateLimit, SharedBudgetError
from fathom_events._http._secrecy import Secret
from fathom_events._redis_limiter import RedisRateLimiter
from tests.support.helpers import TOKEN, FakeTime
from tests.support.redis import free_port


def limiter_answering(reply: Any, fake_time: FakeTime, on_error: str) -> RedisRateLimiter:
    """A shared limiter whose take script always gives ``reply``."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    limiter = RedisRateLimiter(
        RateLimit(5, 10.0, redis_url=url, on_redis_error=on_error),  # type: ignore[arg-type]
        token=Secret(TOKEN),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    replies = iter([reply, [0, 0]])

    async def call(*_: object) -> Any:
        return next(replies)

    limiter._call = call  # type: ignore[method-assign,assignment]
    return limiter


@pytest.mark.parametrize(
    "reply",
    [None, "OK", [0], [0, 0, 0], ["x", 1], [b"0", {}], [7, 5], [1, -5], [0, float("nan")]],
)
async def test_a_reply_of_the_wrong_shape_is_redis_failing(reply: Any, fake_time: FakeTime) -> None:
    """A reply that is not [verdict, milliseconds >= 0] raises SharedBudgetError, nothing else."""
    limiter = limiter_answering(reply, fake_time, "raise")
    with pytest.raises(SharedBudgetError, match="wrong shape"):
        await limiter.wait_for_turn(None, 60.0, 5.0)
    assert fake_time.sleeps == []


async def test_a_wait_is_never_longer_than_the_window(fake_time: FakeTime) -> None:
    """A reply asking for a wait beyond the window waits the window at most, then asks again."""
    limiter = limiter_answering([2, 10**15], fake_time, "raise")
    await limiter.wait_for_turn(None, 60.0, 5.0)
    assert fake_time.sleeps == [10.0]
