"""What ``on_event`` receives: one frozen record per step of a call.

Every record names its call (``call_id``, the same for every record of one
call, unique in the process) and what the call is (``operation``:
``events.create``, ``sites.list``, ``token.get``...). Times are seconds on the
client's clock (``clock=``, ``time.monotonic`` by default). No record holds
the token: URLs are the ones the client sends to, which never carry it.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

__all__ = [
    "AnswerReceived",
    "CallFinished",
    "CallRecord",
    "CallStarted",
    "Outcome",
    "RequestSent",
    "RetryScheduled",
    "WaitReason",
    "Waited",
]

#: What a call waited for before sending: a free request slot (``max_in_flight``), a place
#: in the rate limit (``rate_limit``), or the end of the cool-down a 429 started.
WaitReason: TypeAlias = Literal["in_flight", "rate_limit", "cool_down"]
#: How a call ended: with a value, by raising an error, or cancelled (a task cancelled, a
#: blocking call interrupted, the client closed under it).
Outcome: TypeAlias = Literal["ok", "error", "cancelled"]


@attrs.frozen(kw_only=True)
class CallRecord:
    """What every record says: which call it is of, and what that call is.

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
    """

    call_id: int
    operation: str


@attrs.frozen(kw_only=True)
class CallStarted(CallRecord):
    """A call began.

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
        site_id: The site the call is about, as given; ``None`` for the
            token and the list of sites.
    """

    site_id: str | None


@attrs.frozen(kw_only=True)
class Waited(CallRecord):
    """An attempt waited before it could be sent.

    A wait for a request slot is reported whenever the attempt had to queue
    for one (even for 0 s); the limiter reports each time it sleeps for the
    cool-down or for a place in the rate limit (a cool-down extended while it
    was waited out is two waits).

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
        attempt: The attempt that waited (1 for the first).
        reason: What it waited for: ``"in_flight"`` (a free slot of
            ``max_in_flight``), ``"rate_limit"`` (a place in ``rate_limit``)
            or ``"cool_down"`` (the end of the cool-down a 429 started).
        seconds: How long it waited, on the client's clock.
    """

    attempt: int
    reason: WaitReason
    seconds: float


@attrs.frozen(kw_only=True)
class RequestSent(CallRecord):
    """An attempt is being sent.

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
        attempt: Which attempt: 1 for the first, 2 for the first retry...
        method: The HTTP method.
        url: The URL it goes to (never holding the token, which goes in a
            header).
    """

    attempt: int
    method: str
    url: str


@attrs.frozen(kw_only=True)
class AnswerReceived(CallRecord):
    """An attempt's answer came back, or the attempt failed without one.

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
        attempt: Which attempt.
        status: The HTTP status of the answer; ``None`` when no answer could
            be read (the connection failed or timed out).
        elapsed: Seconds from sending to the answer (or the failure), on the
            client's clock.
        error: When no answer could be used, the class name of the error the
            attempt ended in (``APIConnectionError``, ``APITimeoutError``, or
            ``ResponseTooLargeError``, which keeps its status); else ``None``,
            whatever the status.
    """

    attempt: int
    status: int | None
    elapsed: float
    error: str | None


@attrs.frozen(kw_only=True)
class RetryScheduled(CallRecord):
    """The call will send its request again.

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
        attempt: The attempt that will be sent (2 for the first retry).
        reason: Why: ``"429 rate or concurrency limit"``, ``"503 service
            unavailable"``, ``"502 server error"``, a connection's failure...
        delay: Seconds until then: the answer's ``Retry-After``, or the
            backoff.
    """

    attempt: int
    reason: str
    delay: float


@attrs.frozen(kw_only=True)
class CallFinished(CallRecord):
    """The call ended: it returned, raised, or was cancelled.

    Attributes:
        call_id: The call's number, the same on each of its records and unique
            in the process.
        operation: What the call is: ``events.create``, ``sites.list``,
            ``token.get``...
        outcome: ``"ok"``, ``"error"`` or ``"cancelled"`` (a task
            cancelled, a blocking call interrupted, the client closed under it).
        error: The class name of what it raised; ``None`` if it returned.
        attempts: How many requests it sent.
        elapsed: Seconds from its start to its end, waits included, on the
            client's clock.
        may_have_been_applied: For a failed call, the error's own flag; for
            one that succeeded, whether it changes something (a create,
            update or delete); for a cancelled one, whether it changes
            something and had sent a request.
    """

    outcome: Outcome
    error: str | None
    attempts: int
    elapsed: float
    may_have_been_applied: bool
