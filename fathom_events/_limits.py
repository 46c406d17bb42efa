"""The API's limits, shared by every call of one client: rate limit, in-flight cap, cool-down.

One :class:`Limits` per client (and its ``with_options`` twins) holds the cap
on requests in flight (:class:`InFlightCap`), a :class:`RateLimiter` that
spaces requests and keeps the cool-down a 429's ``Retry-After`` starts for
everybody, and the counts of requests sent and retried, whichever event loop
or thread the calls run in.

:class:`RateLimiter` is the small interface a limiter implements; today's is
:class:`InProcessRateLimiter` (a cell-rate algorithm in this process). A
limiter shared between processes (through Redis, say) implements the same
four methods and keeps its own promise, e.g. "never more than N requests in
any S-second window, each counted from when it is sent until S seconds after
its answer or failure arrived": that is why a limiter is told when each
request it let through has finished.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import attrs

from ._checks import as_validator, check_int_at_least, check_seconds_or_none
from ._loops import running_loop
from ._protocol import MAX_RETRY_AFTER
from ._sends import note_send
from .exceptions import InvalidRequestError

__all__ = [
    "InFlightCap",
    "InProcessRateLimiter",
    "Limits",
    "RateLimit",
    "RateLimiter",
    "WaitTooLong",
]

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests per ``per_seconds``, e.g. ``RateLimit(2000, 3600)``."""

    requests: int = attrs.field(validator=as_validator(check_int_at_least))
    per_seconds: float = attrs.field(default=3600.0)

    @per_seconds.validator
    def _check_period(self, attribute: attrs.Attribute[float], value: float) -> None:
        if check_seconds_or_none(attribute.name, value) is None:
            raise InvalidRequestError(attribute.name, "must be a number of seconds, not None")


class WaitTooLong(Exception):  # noqa: N818 - internal signal, turned into a FathomError
    """A wait for the limits would pass the call's deadline or its longest allowed cool-down."""

    def __init__(self, seconds: float, message: str, *, cool_down: bool = False) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.cool_down = cool_down


def refuse_past_deadline(wait: float, deadline: float | None, now: float, what: str) -> None:
    """Raise :class:`WaitTooLong` if waiting ``wait`` seconds from ``now`` passes ``deadline``."""
    if deadline is not None and wait > 0 and now + wait > deadline:
        raise WaitTooLong(wait, f"waiting {wait:.1f}s for {what} would pass the deadline")


class RateLimiter(Protocol):
    """What :class:`Limits` asks of a rate limiter: turns, their end, and the cool-down.

    Times are on the client's injected clock (``clock`` / ``sleep``), so tests
    never wait. ``Limits`` asks for a turn only once the cool-down is over,
    and always says when the turn's request has finished (in a ``finally``,
    perhaps while being cancelled: a limiter that does I/O there shields it).
    """

    async def wait_for_turn(self, deadline: float | None) -> object:
        """Return once a request may be sent: a turn, given back to :meth:`finished`.

        Raise :class:`WaitTooLong` rather than wait past ``deadline`` (a time
        on the clock; ``None``: none). A cancelled wait must leave no turn taken.
        """
        ...

    async def finished(self, turn: object) -> None:
        """The request sent in ``turn`` has its answer, or failed: its window may start to end."""
        ...

    async def cool_down(self, seconds: float) -> None:
        """Hold every request back ``seconds`` from now (a longer cool-down already set stays)."""
        ...

    async def cool_down_left(self) -> float:
        """Seconds left of the cool-down, 0 or less when there is none."""
        ...


class InProcessRateLimiter:
    """A :class:`RateLimiter` for the calls of one process: a cell-rate algorithm and a cool-down.

    The rate limit is a generic cell-rate algorithm (a leaky bucket kept as
    one timestamp) on the injected clock: requests are spaced
    ``per_seconds / requests`` apart, with bursts of up to ``requests``; a
    turn counts from when it is given, so :meth:`finished` has nothing to do.
    aiolimiter would do the same but reads the event loop's clock and sleeps
    on its timers, which would make the limit untestable without real waits.
    With no ``rate_limit``, it keeps only the cool-down.
    """

    def __init__(self, rate_limit: RateLimit | None, *, clock: Clock, sleep: Sleep) -> None:
        self.rate_limit = rate_limit
        self.clock = clock
        self.sleep = sleep
        # Guards the schedule and the cool-down: calls may run in several threads.
        self._lock = threading.Lock()
        self._cool_until = 0.0
        self._theoretical_arrival = 0.0

    async def wait_for_turn(self, deadline: float | None) -> None:
        """Wait until the rate limit allows one more request (see :class:`RateLimiter`)."""
        if self.rate_limit is None:
            return
        interval = self.rate_limit.per_seconds / self.rate_limit.requests
        burst = self.rate_limit.per_seconds - interval
        with self._lock:
            now = self.clock()
            arrival = max(self._theoretical_arrival, now)
            wait = arrival - burst - now
            refuse_past_deadline(wait, deadline, self.clock(), "the rate limit")
            self._theoretical_arrival = arrival + interval
        if wait > 0:
            try:
                await self.sleep(wait)
            except BaseException:
                with self._lock:
                    self._theoretical_arrival -= interval  # give the unused turn back
                raise

    async def finished(self, turn: object) -> None:
        """Nothing to do: a turn here counts from when it was given."""

    async def cool_down(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now."""
        until = self.clock() + seconds
        with self._lock:  # calls in other threads' loops may cool down at the same moment
            self._cool_until = max(self._cool_until, until)

    async def cool_down_left(self) -> float:
        """Seconds left of the cool-down."""
        return self._cool_until - self.clock()


class Limits:
    """What every call of one client shares: in-flight cap, rate limiter, cool-down, counts.

    Its settings come checked, from the client's ``ClientOptions``; ``limiter``
    replaces the in-process rate limiter (and its cool-down) with another.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        rate_limit: RateLimit | None,
        clock: Clock,
        sleep: Sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.sleep = sleep
        self.limiter: RateLimiter = limiter or InProcessRateLimiter(
            rate_limit, clock=clock, sleep=sleep
        )
        self._in_flight = InFlightCap(max_in_flight)
        self._lock = threading.Lock()  # guards the counts: calls may run in several threads
        self.requests_sent = 0
        self.retries = 0

    async def cool_down(self, seconds: float) -> None:
        """Hold every call of this client back for ``seconds`` from now (at most an hour).

        The cap (:data:`~fathom_events._protocol.MAX_RETRY_AFTER`) is what keeps a
        bad header from holding the client back for good.
        """
        await self.limiter.cool_down(min(seconds, MAX_RETRY_AFTER))

    async def _wait_out_cool_down(self, deadline: float | None, max_cool_down: float) -> None:
        while (wait := await self.limiter.cool_down_left()) > 0:
            if wait > max_cool_down:
                raise WaitTooLong(wait, "the client is cooling down after a 429", cool_down=True)
            refuse_past_deadline(wait, deadline, self.clock(), "the client's cool-down after a 429")
            await self.sleep(wait)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        max_cool_down: float = math.inf,
    ) -> T:
        """Run one attempt when the cool-down, the rate limit and a free slot allow.

        Raises :class:`WaitTooLong` instead of waiting past ``deadline`` (on
        the limits' clock) or a cool-down longer than ``max_cool_down``.
        """
        in_flight = self._in_flight
        limiter = self.limiter
        if not in_flight.try_take():
            await in_flight.take()
        try:
            if await limiter.cool_down_left() > 0:
                await self._wait_out_cool_down(deadline, max_cool_down)
            turn = await limiter.wait_for_turn(deadline)
            try:
                with self._lock:
                    self.requests_sent += 1
                note_send()
                return await attempt()
            finally:
                await limiter.finished(turn)
        finally:
            in_flight.give_back()

    def count_retry(self) -> None:
        """Count one more retry (calls in several threads may count at once)."""
        with self._lock:
            self.retries += 1


# --- the cap on requests in flight ---------------------------------------------------------
#
# ``asyncio.Semaphore`` binds itself to the first loop that waits on it, so one client
# awaited from two loops (two ``asyncio.run`` calls, two threads) could not share it.
# :class:`InFlightCap` keeps the count under a ``threading.Lock``; a call that must wait
# parks a future of its own loop, and whoever frees a slot hands it straight to the
# longest waiter, waking it in its loop's thread. Taking a free slot never touches a
# loop, so the common case costs one lock round trip.


class _Waiter:
    """One call waiting for a slot, in its own loop."""

    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        # Set under the lock when a slot is handed over: from then on the slot is this
        # waiter's to give back, whatever happens to its future or its task.
        self.granted = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled waiter gives its slot back itself
        future.set_result(None)


class InFlightCap:
    """At most ``limit`` holders at once, from any loop and any thread, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._free = limit
        self._waiters: collections.deque[_Waiter] = collections.deque()

    def try_take(self) -> bool:
        """Take a slot if one is free now (and nobody waits for one); never blocks."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            return False

    async def take(self) -> None:
        """Wait for a slot in the running loop; a cancelled wait leaves no slot taken."""
        waiter = _Waiter(running_loop())
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                granted = waiter.granted
                if not granted and waiter in self._waiters:
                    self._waiters.remove(waiter)
            if granted:  # handed a slot on the way out: pass it on
                self.give_back()
            raise

    def give_back(self) -> None:
        """Free a slot: hand it to the longest waiter whose loop still runs, or keep it free."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.future.done():  # cancelled while waiting; it leaves by itself
                    continue
                try:
                    if waiter.loop is asyncio._get_running_loop():  # noqa: SLF001
                        waiter.future.set_result(None)
                    else:
                        waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                except RuntimeError:  # its loop is closed: nobody is left to wake
                    continue
                waiter.granted = True
                return
            self._free += 1
