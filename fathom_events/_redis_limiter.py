"""The rate budget kept in Redis, shared by every process and machine that uses one token.

:class:`RedisRateLimiter` keeps :class:`~._limits.InProcessRateLimiter`'s promise,
"never more than N requests in any S-second window, each counted from when it
is sent until S seconds after its answer or failure", for every process that
uses the same token (or the same ``key=``), wherever it runs. It is what
``RateLimit(N, S, redis_url=...)`` makes a client use.

What is in Redis, under ``fathom-events:budget:{<name>}:`` where ``<name>`` is
``token:`` and the SHA-256 of a fixed label and the token (a one-way hash:
nothing secret is written), or ``key:`` and the ``key=`` given:

* ``...:turns``, a sorted set of the places taken: each member a random turn
  id, its score the time its place frees, in milliseconds on Redis's clock.
  A turn is leased until ``longest_attempt + S`` after it was taken (the
  attempt's timeout, or :data:`LEASE_WITHOUT_TIMEOUT` when it has none), so
  a process killed mid-request frees its place by itself; its answer moves
  the end to ``S`` after the answer.
* ``...:cool``, while a cool-down lasts: the time it ends (the latest of all
  the ``Retry-After`` that any process heard of).

Each key expires when its last place frees or its cool-down ends. Each step
is one Lua script call (EVALSHA, or EVAL when Redis has not seen the script),
run atomically on Redis's clock (``TIME``), so machines whose clocks differ
agree. A process waits for a place by sleeping (on the client's clock) for as
long as the script says, then asks again.

Redis is never waited on for long: each call is bounded by the time left to
the call's deadline, and by :data:`OPERATION_TIMEOUT`. When Redis cannot be
reached, does not answer in time, or answers an error, ``on_redis_error``
decides: ``"fallback"`` (the default) keeps the budget in this process (an
:class:`~._limits.InProcessRateLimiter` of the same ``RateLimit``), logs one
WARNING on the ``fathom_events`` logger for the outage, and asks Redis again
:data:`RETRY_REDIS_AFTER` seconds later (on the client's clock); ``"raise"``
raises :class:`~fathom_events.SharedBudgetError` and sends nothing. While it
falls back, each process counts only its own requests.

redis-py's asyncio client belongs to the event loop it runs in, so the
limiter keeps one per loop (:class:`~._http._sessions.PerLoop`), closed when
the client closes or the loop ends. redis-py is imported only here, and this
module only when a ``redis_url`` is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import unquote

import anyio
import attrs

from ._checks import one_line, shown
from ._http._secrecy import REDACTED, HoldsToken, raise_alone, words_of
from ._http._sessions import PerLoop, close_socket
from ._limits import (
    Clock,
    InProcessRateLimiter,
    RateLimit,
    Sleep,
    WaitTooLong,
    blot_password,
    refuse_long_cool_down,
    refuse_past_deadline,
    sleep_told,
    url_passwords,
)
from .exceptions import FathomError, InvalidRequestError, SharedBudgetError

if TYPE_CHECKING:
    from ._observe._records import WaitReason

try:  # the redis extra; this module is imported only for a budget kept in Redis
    import redis.asyncio
    from redis.asyncio.connection import parse_url
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import NoScriptError
except ImportError:  # pragma: no cover - tested in a process without redis-py
    HAVE_REDIS = False
else:
    HAVE_REDIS = True

__all__ = [
    "KEY_PREFIX",
    "LEASE_WITHOUT_TIMEOUT",
    "OPERATION_TIMEOUT",
    "RETRY_REDIS_AFTER",
    "RedisRateLimiter",
    "budget_name",
]

logger = logging.getLogger("fathom_events")

#: Seconds one Redis call may take when the call's deadline is further away (or none).
OPERATION_TIMEOUT = 3.0
#: Seconds, on the client's clock, between a failed Redis call and the next try.
RETRY_REDIS_AFTER = 5.0
#: Seconds a place is leased for an attempt without a timeout: the default
#: ``RetryPolicy.deadline``, the longest a call takes by default.
LEASE_WITHOUT_TIMEOUT = 300.0
KEY_PREFIX = "fathom-events:budget:"
# Hashed with the token, so that its key is no plain SHA-256 of it found elsewhere.
_TOKEN_LABEL = b"fathom-events rate budget v1\0"
_INSTALL = "pip install 'fathom-events[redis]'"

# Every script starts by reading "now": ARGV's last one if a test gives it, else Redis's TIME.
_NOW = """
local now = tonumber(ARGV[#ARGV])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
"""
# KEYS: turns, cool-down. ARGV: turn id, places (N), lease (ms), window (S, ms), now.
# Gives {0, 0} for a turn taken, {1, ms} to wait out a cool-down, {2, ms} to wait for a place.
_TAKE = (
    _NOW
    + """
local cool = tonumber(redis.call('GET', KEYS[2]))
if cool and cool > now then
  return {1, cool - now}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
  redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last) - now, 1))
  return {0, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {2, math.min(tonumber(first) - now, tonumber(ARGV[4]))}
"""
)
# KEYS: turns. ARGV: turn id, window (S, ms), now. The turn's place frees S from now;
# one no longer there (its lease ran out, or given back) is not brought back.
_FINISH = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
if last then
  redis.call('PEXPIRE', KEYS[1], math.max(tonumber(last) - now, 1))
end
return 0
"""
)
# KEYS: turns. ARGV: turn id, now. A turn given back unused (its wait was cancelled).
_GIVE_BACK = """
redis.call('ZREM', KEYS[1], ARGV[1])
return 0
"""
# KEYS: cool-down. ARGV: length (ms, > 0), now. The later end of the two stays.
_COOL_DOWN = (
    _NOW
    + """
local ends = now + tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1]))
if not old or ends > old then
  redis.call('SET', KEYS[1], ends, 'PX', tonumber(ARGV[1]))
end
return 0
"""
)


class _Commands(Protocol):
    """What the limiter asks of a redis-py asyncio client."""

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str) -> Any: ...

    async def eval(self, script: str, numkeys: int, *keys_and_args: str) -> Any: ...

    async def aclose(self) -> None: ...


@attrs.frozen
class _Script:
    """A Lua script, sent by its SHA-1 (EVALSHA) once Redis has seen it whole (EVAL)."""

    text: str
    sha: str = attrs.field(init=False)

    @sha.default
    def _sha(self) -> str:
        return hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()

    async def run(self, client: _Commands, keys: list[str], args: list[str]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # the server has not seen it yet (or was restarted)
            return await client.eval(self.text, len(keys), *keys, *args)


_TAKE_SCRIPT = _Script(_TAKE)
_FINISH_SCRIPT = _Script(_FINISH)
_GIVE_BACK_SCRIPT = _Script(_GIVE_BACK)
_COOL_DOWN_SCRIPT = _Script(_COOL_DOWN)
_TAKEN, _COOLING, _WAITING = 0, 1, 2


def _read_take(reply: object) -> tuple[int, int] | _Trouble:
    """The take script's ``[verdict, milliseconds]``, or the trouble of a reply of another shape.

    Redis is a server too: whatever it (or what stands in front of it) answers,
    only a verdict the script gives and a wait of 0 ms or more come out.
    """
    if isinstance(reply, _Trouble):
        return reply
    if isinstance(reply, (list, tuple)) and len(reply) == 2:
        verdict, wait_ms = reply
        if (
            type(verdict) is int
            and verdict in (_TAKEN, _COOLING, _WAITING)
            and type(wait_ms) is int
            and wait_ms >= 0
        ):
            return verdict, wait_ms
    return _Trouble(f"an answer of the wrong shape from the take script: {shown(reply)}")


@attrs.frozen
class _Trouble:
    """Why a Redis call failed, in words that hold no password."""

    what: str


@attrs.frozen
class _Turn:
    """A turn, and which budget gave it: Redis (``redis_id``) or this process's (``own``)."""

    redis_id: str | None
    own: object = None


def budget_name(rate_limit: RateLimit, token: HoldsToken) -> str:
    """The budget's name in Redis: ``key:`` and the ``key=`` given, else ``token:`` and a hash.

    The hash is the SHA-256 (hex) of a fixed label and the token: the same for
    every client of one token, different for another, and the token cannot
    be read back from it.
    """
    if rate_limit.key is not None:
        return f"key:{rate_limit.key}"
    return "token:" + hashlib.sha256(_TOKEN_LABEL + token.reveal().encode()).hexdigest()


#: A password shorter than this is not looked for in a Redis error's words: so short a
#: string is ordinary text ("ok" in "Broken pipe"), and such errors do not quote passwords.
_MIN_HIDDEN = 4


def _hidden_in(url: str) -> Callable[[str], str]:
    """A function blotting the password of ``url`` out of any text (a redis-py error's words).

    The password is looked for as in the URL (userinfo, or ``?password=``) and
    percent-decoded, as redis-py sends it.
    """
    found = url_passwords(url)
    found |= {unquote(piece) for piece in found}
    pieces = sorted((piece for piece in found if len(piece) >= _MIN_HIDDEN), key=len, reverse=True)

    def hide(text: str) -> str:
        for piece in pieces:
            text = text.replace(piece, REDACTED)
        return text

    return hide


class RedisRateLimiter:
    """A :class:`~._limits.RateLimiter` whose budget, and cool-down, live in Redis.

    The promise is :class:`~._limits.InProcessRateLimiter`'s, kept across every
    process sharing the budget; the module's docstring says what is stored
    and what happens when Redis fails. ``token`` names the budget (through a
    one-way hash) unless the ``RateLimit`` has a ``key``. ``clock`` and
    ``sleep`` are the client's: waits, the deadline and the pause before
    Redis is tried again are on them. ``now_ms``, for tests only, replaces
    Redis's clock in the scripts (milliseconds); ``operation_timeout`` bounds
    each Redis call; ``retry_redis_after`` is the pause.
    """

    def __init__(
        self,
        rate_limit: RateLimit,
        *,
        token: HoldsToken,
        clock: Clock,
        sleep: Sleep,
        now_ms: Callable[[], int] | None = None,
        operation_timeout: float = OPERATION_TIMEOUT,
        retry_redis_after: float = RETRY_REDIS_AFTER,
    ) -> None:
        url = rate_limit.redis_url
        if url is None:
            raise InvalidRequestError("redis_url", "a budget kept in Redis needs a redis_url")
        if not HAVE_REDIS:
            raise InvalidRequestError(
                "redis_url",
                f"a budget kept in Redis needs redis-py, which is not installed: {_INSTALL}",
            )
        problem = None
        try:
            parse_url(url)
        except ValueError as error:
            problem = _hidden_in(url)(one_line(str(error)))
        if problem is not None:
            raise InvalidRequestError("redis_url", f"redis-py cannot read it: {problem}")
        self.rate_limit = rate_limit
        self.clock = clock
        self.sleep = sleep
        self.now_ms = now_ms
        self.operation_timeout = operation_timeout
        self.retry_redis_after = retry_redis_after
        self.shown_url = blot_password(url)
        self._url = url
        self._hide = _hidden_in(url)
        name = f"{KEY_PREFIX}{{{budget_name(rate_limit, token)}}}"
        self._turns_key = f"{name}:turns"
        self._cool_key = f"{name}:cool"
        self._window_ms = math.ceil(rate_limit.per_seconds * 1000)
        self._own = InProcessRateLimiter(rate_limit, clock=clock, sleep=sleep)
        self._clients: PerLoop[_Commands] = PerLoop(
            make=self._new_client, close=_close_client, release=_let_go
        )
        self._lock = threading.Lock()  # guards the outage: calls may run in several threads
        self._retry_at: float | None = None  # in an outage: when to ask Redis again
        self._unfinished: set[asyncio.Task[None]] = set()  # Redis calls left running

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.rate_limit!r})"

    # -- the RateLimiter protocol -------------------------------------------------------

    async def wait_for_turn(
        self, deadline: float | None, max_cool_down: float, longest_attempt: float | None
    ) -> _Turn:
        """Wait out any cool-down, then for a place in the shared window (see RateLimiter)."""
        lease = LEASE_WITHOUT_TIMEOUT if longest_attempt is None else longest_attempt
        lease_ms = math.ceil(lease * 1000) + self._window_ms
        while True:
            now = self.clock()
            # Every cool-down this process heard of is kept here too, so that one Redis
            # could not be told of (in an outage) holds this process back all the same.
            wait = self._own.cool_down_left()
            if wait > 0:
                refuse_long_cool_down(wait, deadline, max_cool_down, now)
                await sleep_told(self.sleep, self.clock, "cool_down", wait)
                continue
            retry_at = self._redis_due(now)
            if retry_at is not None:
                turn = await self._own_turn(deadline, max_cool_down, longest_attempt, retry_at)
                if turn is not None:
                    return turn
                continue
            turn_id = secrets.token_hex(16)
            args = [turn_id, str(self.rate_limit.requests), str(lease_ms), str(self._window_ms)]
            try:
                reply = await self._call(
                    _TAKE_SCRIPT, [self._turns_key, self._cool_key], args, deadline
                )
            except asyncio.CancelledError:
                # The script may have run: give the turn back, whatever happens to this task.
                self._leave_running(self._give_back(turn_id))
                raise
            read = _read_take(reply)
            if isinstance(read, _Trouble):
                self._failed(read, raising=True)
                continue
            self._redis_works()
            verdict, wait_ms = read
            if verdict == _TAKEN:
                return _Turn(turn_id)
            wait = wait_ms / 1000
            if verdict == _WAITING:  # no place frees later than a window from now
                wait = min(wait, self.rate_limit.per_seconds)
            if verdict == _COOLING:
                refuse_long_cool_down(wait, deadline, max_cool_down, now)
            else:
                refuse_past_deadline(wait, deadline, now, "the shared rate limit")
            reason: WaitReason = "cool_down" if verdict == _COOLING else "rate_limit"
            await sleep_told(self.sleep, self.clock, reason, wait)

    async def finished(self, turn: object) -> None:
        """The turn's place frees ``per_seconds`` from now, in the budget that gave it."""
        if not isinstance(turn, _Turn):
            return
        if turn.redis_id is None:
            await self._own.finished(turn.own)
            return
        # Told even if the call is being cancelled: a finish left out holds the place
        # until its lease ends.
        await asyncio.shield(self._leave_running(self._finish(turn.redis_id)))

    async def cool_down(self, seconds: float) -> None:
        """Hold every process sharing the budget back ``seconds`` from now."""
        await self._own.cool_down(seconds)
        if seconds <= 0 or self._redis_due(self.clock()) is not None:
            return
        args = [str(math.ceil(seconds * 1000))]
        reply = await self._call(_COOL_DOWN_SCRIPT, [self._cool_key], args, None)
        if isinstance(reply, _Trouble):
            self._failed(reply, raising=False)

    async def aclose(self) -> None:
        """Wait (briefly) for the Redis calls left running, then close every loop's client."""
        await self._settle()
        await self._clients.aclose()

    # -- Redis, and what to do when it fails ----------------------------------------------

    def _new_client(self) -> _Commands:
        client = redis.asyncio.Redis.from_url(
            self._url,
            # Each call is bounded by _call. A socket_timeout would make redis-py send under
            # asyncio.wait_for, which before Python 3.12 loses a cancel that arrives as the
            # send completes: the call would go on, and take a turn, although cancelled.
            socket_timeout=None,
            socket_connect_timeout=self.operation_timeout,
            retry=Retry(NoBackoff(), 0),  # no retry hidden inside redis-py: each call's bound holds
        )
        return cast("_Commands", client)

    async def _call(
        self, script: _Script, keys: list[str], args: list[str], deadline: float | None
    ) -> Any:
        """Run ``script`` in this loop's client, within the bounds: its reply, or the trouble."""
        timeout = self.operation_timeout
        if deadline is not None:
            timeout = min(timeout, deadline - self.clock())
            if timeout <= 0:
                raise WaitTooLong(0.0, "the deadline passed before the shared rate limit answered")
        args = [*args, "" if self.now_ms is None else str(self.now_ms())]
        try:
            client = self._clients.get()
            # Not asyncio.wait_for: before Python 3.12 it loses a cancel that arrives as the
            # reply does, and the call would go on (and take a turn) although cancelled.
            with anyio.fail_after(timeout):
                return await script.run(client, keys, args)
        except FathomError:  # the client is closed, or this loop cannot have a client
            raise
        except TimeoutError:
            trouble = _Trouble(f"no answer within {timeout:.1f}s")
        except Exception as error:  # noqa: BLE001 - any failure of Redis or redis-py
            trouble = _Trouble(one_line(self._hide(words_of(error))))
        return trouble

    def _leave_running(self, call: Any) -> asyncio.Task[None]:
        """Run ``call`` as a task kept until it ends, even if whoever awaits it is cancelled."""
        task: asyncio.Task[None] = asyncio.ensure_future(call)
        self._unfinished.add(task)
        task.add_done_callback(self._unfinished.discard)
        return task

    async def _finish(self, turn_id: str) -> None:
        await self._tell(_FINISH_SCRIPT, [turn_id, str(self._window_ms)])

    async def _give_back(self, turn_id: str) -> None:
        await self._tell(_GIVE_BACK_SCRIPT, [turn_id])

    async def _tell(self, script: _Script, args: list[str]) -> None:
        """Run a script about one turn; if it fails, the turn's lease frees its place in time."""
        try:
            reply = await self._call(script, [self._turns_key], args, None)
        except FathomError:  # closed meanwhile: nothing left to tell
            return
        if isinstance(reply, _Trouble):
            self._failed(reply, raising=False)

    async def _settle(self) -> None:
        """Wait for this loop's Redis calls left running (each is bounded)."""
        loop = asyncio.get_running_loop()
        mine = [task for task in list(self._unfinished) if task.get_loop() is loop]
        if mine:
            await asyncio.wait(mine, timeout=self.operation_timeout)

    def _redis_due(self, now: float) -> float | None:
        """None if Redis is to be asked now; in an outage, when to ask it again."""
        if self.rate_limit.on_redis_error == "raise":
            return None
        with self._lock:
            retry_at = self._retry_at
        return None if retry_at is None or now >= retry_at else retry_at

    async def _own_turn(
        self,
        deadline: float | None,
        max_cool_down: float,
        longest_attempt: float | None,
        retry_at: float,
    ) -> _Turn | None:
        """A turn of this process's own budget; None once it is time to ask Redis again."""
        bound = retry_at if deadline is None else min(deadline, retry_at)
        try:
            return _Turn(None, await self._own.wait_for_turn(bound, max_cool_down, longest_attempt))
        except WaitTooLong as too_long:
            now = self.clock()
            if too_long.cool_down or (deadline is not None and now + too_long.seconds > deadline):
                raise
        # The wait would go past the time to ask Redis again: wait until then, and ask.
        await sleep_told(self.sleep, self.clock, "rate_limit", max(0.0, retry_at - self.clock()))
        return None

    def _failed(self, trouble: _Trouble, *, raising: bool) -> None:
        """Redis failed: raise (``on_redis_error="raise"``), or fall back and warn once."""
        what = f"the shared rate budget in Redis ({self.shown_url}) cannot be used: {trouble.what}"
        with self._lock:
            first = self._retry_at is None
            self._retry_at = self.clock() + self.retry_redis_after
        if raising and self.rate_limit.on_redis_error == "raise":
            raise_alone(
                SharedBudgetError(
                    f"{what}; the request was not sent (on_redis_error='raise')",
                    redis_url=self.shown_url,
                )
            )
        if first:
            logger.warning(
                "%s; until it answers, this process keeps the budget (%d per %gs) by itself,"
                " counting only its own requests, and asks Redis again every %gs",
                what,
                self.rate_limit.requests,
                self.rate_limit.per_seconds,
                self.retry_redis_after,
            )

    def _redis_works(self) -> None:
        with self._lock:
            was_down = self._retry_at is not None
            self._retry_at = None
        if was_down:
            logger.info("the shared rate budget in Redis (%s) answers again", self.shown_url)


async def _close_client(client: _Commands) -> None:
    await client.aclose()


def _let_go(client: _Commands) -> None:
    """Release a client whose event loop is closed, without that loop and without a warning."""
    pool = getattr(client, "connection_pool", None)
    connections = [
        *getattr(pool, "_available_connections", ()),
        *getattr(pool, "_in_use_connections", ()),
    ]
    for connection in connections:
        writer = getattr(connection, "_writer", None)
        if writer is not None:
            close_socket(writer.transport)
            connection._writer = connection._reader = None  # noqa: SLF001 - as its disconnect does
