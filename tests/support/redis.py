"""A real ``redis-server`` for the tests: started on a free loopback port, stopped afterwards.

The suite starts the server itself (no persistence: ``--save '' --appendonly
no``), waits until it answers PING, and stops it when done. One server serves
the whole session (``redis_server``); ``redis_url`` empties it before each
test. ``start_redis`` starts more (with a password, or on a port chosen
beforehand, to bring "Redis" back during a test); each stops when its test ends.

On a machine without ``redis-server`` (or without redis-py) every test that
needs one is skipped, with a reason saying how to get it, unless the
environment variable ``FATHOM_EVENTS_REQUIRE_REDIS=1`` is set (``.ci/run``
sets it): then those tests fail, so that CI cannot pass without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import pytest

from fathom_events import RateLimit
from fathom_events._options import Secret
from tests.support.helpers import TOKEN, FakeTime

if TYPE_CHECKING:
    import redis

    from fathom_events import AsyncClient, Client
    from fathom_events._redis_limiter import RedisRateLimiter

__all__ = [
    "REQUIRE_REDIS_ENV",
    "MakeLimiter",
    "RedisServer",
    "VirtualTime",
    "free_port",
    "make_limiter_fixture",
    "on_fake_time",
    "redis_server_fixture",
    "redis_url_fixture",
    "start_redis_fixture",
]

T = TypeVar("T")

#: Set to 1 to make a missing redis-server (or redis-py) fail the Redis tests, not skip them.
REQUIRE_REDIS_ENV = "FATHOM_EVENTS_REQUIRE_REDIS"
_HOW_TO_GET = (
    "the Redis tests need a redis-server on the PATH (Debian/Ubuntu: apt-get install"
    " redis-server; macOS: brew install redis) and redis-py (pip install -e '.[test]')"
)
_START_WAIT = 10.0  # seconds a new server may take to answer PING


def _missing(what: str) -> NoReturn:
    reason = f"{what}: {_HOW_TO_GET}"
    if os.environ.get(REQUIRE_REDIS_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_REDIS_ENV}=1 is set, so this fails)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process of the tests, on loopback, without persistence."""

    def __init__(
        self, port: int | None = None, password: str | None = None, *, unix_socket: bool = False
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("no redis-server on this machine")
        try:
            import redis  # noqa: PLC0415 - optional until a Redis test runs
        except ImportError:
            _missing("redis-py is not installed")
        self.port = free_port() if port is None else port
        self.password = password
        self._folder = tempfile.TemporaryDirectory(prefix="fathom-events-redis-")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self._folder.name]
        args += ["--daemonize", "no", "--loglevel", "warning", "--logfile", ""]
        if password is not None:
            args += ["--requirepass", password]
        self.socket_path = f"{self._folder.name}/redis.sock" if unix_socket else None
        if self.socket_path is not None:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        self.process = subprocess.Popen(  # noqa: S603 - the redis-server found on the PATH
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._inspector: redis.Redis = redis.Redis(
            port=self.port, password=password, socket_timeout=5.0
        )
        self._wait_until_it_answers()

    def _wait_until_it_answers(self) -> None:
        import redis  # noqa: PLC0415 - checked in __init__

        gives_up = time.monotonic() + _START_WAIT
        while True:
            if self.process.poll() is not None:
                said = self.process.stderr.read().decode() if self.process.stderr else ""
                self.stop()
                pytest.fail(f"redis-server on port {self.port} exited at start: {said}")
            try:
                if self._inspector.ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > gives_up:
                    self.stop()
                    pytest.fail(f"redis-server on port {self.port} did not answer PING in time")
                time.sleep(0.02)

    @property
    def url(self) -> str:
        """The server's URL, with its password if it has one."""
        auth = "" if self.password is None else f":{self.password}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The server's ``unix://`` URL (started with ``unix_socket=True``)."""
        assert self.socket_path is not None, "started without unix_socket=True"
        return f"unix://{self.socket_path}?db=0"

    @property
    def inspector(self) -> redis.Redis:
        """A plain (blocking) redis-py client of this server, for a test to look inside it."""
        return self._inspector

    def places(self, key: str | bytes) -> list[tuple[bytes, float]]:
        """The members of a sorted set and their scores (the turns and when they free)."""
        found: list[tuple[bytes, float]] = self._inspector.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]
        return found

    def time_ms(self) -> int:
        """The server's clock (TIME), in milliseconds."""
        seconds, micros = self._inspector.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def everything(self) -> dict[bytes, object]:
        """Every key in the server and what it holds (a sorted set with its scores)."""
        held: dict[bytes, object] = {}
        for key in self._inspector.scan_iter(count=1000):
            kind = self._inspector.type(key)
            if kind == b"string":
                held[key] = self._inspector.get(key)
            elif kind == b"zset":
                held[key] = self._inspector.zrange(key, 0, -1, withscores=True)
            else:
                held[key] = self._inspector.dump(key)
        return held

    def stop(self) -> None:
        """Stop the server (and wait for it), whatever state it is in."""
        self._inspector.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self._folder.cleanup()


@pytest.fixture(name="redis_server", scope="session")
def redis_server_fixture() -> Iterator[RedisServer]:
    """One redis-server for the whole session (skipped, or failed, where there is none)."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="redis_url")
def redis_url_fixture(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test: its URL."""
    redis_server.inspector.flushall()
    return redis_server.url


@pytest.fixture(name="start_redis")
def start_redis_fixture() -> Iterator[Callable[..., RedisServer]]:
    """Another redis-server: ``start_redis(port=None, password=None, unix_socket=False)``.

    Each is stopped when the test ends.
    """
    started: list[RedisServer] = []

    def start(
        port: int | None = None, password: str | None = None, *, unix_socket: bool = False
    ) -> RedisServer:
        server = RedisServer(port, password, unix_socket=unix_socket)
        started.append(server)
        return server

    yield start
    for server in started:
        with contextlib.suppress(Exception):
            server.stop()


class VirtualTime:
    """Fake time that moves only once every task it runs waits on it, so waits are exact.

    ``FakeTime`` moves the clock as soon as a sleeper is scheduled again, which
    is exact when nothing else waits; here the tasks also wait on a real Redis
    (and a served fake) between their sleeps, and a clock moved meanwhile would
    make a request in flight look longer than its timeout. :meth:`run` runs
    calls and moves the clock to the earliest wake-up only when each call
    still running is asleep on it. Sleepers may be in other threads' loops (a
    blocking client's portal): each call of :meth:`run` must then be one
    blocking call made in a worker thread. A call that waits on anything else
    (a client's ``max_in_flight``, a free worker thread) never counts as asleep:
    give it room. If the calls neither end nor all sleep, the run fails, and
    lets them unwind with time moving at each sleep, as ``FakeTime`` does.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._asleep: list[tuple[float, int, asyncio.Future[None]]] = []
        self._gave_up = False

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self.sleeps.append(seconds)
            if self._gave_up:  # a run gave up: let every call unwind, as FakeTime would
                self.now += seconds
                return
            heapq.heappush(self._asleep, (self.now + seconds, next(self._order), woken))
        await woken

    async def asleep(self, count: int = 1) -> None:
        """Return once ``count`` sleeps have begun (in other tasks)."""
        while len(self.sleeps) < count:  # noqa: ASYNC110 - sleeps are counted, not signalled
            await asyncio.sleep(0.001)

    async def run(self, *calls: Awaitable[T], give_up: float = 20.0) -> list[T]:
        """Run ``calls`` as tasks to their ends, moving the clock when all of them sleep."""
        tasks = [asyncio.ensure_future(call) for call in calls]
        gives_up = time.monotonic() + give_up
        while not all(task.done() for task in tasks):
            if time.monotonic() > gives_up:
                self._give_up()
                await asyncio.gather(*tasks, return_exceptions=True)
                pytest.fail("the calls neither ended nor all slept (one waits on something else)")
            await asyncio.sleep(0.001)  # real time: Redis and the server answer meanwhile
            running = sum(1 for task in tasks if not task.done())
            with self._lock:
                self._asleep = [entry for entry in self._asleep if not entry[2].done()]
                heapq.heapify(self._asleep)
                if not self._asleep or len(self._asleep) != running:
                    continue
                self.now = max(self.now, self._asleep[0][0])
                while self._asleep and self._asleep[0][0] <= self.now:
                    woken = heapq.heappop(self._asleep)[2]
                    woken.get_loop().call_soon_threadsafe(_wake, woken)
        return await asyncio.gather(*tasks)

    def _give_up(self) -> None:
        with self._lock:
            self._gave_up = True
            asleep, self._asleep = self._asleep, []
        for _, _, woken in asleep:
            woken.get_loop().call_soon_threadsafe(_wake, woken)


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():  # cancelled meanwhile
        woken.set_result(None)


class MakeLimiter(Protocol):
    """``make_limiter(rate_limit, token=..., time=..., redis_time=False, **settings)``."""

    def __call__(
        self,
        rate_limit: RateLimit,
        *,
        token: str = ...,
        time: FakeTime | VirtualTime | None = ...,
        redis_time: bool = ...,
        **settings: Any,
    ) -> RedisRateLimiter: ...


@pytest.fixture(name="make_limiter")
async def make_limiter_fixture(fake_time: FakeTime) -> AsyncIterator[MakeLimiter]:
    """Shared limiters (each one "process") on fake time, closed when the test ends.

    Their scripts read "now" from the fake time too, unless ``redis_time=True``.
    """
    from fathom_events._redis_limiter import RedisRateLimiter  # noqa: PLC0415

    made: list[RedisRateLimiter] = []

    def make(
        rate_limit: RateLimit,
        *,
        token: str = TOKEN,
        time: FakeTime | VirtualTime | None = None,
        redis_time: bool = False,
        **settings: Any,
    ) -> RedisRateLimiter:
        clock = fake_time if time is None else time
        limiter = RedisRateLimiter(
            rate_limit,
            token=Secret(token),
            clock=clock.clock,
            sleep=clock.sleep,
            now_ms=None if redis_time else (lambda: round(clock.now * 1000)),
            **settings,
        )
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


def on_fake_time(client: AsyncClient | Client, time: FakeTime | VirtualTime) -> RedisRateLimiter:
    """The client's shared limiter, its scripts made to read "now" from ``time``."""
    from fathom_events._redis_limiter import RedisRateLimiter  # noqa: PLC0415

    limiter = client._limits.limiter
    assert isinstance(limiter, RedisRateLimiter), "the client keeps no budget in Redis"
    limiter.now_ms = lambda: round(time.now * 1000)
    return limiter
