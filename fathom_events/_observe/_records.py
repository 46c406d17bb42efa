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
    """What every record says: which call (``call_id``) and what it is (``operation``)."""

    call_id: int
    operation: str


@attrs.frozen(kw_only=True)
class CallStarted(CallRecord):
    """A call began; ``site_id`` is the site it is about, if any."""

    site_id: str | None


@attrs.frozen(kw_only=True)
class Waited(CallRecord):
    """Attempt ``attempt`` waited ``seconds`` for ``reason`` before it could be sent.

    A wait for a request slot is reported whenever the attempt had to queue
    for one (even for 0 s); the limiter reports each time it sleeps for the
    cool-down or for a place in the rate limit (a cool-down extended while it
    was waited out is two waits).
    """

    attempt: int
    reason: WaitReason
    seconds: float


@attrs.frozen(kw_only=True)
class RequestSent(CallRecord):
    """Attempt ``attempt`` (1 for the first) is being sent: ``method`` to ``url``."""

    attempt: int
    method: str
    url: str


@attrs.frozen(kw_only=True)
class AnswerReceived(CallRecord):
    """Attempt ``attempt`` ended, ``elapsed`` seconds after it was sent.

    ``status`` is the HTTP status of the answer, or ``None`` when no answer
    could be read: then ``error`` names the class of the error the attempt
    ended in (``APIConnectionError``, ``APITimeoutError``,
    ``ResponseTooLargeError``, which does keep its status).
    """

    attempt: int
    status: int | None
    elapsed: float
    error: str | None


@attrs.frozen(kw_only=True)
class RetryScheduled(CallRecord):
    """The call will send attempt ``attempt`` after ``delay`` seconds, because of ``reason``."""

    attempt: int
    reason: str
    delay: float


@attrs.frozen(kw_only=True)
class CallFinished(CallRecord):
    """The call ended: ``outcome``, after ``attempts`` requests sent and ``elapsed`` seconds.

    ``error`` is the class name of the error it raised (``None`` if it
    returned). ``may_have_been_applied`` is the error's own flag for a failed
    call; for a call that succeeded it is true when the call changes something
    (a create, update or delete), and for a cancelled one when it had sent a
    request whose answer it did not read.
    """

    outcome: Outcome
    error: str | None
    attempts: int
    elapsed: float
    may_have_been_applied: bool
