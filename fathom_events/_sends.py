"""Whether a piece of work sent a request: for work cut off by cancellation.

A change cut off while it waited at the client's limits (for a request slot,
the rate limit or a cool-down) certainly had no effect; one cut off after its
request went out may have. Bulk work wraps each change in :func:`noting_sends`
and the limits call :func:`note_send` as each attempt goes out, in the same
task (a context variable), so neither needs to know the other.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import attrs

__all__ = ["Sends", "note_send", "noting_sends"]


@attrs.define
class Sends:
    """Whether a request went out (past the limits, to the transport) in :func:`noting_sends`."""

    sent: bool = False


_SENDS: contextvars.ContextVar[Sends | None] = contextvars.ContextVar(
    "fathom_events_sends", default=None
)


@contextlib.contextmanager
def noting_sends() -> Iterator[Sends]:
    """Note whether the calls made inside (in this task) send a request."""
    sends = Sends()
    token = _SENDS.set(sends)
    try:
        yield sends
    finally:
        _SENDS.reset(token)


def note_send() -> None:
    """Say that a request is going out now (called by the limits, in the caller's task)."""
    if (sends := _SENDS.get()) is not None:
        sends.sent = True
