"""The built-in transport, over aiohttp: the one module that imports aiohttp at run time.

:class:`AiohttpTransport` implements the public transport contract
(``_contract``) and nothing more: every request comes as a
``TransportRequest`` with its URL, headers and ``Timeouts``, so it holds no
base URL, token or default timeouts of its own; the sender keeps the client's
promises around it (the token blotted out of whatever comes back). It owns one
long-lived ``aiohttp.ClientSession`` per event loop that uses it (see
``_sessions``), or borrows one, and turns every failure below HTTP into
:class:`APIConnectionError` or :class:`APITimeoutError`, saying whether the
request may have reached the server (the retry rules for create depend on it),
with aiohttp's own words as they are (the sender blots and shortens them).

Three promises hold whatever the server sends:

* ``max_response_bytes`` bounds the *decoded* body. Only an answer with no
  ``Content-Encoding`` and a ``Content-Length`` within the cap is read in one
  go; every other answer is read a piece at a time, counting decoded bytes.
  aiohttp (3.14) inflates gzip, deflate, br (with Brotli installed) and zstd
  (with ``backports.zstd`` before Python 3.14) incrementally, at most about
  one read's worth ahead of the reader, so refusing a bomb costs the cap plus
  a few hundred KiB, never the bomb's size.
* aiohttp's exceptions stay behind: they can hold the request's headers
  (``request_info``), so the mapped error is raised outside the ``except``
  block (neither its ``__cause__`` nor its ``__context__``) and keeps only the
  aiohttp exception's class name and its own message. It is raised from
  :meth:`AiohttpTransport.send`, whose frame holds none of aiohttp's objects,
  without the frames below it (which hold the session, the response and
  aiohttp's exception), so that a traceback's locals show none of them.
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
import ssl
from collections.abc import Mapping, Sequence
from ssl import SSLContext
from typing import Any

import aiohttp
from aiohttp import hdrs
from yarl import URL

from fathom_events.exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    FathomError,
    InvalidRequestError,
    UnsupportedEventLoopError,
)

from ._contract import Timeouts, TransportRequest
from ._route import Proxy
from ._secrecy import raise_alone, words_of
from ._sender import too_large
from ._sessions import PerLoop, Pinned, close_socket

__all__ = ["AiohttpTransport", "check_borrowed_session"]

_READ_CHUNK = 256 * 1024
# What every request on a borrowed session carries, whatever the session was made with.
_BORROWED_OPTIONS: dict[str, Any] = {"raise_for_status": False, "auto_decompress": True}
# What every request on a session we made carries: nothing beyond its own options.
_OWN_OPTIONS: dict[str, Any] = {}


def _words(exc: BaseException) -> str:
    """An exception's class and its own words; a ClientResponseError's own message only.

    A ClientResponseError's str names its request; its request_info (the headers, the
    token among them) is never read here. A proxy's refusal keeps only its class: its
    reason phrase is the proxy's to choose, and may quote the credentials it was sent.
    """
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return type(exc).__name__
    return words_of(exc, exc.message if isinstance(exc, aiohttp.ClientResponseError) else None)


_UNTRUSTED = (
    "the server's TLS certificate is not trusted (a certificate problem: if a CA of your own"
    " signed it, pass ssl= a context that trusts that CA)"
)


def _connection_error(  # noqa: C901 - one flat table of failures, first match wins
    exc: BaseException, request: TransportRequest
) -> APIConnectionError:
    """Map an aiohttp or socket failure to our error, noting if the request went out.

    The message keeps the failure's class and its words; the failure itself is not
    kept (it may hold the request's headers, and so the token).
    """
    cls: type[APIConnectionError] = APIConnectionError
    sent, tls = True, False
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls, what, sent = APITimeoutError, "timed out while connecting", False
    elif isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        cls, what = APITimeoutError, "timed out waiting for the answer"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        what, sent, tls = _UNTRUSTED, False, True
    elif isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        what, sent, tls = "TLS failure", False, True
    elif isinstance(exc, aiohttp.ClientProxyConnectionError):
        what, sent = "could not connect to the proxy", False
    elif isinstance(exc, aiohttp.ClientConnectorError):
        what, sent = "could not connect", False
    elif isinstance(exc, aiohttp.ClientHttpProxyError):
        # The proxy's answer to CONNECT: the request never reached the API.
        what, sent = f"the proxy refused the tunnel with {exc.status}", False
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        what = "the server closed the connection without answering"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        what = "the answer's body broke off or could not be decoded"
    elif isinstance(exc, aiohttp.ClientResponseError):
        what = "the answer is not valid HTTP"
    else:
        what = "connection failed"
    err = cls(f"{what} ({_words(exc)})", method=request.method, url=request.url)
    err.request_sent = sent
    err.tls_failure = tls
    return err


def _broken_off_error(exc: RuntimeError, request: TransportRequest, *, closed: bool) -> FathomError:
    """The error for a send that aiohttp or asyncio broke off with a bare ``RuntimeError``.

    That comes from asyncio objects of one event loop used in another (a lent
    session, a trace hook or lock made elsewhere) or from a session closed
    under the call. The request may have gone out, so a write (anything but a
    GET) says it may have taken effect.
    """
    where = f"({request.method} {request.url})"
    error: FathomError
    if closed:
        error = ClientClosedError(f"the client was closed while this call was running {where}")
    else:
        error = UnsupportedEventLoopError(
            f"the request was broken off by {_words(exc)} {where}: asyncio objects made"
            " in one event loop were used in another. Keep everything the client is given"
            " (session=, trace hooks, locks) in the loop that awaits it, or let the client make"
            " its own session"
        )
    if request.method != "GET":
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


def _new_session() -> aiohttp.ClientSession:
    """A session of our own: no default headers or timeouts (each request brings its own)."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    # aiohttp silently resends a GET or DELETE once when the connection drops
    # before the answer. Our retry loop must see (count, log, limit and bound)
    # every send, so that hidden resend is turned off on the session we own.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False  # noqa: SLF001
    return session


class AiohttpTransport:
    """The built-in :class:`~fathom_events.AsyncTransport`: aiohttp, a session per event loop.

    ``session``: a lent ``aiohttp.ClientSession`` to send on instead (never
    closed here, usable only in its own loop). ``max_response_bytes``: the
    decoded size at which reading stops (the sender refuses the answer too, but
    only a transport that streams can stop before holding all of it).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int,
        proxy: Proxy | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        self._borrowed = session is not None
        if session is not None:
            check_borrowed_session(session)
        self._sessions: PerLoop[aiohttp.ClientSession] | Pinned[aiohttp.ClientSession] = (
            PerLoop(make=_new_session, close=aiohttp.ClientSession.close, release=_let_go)
            if session is None
            # aiohttp keeps the loop a session belongs to; unknown, the first user's is taken.
            else Pinned(session, getattr(session, "_loop", None))
        )
        # Per request, so that a lent session's requests take them as well. With a proxy,
        # an https:// request goes through a CONNECT tunnel: only the CONNECT carries the
        # proxy's credentials. A plain http:// request goes to the proxy as it is: then it
        # carries them itself (and the proxy, not the API, removes them).
        reach: dict[str, Any] = {} if ssl is None else {"ssl": ssl}
        self._proxy_authorization: dict[str, str] = {}
        if proxy is not None:
            reach["proxy"] = URL(proxy.url)
            if proxy.authorization is not None:
                self._proxy_authorization = {"Proxy-Authorization": proxy.authorization.reveal()}
        self._options = {**(_OWN_OPTIONS if session is None else _BORROWED_OPTIONS), **reach}
        self._max_response_bytes = max_response_bytes
        self._last_timeout: tuple[Timeouts, aiohttp.ClientTimeout] | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"AiohttpTransport(borrowed={self._borrowed})"

    def _get_session(self) -> aiohttp.ClientSession:  # noqa: RET503 - ends in raise_alone
        """The running loop's session; ours are made on first use in each loop."""
        try:
            return self._sessions.get()
        except FathomError as error:  # closed, or a loop that cannot have one (trio, another's)
            refusal = error
        # Raised without the frames below, which hold every loop's session.
        raise_alone(refusal)

    def open(self) -> None:
        """Make the running loop's session now, or say why this loop cannot have one."""
        self._get_session()

    async def send(  # noqa: RET503 - it ends in raise_alone, which always raises
        self, request: TransportRequest, timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send once; the answer, or a FathomError saying what failed."""
        try:
            return await self._exchange(request, timeouts)
        except FathomError as error:  # ours, from below: the cap, a closed or foreign session
            failure: FathomError = error
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            failure = _connection_error(exc, request)
        except RuntimeError as exc:
            failure = _broken_off_error(exc, request, closed=self.closed)
        except ValueError as exc:
            # aiohttp refused to build the request (nothing went out): on a lent session,
            # a login of its own (auth=, a .netrc entry found through trust_env) that it
            # will not combine with our Authorization header.
            failure = InvalidRequestError(
                "session", f"aiohttp would not send the request: {_words(exc)}"
            )
        except Exception as exc:  # noqa: BLE001 - what aiohttp lets through (a trace hook's bug)
            failure = _connection_error(exc, request)
        except BaseException as stop:  # noqa: BLE001 - re-raised as it is, frames cut
            # A cancellation or an interrupt passes through as it is, but without the frames
            # below this one, which hold the session and the response.
            raise_alone(stop)
        # Raised out here, alone, and without the frames below this one: aiohttp's
        # exception (whose request_info holds the token) is neither the __cause__ nor the
        # __context__ of ours, and the session and response those frames hold are not
        # among the locals of any frame on its traceback.
        raise_alone(failure)

    async def _exchange(
        self, request: TransportRequest, timeouts: Timeouts
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send once on the running loop's session; the answer, its body read within the cap."""
        session = self._get_session()
        options = self._options
        if self._borrowed:
            if session.closed:
                raise ClientClosedError(
                    "the session= this client was lent has been closed by its owner;"
                    " lend an open one, or let the client make its own"
                )
            options = {**options, **_refuse_hidden_resend(session)}
        # One trick, measured (cachegrind, sequential GETs): awaiting the request instead of
        # entering it and reusing the last ClientTimeout save 3.3% of a GET's instructions
        # together (481k -> 465k); see "Speed tricks, measured" in benchmarks/README.md.
        timeout = self._last_timeout
        if timeout is None or (timeout[0] is not timeouts and timeout[0] != timeouts):
            timeout = self._last_timeout = (
                timeouts,
                aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect),
            )
        url = URL(request.url, encoded=True)
        headers = request.headers
        if self._proxy_authorization:
            if url.scheme == "https":
                options = {**options, "proxy_headers": self._proxy_authorization}
            else:
                headers = {**headers, **self._proxy_authorization}
        response = await session.request(
            request.method,
            url,
            headers=headers,
            data=request.body,
            allow_redirects=False,
            timeout=timeout[1],
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
                content = await self._read_capped(response, request)
            return response.status, response.headers, content
        finally:
            response.release()  # all the context manager's exit would do that matters

    async def _read_capped(
        self, response: aiohttp.ClientResponse, request: TransportRequest
    ) -> bytes:
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
        raise too_large(cap, method=request.method, url=request.url, status=response.status)

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
        close_socket(protocol.transport)
