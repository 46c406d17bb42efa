"""When to send a request again, and how to share the API's limits between calls.

Fathom has no idempotency keys, so the rules depend on what a request does:

* 429 and 503 were refused, not processed: every request is retried.
* 500, 502, 504 and other 5xx, timeouts, resets and dropped connections are
  ambiguous: list, get, update and delete are retried (repeating them gives
  the same end state); a create is not, unless the caller opted in, because it
  may have created the event already. The error says so
  (``may_have_been_applied``).
* A connection that was never set up (refused, connect timeout) is retried
  for every request, create included: nothing reached the server.
* Other 4xx, 410, TLS failures and unreadable answers are never retried.

One :class:`Gate` per client holds what all its calls share: the cap on
requests in flight, the optional rate limit and the cool-down that a 429's
``Retry-After`` starts for everybody.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from ._protocol import Operation
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    FathomError,
    InvalidRequestError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ServerError,
)

__all__ = ["Gate", "RateLimit", "RetryPolicy", "retry_delay"]

logger = logging.getLogger("fathom_events")
T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise InvalidRequestError(attribute.name, f"must be a number >= 0, got {value!r}")


def _max_retries(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise InvalidRequestError(attribute.name, f"must be an int >= 0, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 1:
        raise InvalidRequestError(attribute.name, f"must be between 0 and 1, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How a client retries; frozen, so one policy can be shared safely.

    * ``max_retries``: retries after the first attempt (0 turns retrying off).
    * ``backoff_base`` / ``backoff_cap``: the n-th retry waits
      ``min(cap, base * 2**(n-1))`` seconds, less up to ``jitter`` of it
      (a fraction, drawn at random), so many clients do not retry in step.
    * ``max_retry_after``: the longest ``Retry-After`` worth waiting for; a
      longer one raises :class:`RateLimitError` at once with ``.retry_after``.
    * ``deadline``: seconds one call may take across all its attempts and
      waits (``None``: no overall limit beyond the attempts' own timeouts).
    * ``retry_ambiguous_creates``: resend a create after an answer that
      leaves its effect unknown (5xx other than 503, timeout, dropped
      connection). Off by default: it can create an event twice.
    """

    max_retries: int = attrs.field(default=3, validator=_max_retries)
    backoff_base: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_cap: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.5, validator=_fraction)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=300.0, validator=_non_negative)
    retry_ambiguous_creates: bool = False


def retry_delay(policy: RetryPolicy, retry_number: int, draw: Callable[[], float]) -> float:
    """The backoff before retry ``retry_number`` (1-based); ``draw`` gives a float in [0, 1)."""
    delay = min(policy.backoff_cap, policy.backoff_base * 2 ** (retry_number - 1))
    return float(delay * (1 - policy.jitter * draw()))


def retry_reason(error: FathomError, operation: Operation, policy: RetryPolicy) -> str | None:
    """Why ``error`` may be retried, or None; marks create failures that may have taken effect."""
    ambiguous: str | None = None
    if isinstance(error, RateLimitError):
        return "429 rate or concurrency limit"
    if isinstance(error, ServerError):
        if error.status == 503:  # refused, not processed
            return "503 service unavailable"
        ambiguous = f"{error.status} server error"
    elif isinstance(error, APIConnectionError):
        if error.tls_failure:
            return None
        if not error.request_sent:
            return f"request not sent: {error.message}"
        ambiguous = error.message
    elif isinstance(error, ResponseDecodeError) and not isinstance(error, ResponseTooLargeError):
        # A 2xx whose body we could not read: a create did take effect.
        error.may_have_been_applied = operation is Operation.CREATE
        return None
    if ambiguous is None:
        return None
    if operation is Operation.CREATE and not policy.retry_ambiguous_creates:
        error.may_have_been_applied = True
        return None
    return ambiguous


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests per ``per_seconds``, e.g. ``RateLimit(2000, 3600)``."""

    requests: int = attrs.field()
    per_seconds: float = attrs.field(default=3600.0)

    @requests.validator
    def _check_requests(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 1:
            raise InvalidRequestError(attribute.name, f"must be an int >= 1, got {value!r}")

    @per_seconds.validator
    def _check_period(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise InvalidRequestError(attribute.name, f"must be > 0, got {value!r}")


class Gate:
    """What every call of one client shares: in-flight cap, rate limit, cool-down.

    The rate limit is a generic cell-rate algorithm (a leaky bucket kept as
    one timestamp) on the injected clock: requests are spaced
    ``per_seconds / requests`` apart, with bursts of up to ``requests``.
    aiolimiter would do the same but reads the event loop's clock and sleeps
    on its timers, which would make the limit untestable without real waits.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        rate_limit: RateLimit | None,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        if type(max_in_flight) is not int or max_in_flight < 1:
            raise InvalidRequestError(
                "max_in_flight", f"must be an int >= 1, got {max_in_flight!r}"
            )
        self.max_in_flight = max_in_flight
        self.rate_limit = rate_limit
        self.clock = clock
        self.sleep = sleep
        self._slots: asyncio.Semaphore | None = None
        self._cool_until = 0.0
        self._theoretical_arrival = 0.0
        self.requests_sent = 0
        self.retries = 0

    def cool_down(self, seconds: float) -> None:
        """Hold every call of this client back for ``seconds`` from now."""
        self._cool_until = max(self._cool_until, self.clock() + seconds)

    async def _wait_for_turn(self) -> None:
        while (wait := self._cool_until - self.clock()) > 0:
            await self.sleep(wait)
        if self.rate_limit is not None:
            interval = self.rate_limit.per_seconds / self.rate_limit.requests
            burst = self.rate_limit.per_seconds - interval
            now = self.clock()
            arrival = max(self._theoretical_arrival, now)
            wait = arrival - burst - now
            self._theoretical_arrival = arrival + interval
            if wait > 0:
                await self.sleep(wait)

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run one attempt when the cool-down, the rate limit and a free slot allow."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        async with self._slots:
            await self._wait_for_turn()
            self.requests_sent += 1
            return await attempt()


async def call_with_retries(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    operation: Operation,
    describe: str,
    policy: RetryPolicy,
    gate: Gate,
    draw: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt(time_left)`` under the gate, retrying by the rules above."""
    clock = gate.clock
    started = clock()
    attempts = 0
    while True:
        time_left = None if policy.deadline is None else policy.deadline - (clock() - started)
        try:
            attempts += 1
            return await gate.run(functools.partial(attempt, time_left))
        except FathomError as error:
            error.attempts = attempts
            reason = retry_reason(error, operation, policy)
            if reason is None or attempts > policy.max_retries:
                raise
            wait = retry_delay(policy, attempts, draw)
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            if retry_after is not None:
                if retry_after > policy.max_retry_after:
                    raise
                wait = retry_after
                gate.cool_down(retry_after)
            if policy.deadline is not None and clock() - started + wait >= policy.deadline:
                raise
            logger.warning(
                "retrying %s (attempt %d of %d) in %.2fs: %s",
                describe,
                attempts + 1,
                policy.max_retries + 1,
                wait,
                reason,
            )
            gate.retries += 1
            await gate.sleep(wait)
