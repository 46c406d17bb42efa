"""The API's limits, shared by every call of one client: rate limit, in-flight cap, cool-down.

One :class:`Limits` per client (and its ``with_options`` twins) holds the cap
on requests in flight (:class:`InFlightCap`), a :class:`RateLimiter` that
spaces requests and keeps the cool-down a 429's ``Retry-After`` starts for
everybody, and the counts of requests sent and retried, whichever event loop
or thread the calls run in.

:class:`RateLimiter` is the small interface a limiter implements:
:class:`InProcessRateLimiter` here, and the one shared between processes
through Redis (``_redis_limiter.RedisRateLimiter``, which a client uses when
its :class:`RateLimit` has a ``redis_url``). Both keep one promise: "never
more than N requests in any S-second window, each counted from when it is
sent until S seconds after its answer or failure arrived". That is why a
limiter is told when each request it let through has finished. A limiter
sleeps through :func:`sleep_told`, so that a watched call reports each of its
waits and what it waited for.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import math
import re
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import attrs

from ._checks import (
    as_validator,
    check_int_at_least,
    check_seconds_or_none,
    check_url_port,
    shown,
)
from ._http._secrecy import REDACTED
from ._loops import running_loop
from ._protocol import MAX_RETRY_AFTER
from ._sends import note_send
from .exceptions import InvalidRequestError

if TYPE_CHECKING:
    from ._observe._observer import CallWatch
    from ._observe._records import WaitReason

__all__ = [
    "InFlightCap",
    "InProcessRateLimiter",
    "Limits",
    "RateLimit",
    "RateLimiter",
    "WaitTooLong",
    "blot_password",
    "sleep_told",
    "url_passwords",
]

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


#: The schemes redis-py reads: plain TCP, TLS, and a Unix socket.
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: What ``key=`` may hold: a plain name, safe in a Redis key and in a log line.
_BUDGET_KEY = re.compile(r"[A-Za-z0-9._:-]{1,200}").fullmatch
# A password given in the query (redis-py reads ``?password=``), up to the next parameter.
_QUERY_PASSWORD = re.compile(r"(?i)(?:^|[?&;])password=([^&;#]*)")


def url_passwords(url: str) -> set[str]:
    """The passwords ``url`` holds, as written: its userinfo's, and any ``password=`` in its query.

    The userinfo is everything between ``://`` and the last ``@``, and its
    password all of it after its first ``:``, so that in a URL that is not well
    formed a password holding a raw ``/``, ``?`` or ``@`` is still found whole.
    """
    userinfo = url.partition("://")[2].rpartition("@")[0]
    found = {userinfo.partition(":")[2]} if ":" in userinfo else set()
    found.update(_QUERY_PASSWORD.findall(url))
    return found - {""}


def blot_password(url: str) -> str:
    """``url`` with its passwords (:func:`url_passwords`) blotted out; the rest as given.

    ``redis://:pw@host:6379/0`` shows as ``redis://:********@host:6379/0``.
    Any repr, message or log line that names a Redis URL shows it this way.
    """
    for password in sorted(url_passwords(url), key=len, reverse=True):
        url = url.replace(password, REDACTED)
    return url


def _shown_url(url: str | None) -> str:
    return "None" if url is None else repr(blot_password(url))


def check_redis_url(field: str, value: object) -> str | None:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL naming a host (or a socket's path).

    The URL may carry a password, so a refusal shows it blotted (:func:`blot_password`).
    """
    if value is None:
        return None
    rule = "must be a redis://, rediss:// or unix:// URL, such as redis://localhost:6379/0"
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"{rule}; got a {type(value).__name__}")
    seen = shown(blot_password(value))
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise InvalidRequestError(
            field,
            f"must be printable ASCII with no whitespace (percent-encode the rest), got {seen}",
        )
    parts = urlsplit(value)
    if parts.scheme not in REDIS_SCHEMES or not value.startswith(f"{parts.scheme}://"):
        raise InvalidRequestError(field, f"{rule}; got {seen}")
    if parts.scheme == "unix":
        if not parts.path.strip("/"):
            raise InvalidRequestError(
                field, f"must give a socket's path (unix:///path), got {seen}"
            )
        return value
    if not parts.hostname:
        raise InvalidRequestError(field, f"must name a host (redis://host:6379), got {seen}")
    check_url_port(field, parts, seen)
    return value


def _check_budget_key(field: str, value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not _BUDGET_KEY(value)):
        raise InvalidRequestError(
            field,
            "must be 1 to 200 letters, digits or . _ : - (the name of a budget in Redis, shared"
            f" by every client that gives it), got {shown(value)}",
        )
    return value


def _check_on_redis_error(field: str, value: object) -> str:
    if value not in ("fallback", "raise") or not isinstance(value, str):
        raise InvalidRequestError(field, f'must be "fallback" or "raise", got {shown(value)}')
    return value


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests per ``per_seconds``, e.g. ``RateLimit(2000, 3600)``.

    Given as ``AsyncClient(rate_limit=...)``, it is shared by every call of
    the client (and its ``with_options`` twins): no window of ``per_seconds``
    seconds, counted from a request's sending to the end of its answer, holds
    more than ``requests`` requests.

    With ``redis_url`` (``redis://``, ``rediss://`` or ``unix://``) the budget is
    kept in Redis and shared by every process, on every machine, that uses the
    same token, or the same ``key`` (a plain name) when one is given; the
    key in Redis is a one-way hash of the token, never the token. It needs
    ``pip install 'fathom-events[redis]'``. ``on_redis_error`` says what a call
    does when Redis cannot be used: ``"fallback"`` (keep the budget in this
    process, log one warning, and try Redis again a few seconds later) or
    ``"raise"`` (:class:`~fathom_events.SharedBudgetError`). The repr shows the
    URL with its password blotted out.

    Attributes:
        requests: How many requests, an int >= 1 (Fathom allows 2,000).
        per_seconds: In how many seconds (default 3,600: an hour).
        redis_url: Where to keep the budget shared: a ``redis://``, ``rediss://``
            or ``unix://`` URL (default None: in this process only).
        key: The budget's name in Redis, shared by every client giving it
            whatever its token: 1 to 200 letters, digits or ``. _ : -``
            (default None: a one-way hash of the token). Needs ``redis_url``.
        on_redis_error: What a call does when Redis cannot be reached, does
            not answer in time, or answers an error: ``"fallback"`` (default:
            keep the budget in this process, log one warning, and ask Redis
            again 5 seconds later) or ``"raise"``
            (:class:`~fathom_events.SharedBudgetError`, nothing sent).
    """

    requests: int = attrs.field(validator=as_validator(check_int_at_least))
    per_seconds: float = attrs.field(default=3600.0)
    redis_url: str | None = attrs.field(
        default=None, kw_only=True, validator=as_validator(check_redis_url), repr=_shown_url
    )
    key: str | None = attrs.field(
        default=None, kw_only=True, validator=as_validator(_check_budget_key)
    )
    on_redis_error: Literal["fallback", "raise"] = attrs.field(
        default="fallback", kw_only=True, validator=as_validator(_check_on_redis_error)
    )

    @per_seconds.validator
    def _check_period(self, attribute: attrs.Attribute[float], value: float) -> None:
        if check_seconds_or_none(attribute.name, value) is None:
            raise InvalidRequestError(attribute.name, "must be a number of seconds, not None")

    @key.validator
    def _key_needs_redis(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and self.redis_url is None:
            raise InvalidRequestError(
                attribute.name,
                "names a budget kept in Redis: give redis_url too (or leave key out)",
            )


class WaitTooLong(Exception):  # noqa: N818 - internal signal, turned into a FathomError
    """A wait for the limits would pass the call's deadline or its longest allowed cool-down."""

    def __init__(self, seconds: float, message: str, *, cool_down: bool = False) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.cool_down = cool_down


#: Who is told of each wait a limiter makes for the attempt the running task is making:
#: set by :meth:`Limits.run` while somebody watches the call (a context variable, as
#: ``_sends`` uses, so that a limiter needs to know nothing of who watches).
_TELL_WAIT: contextvars.ContextVar[Callable[[WaitReason, float], None] | None] = (
    contextvars.ContextVar("fathom_events_tell_wait", default=None)
)


async def sleep_told(sleep: Sleep, clock: Clock, reason: WaitReason, seconds: float) -> None:
    """``await sleep(seconds)``, waiting for ``reason``: how long it took is told to the call.

    A limiter sleeps through this so that a watched call reports the wait
    (``on_event``'s :class:`Waited`, an OpenTelemetry span event) with its reason:
    ``"cool_down"`` or ``"rate_limit"``. A wait slept any other way goes untold.
    """
    tell = _TELL_WAIT.get()
    if tell is None:
        await sleep(seconds)
        return
    began = clock()
    await sleep(seconds)
    tell(reason, clock() - began)


def refuse_past_deadline(wait: float, deadline: float | None, now: float, what: str) -> None:
    """Raise :class:`WaitTooLong` if waiting ``wait`` seconds from ``now`` passes ``deadline``."""
    if deadline is not None and wait > 0 and now + wait > deadline:
        raise WaitTooLong(wait, f"waiting {wait:.1f}s for {what} would pass the deadline")


def refuse_long_cool_down(
    wait: float, deadline: float | None, max_cool_down: float, now: float
) -> None:
    """Raise :class:`WaitTooLong` if a cool-down ``wait`` seconds long may not be waited out.

    Longer than ``max_cool_down``: at once, with ``cool_down=True``; past
    ``deadline``: as any wait would be.
    """
    if wait > max_cool_down:
        raise WaitTooLong(wait, "the client is cooling down after a 429", cool_down=True)
    refuse_past_deadline(wait, deadline, now, "the client's cool-down after a 429")


class RateLimiter(Protocol):
    """What :class:`Limits` asks of a rate limiter: turns, their end, and the cool-down.

    Times are on the client's injected clock (``clock`` / ``sleep``), so tests
    never wait. ``Limits`` asks for one turn per request, once the request
    holds a place under the in-flight cap, and always says when the turn's
    request has finished (in a ``finally``, perhaps while being cancelled: a
    limiter that does I/O there shields it). Its waits go through
    :func:`sleep_told`, each with what it waits for.
    """

    async def wait_for_turn(
        self, deadline: float | None, max_cool_down: float, longest_attempt: float | None
    ) -> object:
        """Return once a request may be sent: a turn, given back to :meth:`finished`.

        First wait out any cool-down: raise :class:`WaitTooLong` with
        ``cool_down=True`` at once if it lasts longer than ``max_cool_down``.
        Raise :class:`WaitTooLong` rather than wait past ``deadline`` (a time
        on the clock; ``None``: none). ``longest_attempt`` is the most seconds
        the request may then take (its timeout; ``None``: no limit), for a
        limiter that must outlive a process killed mid-request. A cancelled
        wait must leave no turn taken.
        """
        ...

    async def finished(self, turn: object) -> None:
        """The request sent in ``turn`` has its answer, or failed: its window may start to end."""
        ...

    async def cool_down(self, seconds: float) -> None:
        """Hold every request back ``seconds`` from now (a longer cool-down already set stays)."""
        ...


class InProcessRateLimiter:
    """A :class:`RateLimiter` for the calls of one process: a window of N places and a cool-down.

    ``RateLimit(N, S)`` is kept literally: a request holds one of ``N``
    places from when it is sent until ``S`` seconds after its answer (or
    failure) arrived, so no window of ``S`` seconds, as the server sees it,
    holds more than ``N`` requests, whether the server counts in a sliding
    window or in a fixed one opened by its first request (Laravel's throttle,
    which Fathom's API uses). Bursts of up to ``N`` go at once; the next
    burst goes ``S`` seconds after the answers. All on the injected clock.
    With no ``rate_limit``, it keeps only the cool-down.
    """

    def __init__(self, rate_limit: RateLimit | None, *, clock: Clock, sleep: Sleep) -> None:
        self.rate_limit = rate_limit
        self.clock = clock
        self.sleep = sleep
        # Guards the places and the cool-down: calls may run in several threads.
        self._lock = threading.Lock()
        self._cool_until = 0.0
        self._sent = 0  # places held by requests not yet finished
        self._frees: collections.deque[float] = collections.deque()  # when the others free up

    async def wait_for_turn(
        self,
        deadline: float | None,
        max_cool_down: float,
        longest_attempt: float | None,  # noqa: ARG002 - a process's places die with it
    ) -> bool:
        """Wait out the cool-down, then for a place in the window (see :class:`RateLimiter`)."""
        while True:
            now = self.clock()
            wait = self._cool_until - now
            if wait > 0:
                refuse_long_cool_down(wait, deadline, max_cool_down, now)
                await sleep_told(self.sleep, self.clock, "cool_down", wait)
                continue
            if self.rate_limit is None:
                return False
            with self._lock:
                frees = self._frees
                while frees and frees[0] <= now:
                    frees.popleft()
                if self._sent + len(frees) < self.rate_limit.requests:
                    self._sent += 1
                    return True
                # With every place in flight, none frees sooner than S from now.
                wait = frees[0] - now if frees else self.rate_limit.per_seconds
            refuse_past_deadline(wait, deadline, now, "the rate limit")
            await sleep_told(self.sleep, self.clock, "rate_limit", wait)

    async def finished(self, turn: object) -> None:
        """The request's place frees ``per_seconds`` from now."""
        if turn and self.rate_limit is not None:
            with self._lock:
                self._sent -= 1
                self._frees.append(self.clock() + self.rate_limit.per_seconds)

    async def cool_down(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now."""
        until = self.clock() + seconds
        with self._lock:  # calls in other threads' loops may cool down at the same moment
            self._cool_until = max(self._cool_until, until)

    def cool_down_left(self) -> float:
        """Seconds left of the cool-down (0 when there is none)."""
        return max(0.0, self._cool_until - self.clock())


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

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        max_cool_down: float = math.inf,
        longest_attempt: float | None = None,
        watch: CallWatch | None = None,
    ) -> T:
        """Run one attempt when a free slot, the cool-down and the rate limit allow.

        Raises :class:`WaitTooLong` instead of waiting past ``deadline`` (on
        the limits' clock) or a cool-down longer than ``max_cool_down``.
        ``longest_attempt`` is the attempt's timeout, for the limiter. A
        ``watch`` is told of each wait, measured on the clock.
        """
        in_flight = self._in_flight
        limiter = self.limiter
        if not in_flight.try_take():
            if watch is None:
                await in_flight.take()
            else:
                queued = self.clock()
                await in_flight.take()
                watch.waited("in_flight", self.clock() - queued)
        try:
            if watch is None:
                turn = await limiter.wait_for_turn(deadline, max_cool_down, longest_attempt)
            else:  # each wait the limiter makes is told to the watch (see sleep_told)
                told = _TELL_WAIT.set(watch.waited)
                try:
                    turn = await limiter.wait_for_turn(deadline, max_cool_down, longest_attempt)
                finally:
                    _TELL_WAIT.reset(told)
            try:
                with self._lock:
                    self.requests_sent += 1
                note_send()
                return await attempt()
            finally:
                await limiter.finished(turn)
        finally:
            in_flight.give_back()

    async def aclose(self) -> None:
        """Let go of what the limiter holds, if it holds anything (a shared one, connections).

        A limiter with an ``async aclose()`` has it awaited here, when the client closes.
        """
        close = getattr(self.limiter, "aclose", None)
        if close is not None:
            await close()

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
