"""When to send a request again, and the loop that sends until the answer is final.

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

Each attempt runs under the client's :class:`~._limits.Limits` (in-flight cap,
rate limit, and the cool-down that a 429's ``Retry-After`` starts for everybody).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ._checks import (
    as_validator,
    check_flag,
    check_fraction,
    check_int_at_least,
    check_non_negative,
    check_seconds_or_none,
)
from ._limits import Limits, WaitTooLong
from ._protocol import Lenient, Operation, Request
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    FathomError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    SharedBudgetError,
)

if TYPE_CHECKING:
    from ._http._contract import Timeouts
    from ._http._sender import Sender
    from ._observe._observer import Observer

__all__ = ["RetryPolicy", "call_with_retries", "retry_delay", "retry_reason"]

logger = logging.getLogger("fathom_events")
T = TypeVar("T")


def _int_from_zero(field: str, value: object) -> int:
    return check_int_at_least(field, value, 0)


@attrs.frozen
class RetryPolicy:
    """How a client retries; frozen, so one policy can be shared safely.

    ``AsyncClient(retry=RetryPolicy(max_retries=5))``; each value is checked
    as the policy is made. The n-th retry waits ``min(backoff_cap,
    backoff_base * 2**(n-1))`` seconds, less up to ``jitter`` of it (drawn at
    random), so many clients do not retry in step.

    Attributes:
        max_retries: Retries after the first attempt (0 turns retrying off).
        backoff_base: The wait before the first retry, in seconds; it doubles
            with each retry.
        backoff_cap: The longest backoff wait, in seconds.
        jitter: The fraction of each wait (0 to 1) that may be taken off at random.
        max_retry_after: The longest ``Retry-After`` worth waiting for, in
            seconds; a longer one raises :class:`RateLimitError` at once with
            ``.retry_after``.
        deadline: Seconds one call may take across all its attempts and waits
            (``None``: no overall limit beyond the attempts' own timeouts).
        retry_ambiguous_creates: Resend a create after an answer that leaves
            its effect unknown (5xx other than 503, timeout, dropped
            connection). Off by default: it can create an event twice.
    """

    max_retries: int = attrs.field(default=3, validator=as_validator(_int_from_zero))
    backoff_base: float = attrs.field(default=0.5, validator=as_validator(check_non_negative))
    backoff_cap: float = attrs.field(default=30.0, validator=as_validator(check_non_negative))
    jitter: float = attrs.field(default=0.5, validator=as_validator(check_fraction))
    max_retry_after: float = attrs.field(default=60.0, validator=as_validator(check_non_negative))
    deadline: float | None = attrs.field(
        default=300.0, validator=as_validator(check_seconds_or_none)
    )
    retry_ambiguous_creates: bool = attrs.field(default=False, validator=as_validator(check_flag))


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


async def call_with_retries(
    sender: Sender,
    request: Request,
    into: type[T] | Lenient[T],
    *,
    policy: RetryPolicy,
    limits: Limits,
    timeouts: Timeouts,
    observer: Observer | None = None,
    draw: Callable[[], float] = random.random,
) -> T:
    """Send ``request`` through ``sender`` under the client's limits, retrying by the rules above.

    Each attempt is the sender's one step (send, check the status, read the
    answer as ``into``), with the time left before the policy's deadline
    measured once the limits let it through: the limits' waits count. A 429 (or
    503) with ``Retry-After`` starts the client's shared cool-down whether or
    not this call retries. When an earlier attempt may have taken effect, the
    final error's ``may_have_been_applied`` says so. The ``observer``, if any,
    is given each step of the call (see ``_observe``).
    """
    operation, method = request.operation, request.method
    url = sender.url(request)
    clock = limits.clock
    deadline = None if policy.deadline is None else clock() + policy.deadline
    attempts = 0
    landed = False  # an earlier attempt may have taken effect
    # Watched from here: nothing between this and the ``try`` below can raise.
    watch = None if observer is None else observer.watch(request, url)
    send_once = functools.partial(
        sender.call, request, into, timeouts, url, deadline=deadline, clock=clock, watch=watch
    )

    try:
        while True:
            try:
                attempts += 1
                result = await limits.run(
                    send_once,
                    deadline=deadline,
                    max_cool_down=policy.max_retry_after,
                    longest_attempt=timeouts.total,
                    watch=watch,
                )
                if watch is not None:
                    watch.finished(None)
                return result  # noqa: TRY300 - the handlers below are for the attempt alone
            except (WaitTooLong, SharedBudgetError) as unsent:  # noqa: PERF203 - an attempt costs far more than a try
                # The limits refused this attempt: it was not sent.
                raise _unsent_error(unsent, method, url, attempts - 1, landed) from None
            except FathomError as error:
                error.attempts = attempts
                error.may_have_been_applied = error.may_have_been_applied or landed
                retry_after = error.retry_after if isinstance(error, APIStatusError) else None
                refused = isinstance(error, RateLimitError) or getattr(error, "status", 0) == 503
                if retry_after is not None and refused:
                    await limits.cool_down(retry_after)
                verdict = retry_reason(error, operation, policy)
                retry = _next_retry(
                    verdict,
                    retry_after,
                    attempts=attempts,
                    policy=policy,
                    deadline=deadline,
                    clock=clock,
                    draw=draw,
                )
                if retry is None:
                    # This attempt is the last: its own doubt goes on the error it raises (a
                    # retried attempt's doubt is carried by ``landed`` instead).
                    error.may_have_been_applied |= verdict.may_have_taken_effect
                    raise
                reason, wait = retry
                logger.warning(
                    "retrying %s %s (attempt %d of %d) in %.2fs: %s",
                    method,
                    url,
                    attempts + 1,
                    policy.max_retries + 1,
                    wait,
                    reason,
                )
                landed = landed or verdict.may_have_taken_effect
                limits.count_retry()
                if watch is not None:
                    watch.retrying(reason, wait)
                await limits.sleep(wait)
    except BaseException as ended:  # the call's end, told to whoever watches; then raised
        if watch is not None:
            watch.finished(ended)
        raise


def _next_retry(
    verdict: Verdict,
    retry_after: float | None,
    *,
    attempts: int,
    policy: RetryPolicy,
    deadline: float | None,
    clock: Callable[[], float],
    draw: Callable[[], float],
) -> tuple[str, float] | None:
    """Why and after how long to send again after ``attempts`` attempts, or None: raise.

    The wait is the answer's ``Retry-After`` if it gave one (None if longer than
    the policy allows), else the backoff; None too if it would pass ``deadline``.
    """
    if verdict.retry is None or attempts > policy.max_retries:
        return None
    wait = retry_delay(policy, attempts, draw) if retry_after is None else retry_after
    beyond = retry_after is not None and retry_after > policy.max_retry_after
    if beyond or (deadline is not None and clock() + wait >= deadline):
        return None
    return verdict.retry, wait


def _unsent_error(
    wait: WaitTooLong | SharedBudgetError, method: str, url: str, attempts: int, landed: bool
) -> FathomError:
    """The error of a call stopped before its attempt was sent.

    A wait the limits refused becomes a :class:`RateLimitError` (a cool-down
    too long) or an :class:`APITimeoutError` (the deadline); a shared budget
    that could not be used stays a :class:`SharedBudgetError`. ``attempts`` are
    those sent before.
    """
    error: FathomError
    if isinstance(wait, SharedBudgetError):
        error = wait
    elif wait.cool_down:
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
