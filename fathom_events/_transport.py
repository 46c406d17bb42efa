"""Sending requests: the one room that imports aiohttp at run time.

A :class:`Transport` owns one long-lived ``aiohttp.ClientSession`` per event
loop that uses it (see ``_loops``), or borrows one, and turns every failure
below HTTP into :class:`APIConnectionError` or :class:`APITimeoutError`, saying
whether the request may have reached the server (the retry rules for create
depend on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import socket
import ssl

import aiohttp
import attrs
from yarl import URL

from ._loops import PerLoop, Pinned
from ._protocol import Answer, Request
from ._version import __version__
from .exceptions import APIConnectionError, APITimeoutError, ResponseTooLargeError

_PYTHON = platform.python_version()
USER_AGENT = f"fathom-events/{__version__} (Python {_PYTHON}; aiohttp {aiohttp.__version__})"
_READ_CHUNK = 256 * 1024
# The options of a request that uses the session's timeouts: none (never mutated).
_SESSION_TIMEOUTS: dict[str, aiohttp.ClientTimeout] = {}


class Secret:
    """A value that never shows itself in a repr or a string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")


@attrs.frozen
class Timeouts:
    """Per-attempt limits in seconds: the whole attempt, and the connect phase within it."""

    total: float | None
    connect: float | None

    def for_aiohttp(self) -> aiohttp.ClientTimeout:
        """The same limits as aiohttp wants them."""
        return aiohttp.ClientTimeout(total=self.total, connect=self.connect)


def connection_error(exc: BaseException, *, method: str, url: str) -> APIConnectionError:
    """Map an aiohttp or socket failure to our error, noting if the request went out."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        err: APIConnectionError = APITimeoutError(
            "timed out while connecting", method=method, url=url
        )
        err.request_sent = False
    elif isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        err = APITimeoutError("timed out waiting for the answer", method=method, url=url)
    elif isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        err = APIConnectionError(f"TLS failure: {exc}", method=method, url=url)
        err.request_sent = False
        err.tls_failure = True
    elif isinstance(exc, aiohttp.ClientConnectorError):
        err = APIConnectionError(f"could not connect: {exc.os_error}", method=method, url=url)
        err.request_sent = False
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        err = APIConnectionError(
            "the server closed the connection without answering", method=method, url=url
        )
    elif isinstance(exc, aiohttp.ClientPayloadError):
        err = APIConnectionError(
            "the connection broke while the answer was being read", method=method, url=url
        )
    else:
        err = APIConnectionError(f"connection failed: {exc}", method=method, url=url)
    return err


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
        self._headers = {
            "Authorization": f"Bearer {token.reveal()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._default_timeouts = timeouts
        self._sessions: PerLoop[aiohttp.ClientSession] | Pinned[aiohttp.ClientSession] = (
            PerLoop(make=self._make_session, close=aiohttp.ClientSession.close, release=_let_go)
            if session is None
            # aiohttp keeps the loop a session belongs to; unknown, the first user's is taken.
            else Pinned(session, getattr(session, "_loop", None))
        )
        # Our session was made with our timeouts; a borrowed one has its own (aiohttp's
        # default is 5 minutes), so every request on it carries ours explicitly.
        self._default_options = (
            _SESSION_TIMEOUTS if session is None else {"timeout": timeouts.for_aiohttp()}
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

    def _get_session(self) -> aiohttp.ClientSession:
        """The running loop's session; ours are made on first use in each loop."""
        return self._sessions.get()

    def _make_session(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=self._default_timeouts.for_aiohttp(),
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

    async def send(
        self, request: Request, timeouts: Timeouts | None = None, url: str | None = None
    ) -> Answer:
        """Send once; return the answer or raise a mapped connection error.

        ``url`` is the request's full URL when the caller has built it already.
        """
        target = url or self.base_url + request.target()
        session = self._get_session()
        body = request.body
        options = self._default_options
        if not (timeouts is None or timeouts is self._default_timeouts) and (
            timeouts != self._default_timeouts
        ):
            options = {"timeout": timeouts.for_aiohttp()}
        try:
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
                if length is not None and length <= self._max_response_bytes:
                    content = await response.read()
                else:
                    content = await self._read_capped(response, request.method, target)
                return Answer(response.status, response.headers, content)
            finally:
                response.release()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise connection_error(exc, method=request.method, url=target) from exc

    async def _read_capped(self, response: aiohttp.ClientResponse, method: str, url: str) -> bytes:
        # The answer has no length, or one over the cap: read in chunks up to the cap.
        cap = self._max_response_bytes
        if response.content_length is None:
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
        raise ResponseTooLargeError(
            f"the answer is larger than max_response_bytes={cap}; it was not read",
            method=method,
            url=url,
            status=response.status,
            body="",
        )

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
