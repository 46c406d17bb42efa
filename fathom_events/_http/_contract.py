"""The transport contract: what ``AsyncClient(transport=...)`` takes, free of aiohttp.

A transport moves one request and its answer; the client does the rest. It
builds the URL and the headers, bounds the attempt's time, checks the answer's
shape and size, blots an echoed token out, and turns every failure into a
typed :class:`~fathom_events.FathomError` (see ``_sender``). The built-in
transport (aiohttp) implements this contract and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

__all__ = ["AsyncTransport", "Timeouts", "TransportRequest"]

_HIDDEN = "********"


@attrs.frozen
class Timeouts:
    """Limits on one attempt, in seconds; ``None`` means no limit.

    Attributes:
        total: Bounds the whole attempt, from sending to the answer's last
            byte (already shortened to what is left of the call's
            ``RetryPolicy.deadline``).
        connect: Bounds the part of it spent setting up a connection.
    """

    total: float | None
    connect: float | None


def _masked(headers: Mapping[str, str]) -> str:
    shown = {
        name: _HIDDEN if name.lower() == "authorization" else value
        for name, value in headers.items()
    }
    return repr(shown)


@attrs.frozen
class TransportRequest:
    """One request, ready to go: send it exactly as it is. Its repr hides the token.

    Attributes:
        method: ``"GET"``, ``"POST"`` or ``"DELETE"``.
        url: Absolute and already percent-encoded; do not encode, normalise
            or follow redirects from it.
        headers: Read-only: ``Authorization`` (the API token), ``Accept``,
            ``User-Agent`` and, with a body, ``Content-Type: application/json``.
        body: The JSON body as bytes, or ``None``.
    """

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=_masked)
    body: bytes | None = None


class AsyncTransport(Protocol):
    """What ``AsyncClient(transport=...)`` needs: send one request, get one answer; close.

    ``send(request, timeouts)`` sends the :class:`TransportRequest` once (no
    retry of its own: the client retries, and counts what it sends) and returns
    ``(status, headers, body)``:

    * ``status``: the HTTP status, an ``int`` from 100 to 599; a 3xx is
      returned as it is, not followed;
    * ``headers``: a ``Mapping[str, str]`` of the answer's headers; the client
      looks names up without regard to case (a ``multidict.CIMultiDict`` or a
      plain ``dict`` will do);
    * ``body``: the whole body as ``bytes``, decoded from any
      ``Content-Encoding`` (gzip and the like).

    It should bound the attempt by ``timeouts.total`` (and the connection by
    ``timeouts.connect``). It may raise any exception: a ``TimeoutError``
    becomes :class:`~fathom_events.APITimeoutError` and anything else
    :class:`~fathom_events.APIConnectionError` (taken as "the request may have
    reached the server"). Raise a :class:`~fathom_events.FathomError` to say
    precisely what happened: above all an
    :class:`~fathom_events.APIConnectionError` with ``request_sent = False``
    when nothing left (then even a create is retried), or a
    :class:`~fathom_events.ResponseTooLargeError` when the answer was too big
    to read. Whatever comes out, the client keeps the token out of it.

    The client checks the answer (shape, ``max_response_bytes``) after ``send``
    returns; a transport that streams may stop reading early by itself. The
    client calls ``aclose()`` once, when it closes; a transport given to one
    client belongs to it.
    """

    async def send(
        self, request: TransportRequest, timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]: ...

    async def aclose(self) -> None: ...
