"""Sending requests: the one room that imports aiohttp at run time.

:func:`make_transport` gives the client its transport: this module's aiohttp
:class:`Transport`, or the one passed as ``transport=`` (what that must be, and
the promises the client keeps around it, are in ``_seam``).

A :class:`Transport` owns one long-lived ``aiohttp.ClientSession`` per event
loop that uses it (see ``_loops``), or borrows one, and turns every failure
below HTTP into :class:`APIConnectionError` or :class:`APITimeoutError`, saying
whether the request may have reached the server (the retry rules for create
depend on it).

Three promises hold whatever the server sends:

* ``max_response_bytes`` bounds the *decoded* body. Only an answer with no
  ``Content-Encoding`` and a ``Content-Length`` within the cap is read in one
  go; every other answer is read a piece at a time, counting decoded bytes.
  aiohttp (3.14) inflates gzip, deflate, br (with Brotli installed) and zstd
  (with ``backports.zstd`` before Python 3.14) incrementally, at most about
  one read's worth ahead of the reader, so refusing a bomb costs the cap plus
  a few hundred KiB, never the bomb's size.
* The token stays out of every error: aiohttp's exceptions can hold the
  request's headers (``request_info``), so the mapped error is raised outside
  the ``except`` block (neither its ``__cause__`` nor its ``__context__``) and
  keeps only the aiohttp exception's class name and its own message, with the
  token blotted out should a server have echoed it. It is raised from
  :meth:`Transport.send`, whose frame holds none of aiohttp's objects, without
  the frames below it (which hold the session, the response and aiohttp's
  exception), so that a traceback's locals show none of them.
* A borrowed session ends every request as our own session would. Each
  request on it passes ``raise_for_status=False`` (our status mapping applies,
  ``Retry-After`` included) and ``auto_decompress=True`` (so the cap above
  counts decoded bytes). aiohttp also resends a GET or DELETE once, unseen,
  when the connection drops before the answer; we switch that off on the
  session we own, but must not change a borrowed one. aiohttp runs the
  request's middleware chain once per send inside that resend loop, so each
  request on a borrowed session carries, outermost, a middleware that lets
  one send through and answers a second by raising the first send's failure
  again: the hidden resend never reaches the wire, and our retry loop sees
  (counts, bounds, and marks as possibly applied) the failure exactly as on
  our own session. A per-request chain replaces the session's, so the
  session's own middlewares (aiohttp keeps them in the private
  ``_middlewares``, pinned by a test) run inside ours. Were that attribute
  ever gone, the session's chain is left alone and the resend stays possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import socket
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._loops import PerLoop, Pinned
from ._protocol import Answer, Operation, Request
from ._seam import (
    AsyncTransport,
    GivenTransport,
    Secret,
    Timeouts,
    TokenEchoes,
    detail,
    raise_alone,
    refuse_to_travel,
    standard_headers,
    too_large,
)
from ._version import __version__
from .exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    FathomError,
    InvalidRequestError,
    UnsupportedEventLoopError,
)

__all__ = [
    "USER_AGENT",
    "Secret",
    "Timeouts",
    "Transport",
    "aiohttp_timeout",
    "check_borrowed_session",
    "connection_error",
    "make_transport",
    "refuse_to_travel",
]

_PYTHON = platform.python_version()
USER_AGENT = f"fathom-events/{__version__} (Python {_PYTHON}; aiohttp {aiohttp.__version__})"
_READ_CHUNK = 256 * 1024
# The options of a request that uses the session's timeouts: none (never mutated).
_SESSION_TIMEOUTS: dict[str, Any] = {}
# What every request on a borrowed session carries, whatever the session was made with.
_BORROWED_OPTIONS: dict[str, Any] = {"raise_for_status": False, "auto_decompress": True}


def aiohttp_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """The limits of ``timeouts`` as aiohttp wants them."""
    return aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)


def _detail(exc: BaseException, echoes: TokenEchoes) -> str:
    # A ClientResponseError's str is safe but names its request; its request_info (the
    # headers, the token among them) is never read here: only its own message.
    words = exc.message if isinstance(exc, aiohttp.ClientResponseError) else None
    return detail(exc, echoes, None if words is None else str(words))


def connection_error(
    exc: BaseException, *, method: str, url: str, echoes: TokenEchoes
) -> APIConnectionError:
    """Map an aiohttp or socket failure to our error, noting if the request went out.

    The message keeps the failure's class and its words, the token blotted out; the
    failure itself is not kept (it may hold the request's headers, and so the token).
    """
    cls: type[APIConnectionError] = APIConnectionError
    sent, tls = True, False
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls, what, sent = APITimeoutError, "timed out while connecting", False
    elif isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        cls, what = APITimeoutError, "timed out waiting for the answer"
    elif isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        what, sent, tls = "TLS failure", False, True
    elif isinstance(exc, aiohttp.ClientConnectorError):
        what, sent = "could not connect", False
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        what = "the server closed the connection without answering"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        what = "the answer's body broke off or could not be decoded"
    elif isinstance(exc, aiohttp.ClientResponseError):
        what = "the answer is not valid HTTP"
    else:
        what = "connection failed"
    err = cls(f"{what} ({_detail(exc, echoes)})", method=method, url=url)
    err.request_sent = sent
    err.tls_failure = tls
    return err


def cut_off(
    exc: RuntimeError, request: Request, url: str, *, closed: bool, echoes: TokenEchoes
) -> FathomError:
    """The error for a send that aiohttp or asyncio broke off with a bare ``RuntimeError``.

    That comes from asyncio objects of one event loop used in another (a lent
    session, a trace hook or lock made elsewhere) or from a session closed
    under the call. The request may have gone out, so a write says it may
    have taken effect.
    """
    where = f"({request.method} {url})"
    error: FathomError
    if closed:
        error = ClientClosedError(f"the client was closed while this call was running {where}")
    else:
        error = UnsupportedEventLoopError(
            f"the request was broken off by {detail(exc, echoes)} {where}: asyncio objects made"
            " in one event loop were used in another. Keep everything the client is given"
            " (session=, trace hooks, locks) in the loop that awaits it, or let the client make"
            " its own session"
        )
    if request.operation not in {Operation.LIST, Operation.GET}:
        error.may_have_been_applied = True
    return error


def _refuse_hidden_resend(session: aiohttp.ClientSession) -> dict[str, Any]:
    """The ``middlewares`` option that stops aiohttp resending a request unseen (see above)."""
    theirs: Sequence[aiohttp.ClientMiddlewareType] | None = getattr(session, "_middlewares", None)
    if theirs is None:  # not the aiohttp we know: leave the session's chain as it is
        return {}
    failure: BaseException | None = None

    async def one_send(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        nonlocal failure
        if failure is not None:
            # aiohttp's own resend: end it as the first send ended, which aiohttp then
            # raises as it would on a session with the resend switched off.
            raise failure
        try:
            return await handler(request)
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            failure = exc
            raise

    return {"middlewares": (one_send, *theirs)}


def check_borrowed_session(session: object) -> aiohttp.ClientSession:
    """A lent session must be an open ``aiohttp.ClientSession`` without an ``auth=`` of its own."""
    if not isinstance(session, aiohttp.ClientSession):
        raise InvalidRequestError(
            "session", f"must be an aiohttp.ClientSession, got {type(session).__name__}"
        )
    if session.closed:
        raise InvalidRequestError(
            "session", "is closed: lend an open session, or let the client make its own"
        )
    if session.auth is not None:
        raise InvalidRequestError(
            "session",
            "carries auth= of its own, which aiohttp refuses to combine with the API token the"
            " client sends in Authorization: lend a session without auth",
        )
    return session


def make_transport(
    given: AsyncTransport | None,
    *,
    base_url: str,
    token: Secret,
    timeouts: Timeouts,
    session: aiohttp.ClientSession | None,
    max_response_bytes: int,
) -> Transport | GivenTransport:
    """The client's transport: aiohttp's (our own session or a lent one), or the one given."""
    if given is None:
        return Transport(
            base_url=base_url,
            token=token,
            timeouts=timeouts,
            session=session,
            max_response_bytes=max_response_bytes,
        )
    return GivenTransport(
        given,
        base_url=base_url,
        token=token,
        timeouts=timeouts,
        max_response_bytes=max_response_bytes,
    )


class Transport:
    """One session, the standard headers, the size cap, and failure mapping."""

    def __init__(
        self,
        *,
        base_url: str,
        token: Secret,
        timeouts: Timeouts,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = standard_headers(token, USER_AGENT)
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._echoes = TokenEchoes(token)
        self._default_timeouts = timeouts
        self._borrowed = session is not None
        if session is not None:
            check_borrowed_session(session)
        self._sessions: PerLoop[aiohttp.ClientSession] | Pinned[aiohttp.ClientSession] = (
            PerLoop(make=self._make_session, close=aiohttp.ClientSession.close, release=_let_go)
            if session is None
            # aiohttp keeps the loop a session belongs to; unknown, the first user's is taken.
            else Pinned(session, getattr(session, "_loop", None))
        )
        # Our session was made with our timeouts; a borrowed one has its own (aiohttp's
        # default is 5 minutes), so every request on it carries ours explicitly.
        self._default_options = (
            _SESSION_TIMEOUTS
            if session is None
            else {**_BORROWED_OPTIONS, "timeout": aiohttp_timeout(timeouts)}
        )
        # What each request passes as its own headers. A borrowed session may carry
        # defaults of its own, so ours go with every request; the session we own is
        # created with ours as its defaults (aiohttp merges the two into the same
        # headers, in the same order), which spares it a merge per request.
        self._request_headers: dict[str, str] | None = self._headers
        self._request_json_headers = self._json_headers
        self._max_response_bytes = max_response_bytes
        self.closed = False

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    @property
    def _session(self) -> aiohttp.ClientSession | None:
        """The session made last (or the borrowed one), for inspection; None before any."""
        return self._sessions.newest

    def _get_session(self) -> aiohttp.ClientSession:  # noqa: RET503 - ends in raise_alone
        """The running loop's session; ours are made on first use in each loop."""
        try:
            return self._sessions.get()
        except FathomError as error:  # closed, or a loop that cannot have one (trio, another's)
            refusal = error
        # Raised without the frames below, which hold every loop's session (and so the
        # token, in its headers).
        raise_alone(refusal)

    def _make_session(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp_timeout(self._default_timeouts),
            connector=aiohttp.TCPConnector(limit=0),
        )
        # aiohttp silently resends a GET or DELETE once when the connection drops
        # before the answer. Our retry loop must see (count, log, limit and bound)
        # every send, so that hidden resend is turned off on the session we own.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False  # noqa: SLF001
        self._request_headers = None
        self._request_json_headers = {"Content-Type": "application/json"}
        return session

    def open(self) -> None:
        """Make the running loop's session now, or say why this loop cannot have one."""
        self._get_session()

    async def send(  # noqa: RET503 - it ends in raise_alone, which always raises
        self, request: Request, timeouts: Timeouts | None = None, url: str | None = None
    ) -> Answer:
        """Send once; return the answer or raise a mapped error.

        ``url`` is the request's full URL when the caller has built it already.
        """
        target = url or self.base_url + request.target()
        try:
            return await self._exchange(request, target, timeouts)
        except FathomError as error:  # ours, from below: the cap, a closed or foreign session
            failure: FathomError = error
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            failure = connection_error(exc, method=request.method, url=target, echoes=self._echoes)
        except RuntimeError as exc:
            failure = cut_off(exc, request, target, closed=self.closed, echoes=self._echoes)
        except ValueError as exc:
            # aiohttp refused to build the request (nothing went out): on a lent session,
            # a login of its own (auth=, a .netrc entry found through trust_env) that it
            # will not combine with our Authorization header.
            failure = InvalidRequestError(
                "session", f"aiohttp would not send the request: {detail(exc, self._echoes)}"
            )
        except Exception as exc:  # noqa: BLE001 - what aiohttp lets through (a trace hook's bug)
            failure = connection_error(exc, method=request.method, url=target, echoes=self._echoes)
        except BaseException as stop:  # noqa: BLE001 - re-raised as it is, frames cut
            # A cancellation or an interrupt passes through as it is, but without the frames
            # below this one, which hold the session and the response (and so the token).
            raise_alone(stop)
        # Raised out here, alone, and without the frames below this one: aiohttp's
        # exception (whose request_info holds the token) is neither the __cause__ nor the
        # __context__ of ours, and the session and response those frames hold are not
        # among the locals of any frame on its traceback.
        raise_alone(failure)

    async def _exchange(self, request: Request, target: str, timeouts: Timeouts | None) -> Answer:
        """Send once on the running loop's session; the answer, its body read within the cap."""
        session = self._get_session()
        body = request.body
        options = self._default_options
        if not (timeouts is None or timeouts is self._default_timeouts) and (
            timeouts != self._default_timeouts
        ):
            options = {**options, "timeout": aiohttp_timeout(timeouts)}
        if self._borrowed:
            if session.closed:
                raise ClientClosedError(
                    "the session= this client was lent has been closed by its owner;"
                    " lend an open one, or let the client make its own"
                )
            options = {**options, **_refuse_hidden_resend(session)}
        # Awaited rather than entered: the context manager's extra layers cost about 2%
        # of a request, and ``release`` below is all its exit would do that matters
        # (it also cancels a request body still being written, as the exit did).
        response = await session.request(
            request.method,
            URL(target, encoded=True),
            headers=self._request_headers if body is None else self._request_json_headers,
            data=body,
            allow_redirects=False,
            **options,
        )
        try:
            length = response.content_length
            if (
                length is not None
                and length <= self._max_response_bytes
                and hdrs.CONTENT_ENCODING not in response.headers
            ):
                content = await response.read()
            else:
                content = await self._read_capped(response, request.method, target)
            headers: Mapping[str, str] = response.headers
            if self._echoes.found_in(content, headers):
                content, pairs = self._echoes.blot_answer(content, headers)
                headers = CIMultiDictProxy(CIMultiDict(pairs))
            return Answer(response.status, headers, content)
        finally:
            response.release()

    async def _read_capped(self, response: aiohttp.ClientResponse, method: str, url: str) -> bytes:
        # Read a piece at a time, counting decoded bytes, up to the cap. aiohttp inflates
        # no further ahead than the piece being read (and its buffer's high-water mark),
        # so this holds at most the cap and a few pieces, whatever the answer inflates to.
        # Only an identity answer with a length over the cap is refused without reading.
        cap = self._max_response_bytes
        if response.content_length is None or hdrs.CONTENT_ENCODING in response.headers:
            parts: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(_READ_CHUNK):
                size += len(chunk)
                if size > cap:
                    break
                parts.append(chunk)
            else:
                return b"".join(parts)
        response.close()
        raise too_large(cap, method=method, url=url, status=response.status)

    async def aclose(self) -> None:
        """Close the sessions we made (in every loop); a borrowed session is left open."""
        self.closed = True
        await self._sessions.aclose()


def _let_go(session: aiohttp.ClientSession) -> None:
    """Release a session whose event loop is closed, without that loop and without a warning."""
    connector = session.connector
    session.detach()  # from now on the session counts as closed
    if connector is None:
        return
    # aiohttp keeps no public list of its connections: read its pool, tolerating a change.
    pools = getattr(connector, "_conns", {})
    pooled = [protocol for pool in pools.values() for protocol, _ in pool]
    pooled += getattr(connector, "_acquired", ())
    # On a closed loop the connector closes nothing and waits for nothing; driving its
    # close once marks it closed, so it does not warn when collected.
    with contextlib.suppress(StopIteration):
        connector.close().__await__().send(None)
    for protocol in pooled:
        _close_socket(protocol.transport)


def _close_socket(transport: asyncio.BaseTransport | None) -> None:
    # asyncio cannot close a transport once its loop is closed (close() schedules the end
    # on the loop), and would report the socket when the transport is collected. Close
    # the socket as the loop would have, for asyncio's own transports (uvloop's end with
    # their loop).
    sock = getattr(transport, "_sock", None)
    if isinstance(sock, socket.socket):
        sock.close()
        transport._sock = None  # type: ignore[union-attr]  # noqa: SLF001
