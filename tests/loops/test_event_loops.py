"""One AsyncClient works from whichever asyncio event loop awaits it.

Each loop gets its own session; the in-flight cap, the rate limit, the
cool-down and the counters stay shared by every loop and thread.

These run over aiohttp only: they are about the built-in transport's sessions per
event loop (made, pooled and closed in each loop). A transport of the user's own
serves loops as its HTTP stack does (the docs say so); the refusal under trio,
which is the client's whatever its transport, runs over both in test_loop_errors.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import socket
import subprocess
import sys
import threading
import warnings
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import pytest

from fathom_events import AsyncClient, ClientClosedError
from tests.support.helpers import SITE, TOKEN

if TYPE_CHECKING:
    from typing_extensions import Self

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]

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


# -- in process: each way a loop can come and go ----------------------------------------


class LoopThread:
    """A long-lived event loop in a thread of its own (a notebook's, a server's)."""

    def __init__(self) -> None:
        self._ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = (
            concurrent.futures.Future()
        )
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),))
        self._stop: asyncio.Event | None = None

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._ready.set_result(asyncio.get_running_loop())
        await self._stop.wait()

    def __enter__(self) -> Self:
        self._thread.start()
        self.loop = self._ready.result()
        return self

    def run(self, coroutine: Coroutine[object, object, T]) -> T:
        """Run ``coroutine`` in the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def __exit__(self, *exc_info: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()


def pooled_sockets(session: aiohttp.ClientSession) -> list[socket.socket]:
    """The sockets of the connections a session keeps for reuse."""
    connector = session.connector
    assert connector is not None
    pools = connector._conns.values()
    sockets = []
    for pool in pools:
        for protocol, _ in pool:
            assert protocol.transport is not None
            sockets.append(protocol.transport.get_extra_info("socket"))
    return sockets


def is_closed(session: aiohttp.ClientSession) -> bool:
    """Whether the session is closed now (a call: no earlier check of it is carried over)."""
    return session.closed


def collect_warnings() -> list[str]:
    """Collect garbage and report every warning it raised (unclosed sessions, sockets)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(warning.message) for warning in caught]


def test_aclose_from_one_loop_closes_a_session_in_another_running_loop(
    sessions_made: list[aiohttp.ClientSession], thread_url: str
) -> None:
    """aclose() awaited in one loop closes the session a still-running loop in a thread holds."""
    client = AsyncClient(TOKEN, thread_url)
    with LoopThread() as notebook:
        notebook.run(client.events.list(SITE))
        (session,) = sessions_made
        assert not session.closed
        asyncio.run(client.aclose())
        assert is_closed(session)
        with pytest.raises(ClientClosedError):
            notebook.run(client.events.list(SITE))
    assert collect_warnings() == []


def test_each_loop_gets_its_own_session_and_it_ends_with_the_loop(
    sessions_made: list[aiohttp.ClientSession], thread_url: str
) -> None:
    """Two asyncio.run calls get two sessions; each is closed when its loop ends, and let go."""
    client = AsyncClient(TOKEN, thread_url)

    async def call() -> None:
        await client.events.list(SITE)
        await client.events.list(SITE)

    asyncio.run(call())
    asyncio.run(call())
    first, second = sessions_made
    assert first.closed
    assert second.closed
    # The live client keeps no ended loop's session: both can be collected.
    kept = [weakref.ref(first), weakref.ref(second)]
    del first, second
    sessions_made.clear()
    gc.collect()
    assert [ref() for ref in kept] == [None, None]
    asyncio.run(client.aclose())
    assert collect_warnings() == []


@pytest.mark.parametrize("noticed_by", ["another loop", "aclose", "collection"])
def test_a_loop_closed_by_hand_has_its_session_released_quietly(
    sessions_made: list[aiohttp.ClientSession], thread_url: str, noticed_by: str
) -> None:
    """A loop closed without shutting down its generators loses its session and socket quietly."""
    client = AsyncClient(TOKEN, thread_url)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(client.events.list(SITE))
    loop.close()  # no loop.shutdown_asyncgens(): the session is still open
    (session,) = sessions_made
    assert not session.closed
    sockets = pooled_sockets(session)
    assert len(sockets) == 1
    assert sockets[0].fileno() != -1
    if noticed_by == "another loop":
        asyncio.run(client.events.list(SITE))
    if noticed_by == "collection":
        del client
    else:
        asyncio.run(client.aclose())
    del loop
    assert collect_warnings() == []
    assert is_closed(session)
    assert sockets[0].fileno() == -1  # closed, not left for the collector


def test_a_client_dropped_unclosed_closes_its_session_in_its_loop(
    sessions_made: list[aiohttp.ClientSession], thread_url: str
) -> None:
    """A client collected without aclose() has its session closed in its loop, without a warning."""

    async def drop_a_client() -> None:
        client = AsyncClient(TOKEN, thread_url)
        await client.events.list(SITE)
        del client
        gc.collect()
        for _ in range(5):  # the close runs as a task of this loop
            await asyncio.sleep(0)

    with LoopThread() as long_lived:
        long_lived.run(drop_a_client())
    (session,) = sessions_made
    assert session.closed
    assert collect_warnings() == []
