"""Acceptance of the shared budget (issue 20, item 5): separate processes, a real Redis.

Each test runs four OS processes at once, ``fathom-events pull`` or the
worker script :mod:`tests.support.pull_worker`, each pulling a share of 40
sites through ``RateLimit(60, 6, redis_url=...)``, against one FakeFathom that
allows the token 60 requests per 6 s (``rate_limit=(60, 6)``: Laravel's fixed
window, opened by its first request), served over HTTP on loopback by the
test's event loop, which records every request with its status and times
(:mod:`tests.support.processes`). The 429s are counted from what the fake
answered.

These tests take real time, a job of 240 requests at 60 per 6 s is 18 s at
the least, so they are few and marked ``realtime``. Every process has a
bound on its time: a hang fails the test instead of holding it up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fathom_events.testing import FakeFathom, Fault
from tests.support.processes import (
    Finished,
    Seen,
    cli,
    environment,
    finish,
    run_all,
    served,
    start,
    until,
    windows,
)
from tests.support.redis import RedisServer

pytestmark = pytest.mark.realtime

BUDGET, PER_SECONDS = 60, 6.0
SITES = [f"SITE{number}" for number in range(1, 41)]
PAGES_PER_SITE = 6  # 600 events a site, 100 a page: 240 requests for the 40 sites
PROCESSES = 4
LEAST = 3 * PER_SECONDS  # 240 requests at 60 per 6 s: bursts at 0, 6, 12 and 18 s
TIMEOUT = 120.0  # seconds any one process may take before it is killed and the test fails
ATTEMPT_TIMEOUT = 3.0  # the worker script's timeout per attempt
IN_FLIGHT = 8  # a client's max_in_flight by default
PASSWORD = "budget-s3cret"


def share(number: int) -> list[str]:
    """The sites process ``number`` (0 to 3) pulls: every fourth one."""
    return SITES[number::PROCESSES]


def throttled_fake(*tokens: str) -> FakeFathom:
    """The fake the jobs run against: 40 sites of 600 events, 60 requests per 6 s a token."""
    fake = FakeFathom({token: ["*"] for token in tokens}, rate_limit=(BUDGET, PER_SECONDS))
    fake.seed(len(SITES), PAGES_PER_SITE * 100)
    return fake


def of(seen: list[Seen], token: str) -> list[Seen]:
    return [entry for entry in seen if entry.token == token]


def job_seconds(seen: list[Seen]) -> float:
    """From the fake's first request to its last answer."""
    answered = [entry.answered for entry in seen if entry.answered is not None]
    return max(answered) - min(entry.arrived for entry in seen)


def timeline(seen: list[Seen]) -> str:
    """What the fake saw, for a failure's message: each window's count and every request."""
    start = min(entry.arrived for entry in seen)
    rows = [
        f"  {entry.arrived - start:7.3f} s {entry.status} {entry.path}"
        for entry in sorted(seen, key=lambda entry: entry.arrived)
    ]
    return f"windows {windows(seen, PER_SECONDS)}:\n" + "\n".join(rows)


def pull_command(number: int, url: str, folder: Path, *redis: str) -> list[str]:
    """``fathom-events pull`` of process ``number``'s share, with the job's rate limit."""
    out = folder / f"pulled-{number}-{'shared' if redis else 'alone'}.json"
    return cli(
        "pull",
        *share(number),
        "--base-url",
        url,
        "--rate-limit",
        f"{BUDGET}/{PER_SECONDS:g}",
        *redis,
        "--out",
        str(out),
    )


async def test_four_processes_share_one_budget_where_alone_they_meet_429s(
    redis_url: str, tmp_path: Path
) -> None:
    """Through Redis, 4 processes get no 429 and take at most 1.1x the least time; alone, 429s."""
    fake = throttled_fake("shared-token", "alone-token")
    async with served(fake) as (url, seen):
        # The same job twice at once, each on a budget of its token's own: through Redis,
        # and with each process keeping the budget to itself, as before.
        shared = [
            (pull_command(n, url, tmp_path, "--redis-url", redis_url), environment("shared-token"))
            for n in range(PROCESSES)
        ]
        alone = [
            (pull_command(n, url, tmp_path), environment("alone-token")) for n in range(PROCESSES)
        ]
        ran = await run_all([*shared, *alone], TIMEOUT)
    through_redis = of(seen, "shared-token")
    assert [done.code for done in ran[:PROCESSES]] == [0] * PROCESSES, ran
    assert [entry.status for entry in through_redis] == [200] * 240, timeline(through_redis)
    took = job_seconds(through_redis)
    assert took <= 1.10 * LEAST, f"{took:.2f} s: {timeline(through_redis)}"
    assert windows(through_redis, PER_SECONDS) == [BUDGET] * 4  # the budget, full, four times
    # Alone, each believes the whole budget is its own: together they overrun it.
    refused = [entry for entry in of(seen, "alone-token") if entry.status == 429]
    assert refused, timeline(of(seen, "alone-token"))


def worker(
    sites: list[str], url: str, redis_url: str, on_redis_error: str = "fallback"
) -> list[str]:
    """The worker script pulling ``sites`` through the shared budget, each attempt 3 s at most.

    With a 3 s ``timeout`` a place taken by a process killed mid-request is
    leased for 3 + 6 s (the limiter's lease: the attempt's timeout plus S).
    """
    job = {
        "base_url": url,
        "sites": sites,
        "rate_limit": [BUDGET, PER_SECONDS],
        "redis_url": redis_url,
        "on_redis_error": on_redis_error,
        "timeout": ATTEMPT_TIMEOUT,
    }
    return [sys.executable, "-m", "tests.support.pull_worker", json.dumps(job)]


def result_of(done: Finished) -> dict[str, Any]:
    """The worker's one JSON line."""
    found: dict[str, Any] = json.loads(done.out.strip().splitlines()[-1])
    return found


async def test_a_process_killed_mid_request_leaks_no_place(redis_url: str) -> None:
    """SIGKILL mid-request: its places come back after their lease; the others, no 429, full."""
    fake = throttled_fake("token")
    victim, survivors = share(3), [site for site in SITES if site not in share(3)]
    for site in victim:  # its every request is taken in and never answered
        fake.inject(Fault.hang(), method="GET", path=f"/v1/sites/{site}/events", times=10)
    async with served(fake) as (url, seen):
        killed = await start(worker(victim, url, redis_url), environment("token"))
        # It holds a place for each request in flight: its 8 (max_in_flight) when it dies.
        await until(lambda: len(seen) == IN_FLIGHT)
        killed.send_signal(signal.SIGKILL)
        assert (await finish(killed, TIMEOUT)).code == -signal.SIGKILL
        commands = [
            (worker(survivors[n::3], url, redis_url), environment("token")) for n in range(3)
        ]
        ran = await run_all(commands, TIMEOUT)
    others = [entry for entry in seen if entry.path.split("/")[3] in survivors]
    assert [done.code for done in ran] == [0, 0, 0], [done.err for done in ran]
    assert [result_of(done)["failed"] for done in ran] == [{}] * 3
    assert [entry.status for entry in others] == [200] * 180, timeline(others)
    counted = windows(others, PER_SECONDS)
    # The dead process's places stay taken while leased (the first window is short of
    # them); then they come back: a later window holds the whole budget.
    assert counted[0] == BUDGET - IN_FLIGHT, timeline(others)
    assert max(counted[1:]) == BUDGET, timeline(others)
    assert sum(counted) == 180


@pytest.mark.parametrize("on_redis_error", ["fallback", "raise"])
async def test_redis_stopped_mid_run_follows_on_redis_error(
    on_redis_error: str, start_redis: Callable[..., RedisServer]
) -> None:
    """Redis stops after the first window: fallback finishes (one warning), raise fails typed."""
    redis = start_redis(password=PASSWORD)
    fake = throttled_fake("token")
    sites = SITES[:20]  # 120 requests: 60 through Redis, then 60 once it is gone
    async with served(fake) as (url, seen):
        commands = [
            (worker(sites[n::PROCESSES], url, redis.url, on_redis_error), environment("token"))
            for n in range(PROCESSES)
        ]
        processes = [await start(command, env) for command, env in commands]
        await until(lambda: sum(entry.status == 200 for entry in seen) == BUDGET)
        await asyncio.to_thread(redis.stop)
        ran = [await finish(process, TIMEOUT) for process in processes]
    assert [done.code for done in ran] == [0] * PROCESSES, [done.err for done in ran]
    assert not any(PASSWORD in done.out + done.err for done in ran)
    results = [result_of(done) for done in ran]
    if on_redis_error == "fallback":
        # Every site is pulled. Each process that still needed Redis once it had stopped
        # (that had work left after the first window) said so once, that it keeps the budget
        # itself now; one done within the first window may never have asked it again.
        assert [result["failed"] for result in results] == [{}] * PROCESSES
        assert sum(result["events"] for result in results) == len(sites) * 600
        for done, result in zip(ran, results, strict=True):
            warned = done.err.count("WARNING fathom_events: the shared rate budget in Redis")
            late = result["seconds"] > PER_SECONDS / 2
            assert warned == 1 if late else warned <= 1, done.err
        assert any(result["seconds"] > PER_SECONDS / 2 for result in results), results
    else:
        # Every site not done before Redis stopped failed with the typed error, at once.
        failed = {site: error for result in results for site, error in result["failed"].items()}
        assert set(failed.values()) == {"SharedBudgetError"}
        assert len(failed) == len(sites) - sum(result["events"] for result in results) // 600
        assert all(result["seconds"] < 2 * PER_SECONDS for result in results), results
