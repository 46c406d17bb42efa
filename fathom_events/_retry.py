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
``Retry-After`` starts for everybody, whichever event loop or thread they run in.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ._protocol import MAX_RETRY_AFTER, Lenient, Operation, Request, finite_number, shown
from ._sends import note_send
from ._slots import Slots
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    FathomError,
    InvalidRequestError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)

if TYPE_CHECKING:
    from ._http._contract import Timeouts
    from ._http._sender import Sender

__all__ = ["Gate", "RateLimit", "RetryPolicy", "retry_delay"]

logger = logging.getLogger("fathom_events")
T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float | None) -> None:
    if value is None:
        return
    number = finite_number(value)
    if number is None or number < 0:
        raise InvalidRequestError(
            attribute.name, f"must be a finite number >= 0, got {shown(value)}"
        )


def _positive_or_none(_: object, attribute: attrs.Attribute[float], value: float | None) -> None:
    if value is None:
        return
    number = finite_number(value)
    if number is None or number <= 0:
        raise InvalidRequestError(
            attribute.name, f"must be a finite number of seconds > 0, or None; got {shown(value)}"
        )


def _strict_bool(_: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if type(value) is not bool:
        raise InvalidRequestError(attribute.name, f"must be True or False, got {shown(value)}")


def _max_retries(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise InvalidRequestError(attribute.name, f"must be an int >= 0, got {shown(value)}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    number = finite_number(value)
    if number is None or not 0 <= number <= 1:
        raise InvalidRequestError(attribute.name, f"must be between 0 and 1, got {shown(value)}")


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
    deadline: float | None = attrs.field(default=300.0, validator=_positive_or_none)
    retry_ambiguous_creates: bool = attrs.field(default=False, validator=_strict_bool)


def retry_delay(policy: RetryPolicy, retry_number: int, draw: Callable[[], float]) -> float:
    """The backoff before retry ``retry_number`` (1-based); ``draw`` gives a float in [0, 1)."""
    delay = min(policy.backoff_cap, policy.backoff_base * 2 ** (retry_number - 1))
    return float(delay * (1 - policy.jitter * draw()))


@attrs.frozen
class Verdict:
    """What one failed attempt means; the caller acts on it, the error is left as it is.

    ``retry``: why the request may be sent again (``None``: raise the error).
    ``may_have_taken_effect``: the attempt reached the server and its outcome
    is unknown (or, for a create answered 2xx, it certainly took effect).
    """

    retry: str | None
    may_have_taken_effect: bool


_GIVE_UP = Verdict(None, may_have_taken_effect=False)


def retry_reason(error: FathomError, operation: Operation, policy: RetryPolicy) -> Verdict:
    """Judge a failed attempt: may it be sent again (and why), and may it have taken effect."""
    ambiguous: str | None = None
    if isinstance(error, RateLimitError):
        return Verdict("429 rate or concurrency limit", may_have_taken_effect=False)
    if isinstance(error, ServerError):
        if error.status == 503:  # refused, not processed
            return Verdict("503 service unavailable", may_have_taken_effect=False)
        ambiguous = f"{error.status} server error"
    elif isinstance(error, APIConnectionError):
        if error.tls_failure:
            return _GIVE_UP
        if not error.request_sent:
            return Verdict(f"request not sent: {error.message}", may_have_taken_effect=False)
        ambiguous = error.message
    elif isinstance(error, ResponseDecodeError):
        # A 2xx whose body we could not (or would not, too large) read: a create did
        # take effect. An error answer too large to read says nothing of the kind.
        created = operation is Operation.CREATE and 200 <= error.status < 300
        return Verdict(None, may_have_taken_effect=created)
    if ambiguous is None:
        return _GIVE_UP
    if operation is Operation.CREATE and not policy.retry_ambiguous_creates:
        return Verdict(None, may_have_taken_effect=True)
    return Verdict(ambiguous, may_have_taken_effect=True)


@attrs.frozen
class RateLimit:
    """At most ``requests`` requests per ``per_seconds``, e.g. ``RateLimit(2000, 3600)``."""

    requests: int = attrs.field()
    per_seconds: float = attrs.field(default=3600.0)

    @requests.validator
    def _check_requests(self, attribute: attrs.Attribute[int], value: int) -> None:
        if type(value) is not int or value < 1:
            raise InvalidRequestError(attribute.name, f"must be an int >= 1, got {shown(value)}")

    @per_seconds.validator
    def _check_period(self, attribute: attrs.Attribute[float], value: float) -> None:
        _positive_or_none(self, attribute, value)
        if value is None:
            raise InvalidRequestError(attribute.name, "must be a number of seconds, not None")


class Gate:
    """What every call of one client shares: in-flight cap, rate limit, cool-down.

    The rate limit is a generic cell-rate algorithm (a leaky bucket kept as
    one timestamp) on the injected clock: requests are spaced
    ``per_seconds / requests`` apart, with bursts of up to ``requests``.
    aiolimiter would do the same but reads the event loop's clock and sleeps
    on its timers, which would make the limit untestable without real waits.
    Its settings come checked, from the client's ``ClientOptions``.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        rate_limit: RateLimit | None,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.rate_limit = rate_limit
        self.clock = clock
        self.sleep = sleep
        self._slots = Slots(max_in_flight)
        # Guards the rate limit's schedule and the counters: calls may run in several threads.
        self._lock = threading.Lock()
        self._cool_until = 0.0
        self._theoretical_arrival = 0.0
        self.requests_sent = 0
        self.retries = 0

    def cool_down(self, seconds: float) -> None:
        """Hold every call of this client back for ``seconds`` from now (at most an hour).

        The cap (:data:`~fathom_events._protocol.MAX_RETRY_AFTER`) is what keeps a
        bad header from holding the client back for good.
        """
        until = self.clock() + min(seconds, MAX_RETRY_AFTER)
        with self._lock:  # calls in other threads' loops may cool down at the same moment
            self._cool_until = max(self._cool_until, until)

    async def _wait_for_turn(self, deadline: float | None, max_cool_down: float) -> None:
        while (wait := self._cool_until - self.clock()) > 0:
            if wait > max_cool_down:
                raise WaitTooLong(wait, "the client is cooling down after a 429", cool_down=True)
            self._check_deadline(wait, deadline, "the client's cool-down after a 429")
            await self.sleep(wait)
        if self.rate_limit is not None:
            interval = self.rate_limit.per_seconds / self.rate_limit.requests
            burst = self.rate_limit.per_seconds - interval
            with self._lock:
                now = self.clock()
                arrival = max(self._theoretical_arrival, now)
                wait = arrival - burst - now
                self._check_deadline(wait, deadline, "the rate limit")
                self._theoretical_arrival = arrival + interval
            if wait > 0:
                try:
                    await self.sleep(wait)
                except BaseException:
                    with self._lock:
                        self._theoretical_arrival -= interval  # give the unused turn back
                    raise

    def _check_deadline(self, wait: float, deadline: float | None, what: str) -> None:
        if deadline is not None and wait > 0 and self.clock() + wait > deadline:
            raise WaitTooLong(wait, f"waiting {wait:.1f}s for {what} would pass the deadline")

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        max_cool_down: float = math.inf,
    ) -> T:
        """Run one attempt when the cool-down, the rate limit and a free slot allow.

        Raises :class:`WaitTooLong` instead of waiting past ``deadline`` (on
        the gate's clock) or a cool-down longer than ``max_cool_down``.
        """
        slots = self._slots
        if not slots.try_take():
            await slots.take()
        try:
            if self.rate_limit is not None or self._cool_until > self.clock():
                await self._wait_for_turn(deadline, max_cool_down)
            with self._lock:
                self.requests_sent += 1
            note_send()
            return await attempt()
        finally:
            slots.give_back()

    def count_retry(self) -> None:
        """Count one more retry (calls in several threads may count at once)."""
        with self._lock:
            self.retries += 1


class WaitTooLong(Exception):  # noqa: N818 - internal signal, turned into a FathomError
    """A wait in the gate would pass the call's deadline or its longest allowed cool-down."""

    def __init__(self, seconds: float, message: str, *, cool_down: bool = False) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.cool_down = cool_down


async def call_with_retries(
    sender: Sender,
    request: Request,
    into: type[T] | Lenient[T],
    *,
    policy: RetryPolicy,
    gate: Gate,
    timeouts: Timeouts,
    draw: Callable[[], float] = random.random,
) -> T:
    """Send ``request`` through ``sender`` under the gate, retrying by the rules above.

    Each attempt is the sender's one step (send, check the status, read the
    answer as ``into``), with the time left before the policy's deadline
    measured once the gate lets it through: the gate's waits count. A 429 (or
    503) with ``Retry-After`` starts the client's shared cool-down whether or
    not this call retries. When an earlier attempt may have taken effect, the
    final error's ``may_have_been_applied`` says so.
    """
    operation, method = request.operation, request.method
    url = sender.url(request)
    clock = gate.clock
    deadline = None if policy.deadline is None else clock() + policy.deadline
    attempts = 0
    landed = False  # an earlier attempt may have taken effect
    send_once = functools.partial(
        sender.call, request, into, timeouts, url, deadline=deadline, clock=clock
    )

    while True:
        try:
            attempts += 1
            return await gate.run(
                send_once, deadline=deadline, max_cool_down=policy.max_retry_after
            )
        except WaitTooLong as too_long:  # noqa: PERF203 - an attempt costs far more than a try
            raise _wait_error(too_long, method, url, attempts - 1, landed) from None
        except FathomError as error:
            error.attempts = attempts
            error.may_have_been_applied = error.may_have_been_applied or landed
            retry_after = error.retry_after if isinstance(error, APIStatusError) else None
            refused = isinstance(error, RateLimitError) or getattr(error, "status", 0) == 503
            if retry_after is not None and refused:
                gate.cool_down(retry_after)
            verdict = retry_reason(error, operation, policy)
            wait = None
            if verdict.retry is not None and attempts <= policy.max_retries:
                wait = retry_delay(policy, attempts, draw) if retry_after is None else retry_after
                beyond = retry_after is not None and retry_after > policy.max_retry_after
                if beyond or (deadline is not None and clock() + wait >= deadline):
                    wait = None
            if wait is None:
                # This attempt is the last: its own doubt goes on the error it raises (a
                # retried attempt's doubt is carried by ``landed`` instead).
                error.may_have_been_applied |= verdict.may_have_taken_effect
                raise
            logger.warning(
                "retrying %s %s (attempt %d of %d) in %.2fs: %s",
                method,
                url,
                attempts + 1,
                policy.max_retries + 1,
                wait,
                verdict.retry,
            )
            landed = landed or verdict.may_have_taken_effect
            gate.count_retry()
            await gate.sleep(wait)


def _wait_error(
    wait: WaitTooLong, method: str, url: str, attempts: int, landed: bool
) -> FathomError:
    error: FathomError
    if wait.cool_down:
        error = RateLimitError(
            f"the API asked this client to wait {wait.seconds:.0f}s (Retry-After on another"
            " call), longer than the policy's max_retry_after",
            status=429,
            body=None,
            headers={},
            method=method,
            url=url,
            retry_after=wait.seconds,
        )
    else:
        error = APITimeoutError(f"{wait} (RetryPolicy.deadline)", method=method, url=url)
    error.attempts = attempts
    error.may_have_been_applied = landed
    return error
