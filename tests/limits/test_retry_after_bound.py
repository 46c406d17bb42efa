"""A Retry-After beyond the sanity bound is malformed: it can never block a client for good."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from fathom_events import AsyncClient, RateLimitError, RetryPolicy
from fathom_events import _protocol as proto
from fathom_events._limits import Limits
from fathom_events.testing import FakeFathom, Fault
from tests.support.helpers import SITE, TOKEN, FakeTime

NOW = 1_700_000_000.0
BOUND = proto.MAX_RETRY_AFTER


def test_the_bound_is_an_hour() -> None:
    """Fathom's limits are per hour, so no honest Retry-After is longer than one."""
    assert BOUND == 3600.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3600", 3600.0),
        ("3600.5", None),
        ("86400", None),
        ("1e308", None),
        ("9" * 400, None),
        (format_datetime(datetime.fromtimestamp(NOW + 3600, timezone.utc), usegmt=True), 3600.0),
        (format_datetime(datetime(2099, 1, 1, tzinfo=timezone.utc), usegmt=True), None),
    ],
)
def test_retry_after_beyond_the_bound_reads_as_none(value: str, expected: float | None) -> None:
    """Seconds or a date further away than the bound are treated as a malformed header."""
    assert proto.parse_retry_after(value, now=NOW) == expected


def test_a_malformed_retry_after_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Ignoring a header the server sent is said in the log, with the value (cut short)."""
    with caplog.at_level(logging.WARNING, logger="fathom_events"):
        assert proto.parse_retry_after("1e308", now=NOW) is None
    assert "Retry-After" in caplog.text
    assert "1e308" in caplog.text


async def test_the_cool_down_never_exceeds_the_bound(fake_time: FakeTime) -> None:
    """However long a cool-down is asked for, the limits hold calls back at most the bound."""
    limits = Limits(max_in_flight=1, rate_limit=None, clock=fake_time.clock, sleep=fake_time.sleep)
    await limits.cool_down(1e308)
    await limits.cool_down(float("inf"))

    async def attempt() -> str:
        return "ran"

    assert await limits.run(attempt) == "ran"
    assert fake_time.sleeps == [BOUND]


@pytest.mark.parametrize(
    "header",
    ["1e308", format_datetime(datetime.now(timezone.utc) + timedelta(days=365 * 70))],
)
async def test_a_huge_retry_after_does_not_disable_the_client(
    fake: FakeFathom, base_url: str, fake_time: FakeTime, header: str
) -> None:
    """A 429 with an absurd Retry-After is retried on normal backoff, and later calls work."""
    policy = RetryPolicy(jitter=0)
    async with AsyncClient(
        TOKEN, base_url, retry=policy, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        fake.inject(Fault.rate_limited(header))
        await client.events.list(SITE)
        assert fake_time.sleeps == [policy.backoff_base]
        await client.events.list(SITE)  # no cool-down left behind
        assert fake_time.sleeps == [policy.backoff_base]
        fake.inject(Fault.rate_limited(header), times=4)  # every attempt of one call
        with pytest.raises(RateLimitError) as info:
            await client.events.list(SITE)
        assert info.value.retry_after is None
        fake.reset_requests()
        await client.events.list(SITE)
        assert len(fake.requests) == 1
