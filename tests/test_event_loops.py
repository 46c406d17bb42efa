"""One AsyncClient works from whichever asyncio event loop awaits it.

Each loop gets its own session; the in-flight cap, the rate limit, the
cool-down and the counters stay shared by every loop and thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A module-level client, as a web app, a worker or a notebook holds one: made at import,
# used by two asyncio.run calls, then by two threads each running a loop of its own at
# once, and closed from a third asyncio.run. Run as a script, so that the end of the
# process (where unclosed sessions and sockets are reported) is part of the test.
SEQUENCE = """
import asyncio
import json
import threading

from fathom_events import AsyncClient, RateLimit, RateLimitError
from fathom_events.testing import FakeFathom, Fault


class SharedTime:
    # A fake monotonic clock that moves only when a waiter sleeps, from any thread.
    def __init__(self):
        self.now = 1000.0
        self.lock = threading.Lock()

    def clock(self):
        return self.now

    async def sleep(self, seconds):
        with self.lock:
            wake_at = self.now + seconds
        await asyncio.sleep(0)
        with self.lock:
            self.now = max(self.now, wake_at)


fake = FakeFathom()
fake.add_site("CDBUGS")
time = SharedTime()
serving = fake.serve_in_thread()
url = serving.__enter__()
client = AsyncClient(
    fake.DEFAULT_TOKEN,
    url,
    rate_limit=RateLimit(4, 40),  # bursts of 4, then one request per 10 s
    max_in_flight=3,
    clock=time.clock,
    sleep=time.sleep,
)


async def first_run():
    await client.events.create("CDBUGS", "first")
    fake.inject(Fault.rate_limited("30"))
    try:
        await client.with_options(max_retries=0).events.list("CDBUGS")
    except RateLimitError as error:
        return error.retry_after
    return None


async def second_run():
    started = time.now
    page = await client.events.list("CDBUGS")
    return [event.name for event in page.data], time.now - started


both_running = threading.Barrier(2)
created = {}
failed = []


async def burst(tag):
    both_running.wait()
    events = await asyncio.gather(
        *(client.events.create("CDBUGS", f"{tag}-{n}") for n in range(6))
    )
    created[tag] = sorted(event.name for event in events)


def worker(tag):
    try:
        asyncio.run(burst(tag))
    except BaseException as error:
        failed.append(repr(error))


retry_after = asyncio.run(first_run())
names, waited = asyncio.run(second_run())
threads = [threading.Thread(target=worker, args=(tag,)) for tag in ("a", "b")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
asyncio.run(client.aclose())
serving.__exit__(None, None, None)
print(json.dumps({
    "retry_after": retry_after,
    "names": names,
    "waited": waited,
    "created": created,
    "failed": failed,
    "requests_sent": client.requests_sent,
    "requests_received": len(fake.requests),
    "stored": len(fake.events("CDBUGS")),
    "elapsed": time.now - 1000.0,
    "closed": client.closed,
}))
"""


def test_one_client_serves_every_loop_and_thread_and_ends_clean() -> None:
    """Made at import, used by two runs and two threads' loops, closed from a third: no warning."""
    done = subprocess.run(  # noqa: S603 - our own interpreter running a fixed script
        [sys.executable, "-W", "error", "-c", SEQUENCE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["failed"] == []
    assert result["retry_after"] == 30
    assert result["names"] == ["first"]
    assert result["waited"] >= 30  # the cool-down a 429 started in one loop held another
    assert result["created"] == {
        "a": [f"a-{n}" for n in range(6)],
        "b": [f"b-{n}" for n in range(6)],
    }
    assert result["stored"] == 13
    assert result["requests_sent"] == result["requests_received"] == 15
    # One shared limit: 15 requests in bursts of 4 then one per 10 s take 110 s at least.
    assert result["elapsed"] >= 110
    assert result["closed"] is True
