"""The asynchronous client: ``AsyncClient`` and its ``events`` resource."""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import attrs

from . import _protocol as proto
from ._events import AsyncEvents
from ._loops import asyncio_sleep
from ._retry import Gate, RateLimit, RetryPolicy, call_with_retries
from ._seam import AsyncTransport, Secret, Timeouts
from ._transport import make_transport, refuse_to_travel
from .exceptions import (
    ClientClosedError,
    FathomError,
    InvalidRequestError,
    UnsupportedEventLoopError,
)

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Self

__all__ = ["DEFAULT_BASE_URL", "AsyncClient"]

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.usefathom.com/v1"
TOKEN_ENV = "FATHOM_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# Characters a URL never holds raw: parsers disagree on a backslash (WHATWG reads it as
# "/"), and whitespace is either stripped or sent, so either way the URL would change.
_URL_FORBIDDEN = re.compile(r"[\s\\]").search


def _read_token(token: str | None) -> Secret:
    if token is None:
        token = os.environ.get(TOKEN_ENV)
        if token is None:
            raise InvalidRequestError(
                "token", f"no API token: pass token=... or set the {TOKEN_ENV} environment variable"
            )
    if not isinstance(token, str):
        raise InvalidRequestError("token", f"must be a string, got {type(token).__name__}")
    if not token.strip():
        raise InvalidRequestError("token", "must not be empty")
    if not _PRINTABLE_ASCII(token):
        # Never echo the token, not even a part of it: say only what kind of character.
        raise InvalidRequestError(
            "token",
            "must be printable ASCII with no whitespace (Fathom's tokens are); it holds"
            f" {_kind_of_bad_character(token)}",
        )
    return Secret(token)


# A token goes into a header as it is: only printable ASCII can be sent unaltered.
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+").fullmatch


def _kind_of_bad_character(text: str) -> str:
    for char in text:
        if char.isspace():
            return "whitespace"
        if not char.isascii():
            return "a non-ASCII character"
        if not char.isprintable():
            return "a control character"
    return "no bad character"  # pragma: no cover - only called once one was found


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    if not isinstance(base_url, str):
        raise InvalidRequestError("base_url", f"must be a string, got {type(base_url).__name__}")
    if not base_url.isascii() or not base_url.isprintable() or _URL_FORBIDDEN(base_url):
        raise InvalidRequestError(
            "base_url",
            "must be printable ASCII with no whitespace or backslash (percent-encode anything"
            f" else), got {base_url!r:.100}",
        )
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequestError(
            "base_url", f"must be an http(s) URL with a host, got {base_url!r}"
        )
    try:
        port = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidRequestError(
            "base_url", f"must have a port from 1 to 65535 if any, got {base_url!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidRequestError(
            "base_url",
            "must not carry a query, a fragment or credentials: the token goes in a header",
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure_http:
        raise InvalidRequestError(
            "base_url",
            "plain http:// would send the API token unencrypted; use https://, a loopback host,"
            " or pass allow_insecure_http=True if you really mean it",
        )
    return base_url.rstrip("/")


def _check_timeout(field: str, value: float | None) -> float | None:
    if value is None:
        return None
    seconds = proto.finite_number(value)
    if seconds is None or seconds <= 0:
        raise InvalidRequestError(
            field, f"must be a finite number of seconds > 0 or None, got {proto.shown(value)}"
        )
    return seconds


@attrs.frozen
class _Config:
    """What a call needs besides the shared transport and gate; ``with_options`` varies it."""

    timeouts: Timeouts
    retry: RetryPolicy


class AsyncClient:
    """An asynchronous client for the Fathom Events API.

    Use it as ``async with AsyncClient() as client:`` so its session is closed,
    or call :meth:`aclose`. One client is meant to live long and be shared by
    every task, whichever asyncio event loop awaits it: it holds one aiohttp
    session per loop (made on first use there, closed when that loop ends),
    and one cap on requests in flight (``max_in_flight``), an optional
    ``rate_limit`` and the cool-down after a 429, shared by all its calls in
    every loop and thread.

    * ``token``: the API token; ``None`` reads ``FATHOM_API_TOKEN``.
    * ``timeout``: seconds one attempt may take in all; ``connect_timeout``
      the part of it spent connecting. ``None`` disables that limit.
    * ``retry``: the :class:`RetryPolicy` (retries are on by default).
    * ``session``: an ``aiohttp.ClientSession`` to use instead of our own; it
      is never closed by us, and every call ends on it as on our own (its
      ``raise_for_status`` and ``auto_decompress`` do not apply to our
      requests, and aiohttp's hidden resend of a GET or DELETE is refused);
      the client then works only in that session's event loop.
    * ``transport``: send through this instead of aiohttp (not with
      ``session``): ``fathom_events.testing.MemoryTransport`` answers in
      memory, for tests; any object with ``async send(request, timeouts)``
      and ``async aclose()`` will do (``fathom_events._seam.AsyncTransport``
      says what they take and give). The client still sends the token in
      each request's headers, refuses an answer over ``max_response_bytes``,
      keeps the token out of errors, turns the transport's other failures
      into :class:`APIConnectionError`, and closes it when it closes.
    * ``max_response_bytes``: an answer bigger than this once decoded (gzip,
      deflate, br, zstd) is refused, not read (4 MiB).
    * ``allow_insecure_http``: permit ``http://`` to a host that is not
      loopback (the token would travel unencrypted).
    * ``clock`` / ``sleep``: a monotonic clock and an async sleep, injectable
      so tests can run retries and rate limits without real waiting.
    """

    def __init__(
        self,
        token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = 30.0,
        *,
        connect_timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 8,
        rate_limit: RateLimit | None = None,
        session: aiohttp.ClientSession | None = None,
        transport: AsyncTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        secret = _read_token(token)
        url = _check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        if type(max_response_bytes) is not int or max_response_bytes < 1:
            raise InvalidRequestError(
                "max_response_bytes", f"must be an int >= 1, got {proto.shown(max_response_bytes)}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidRequestError("retry", f"must be a RetryPolicy, got {proto.shown(retry)}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise InvalidRequestError(
                "rate_limit",
                f"must be a RateLimit such as RateLimit(2000, 3600), got {proto.shown(rate_limit)}",
            )
        for field, value in (("clock", clock), ("sleep", sleep)):
            if value is not None and not callable(value):
                raise InvalidRequestError(field, f"must be callable, got {proto.shown(value)}")
        self._config = _Config(
            Timeouts(
                _check_timeout("timeout", timeout),
                _check_timeout("connect_timeout", connect_timeout),
            ),
            retry or RetryPolicy(),
        )
        self._gate = Gate(
            max_in_flight=max_in_flight,
            rate_limit=rate_limit,
            clock=clock or time.monotonic,
            sleep=sleep or asyncio_sleep,
        )
        self._transport = make_transport(
            transport,
            base_url=url,
            token=secret,
            timeouts=self._config.timeouts,
            session=session,
            max_response_bytes=max_response_bytes,
        )
        self._owns_transport = True
        self.events = AsyncEvents(self._call, self._gate, self._ensure_open)

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._transport.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy this client's calls use."""
        return self._config.retry

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this client (and its ``with_options`` twins) sent."""
        return self._gate.requests_sent

    @property
    def retries(self) -> int:
        """How many of those requests were retries."""
        return self._gate.retries

    @property
    def closed(self) -> bool:
        """True once the client (or the client it was derived from) is closed."""
        return self._transport.closed

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r}, closed={self.closed})"

    __reduce_ex__ = refuse_to_travel("an aiohttp session bound to its event loop")

    def with_options(
        self,
        *,
        max_retries: int | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        retry_ambiguous_creates: bool | None = None,
    ) -> AsyncClient:
        """A client that shares this one's session and limits, with other call options.

        ``retry`` replaces the policy; ``max_retries`` and
        ``retry_ambiguous_creates`` then change that one field of it;
        ``timeout`` is the per-attempt total. Closing the twin does nothing:
        close the original.
        """
        policy = retry if retry is not None else self._config.retry
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        if retry_ambiguous_creates is not None:
            policy = attrs.evolve(policy, retry_ambiguous_creates=retry_ambiguous_creates)
        timeouts = self._config.timeouts
        if timeout is not None:
            timeouts = attrs.evolve(timeouts, total=_check_timeout("timeout", timeout))
        twin = object.__new__(AsyncClient)
        twin._config = _Config(timeouts, policy)
        twin._gate = self._gate
        twin._transport = self._transport
        twin._owns_transport = False
        twin.events = AsyncEvents(twin._call, twin._gate, twin._ensure_open)
        return twin

    async def __aenter__(self) -> Self:
        self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the sessions we own, from any event loop.

        The running loop's session is closed here, another running loop's in
        that loop, and a finished loop's is released. Idempotent; a twin from
        ``with_options`` does nothing.
        """
        if self._owns_transport:
            await self._transport.aclose()

    def _ensure_open(self) -> None:
        """Refuse now if closed, or if this event loop cannot have a session."""
        self._refuse_if_closed()
        self._transport.open()

    def _refuse_if_closed(self) -> None:
        if self._transport.closed:
            raise ClientClosedError("this client is closed; create a new one")

    async def _call(self, request: proto.Request, into: type[T]) -> T:
        # The loop is checked where asyncio is first needed (the send, or a wait in the
        # gate), not here: on Python 3.11 each look at the running loop costs a getpid().
        self._refuse_if_closed()
        config = self._config
        transport = self._transport
        url = transport.base_url + request.target()

        async def attempt(time_left: float | None) -> T:
            if transport.closed:  # closed by another task while this call waited to retry
                raise ClientClosedError("this client was closed while the call was running")
            timeouts = config.timeouts
            if time_left is not None and (timeouts.total is None or time_left < timeouts.total):
                timeouts = attrs.evolve(timeouts, total=max(time_left, 0.001))
            try:
                answer = await transport.send(request, timeouts, url)
            except RuntimeError as exc:
                if isinstance(exc, FathomError):
                    raise
                raise _cut_by(exc, request, url, closed=transport.closed) from exc
            if not 200 <= answer.status < 300:  # a 3xx is never success (nor followed)
                raise proto.error_for(
                    answer,
                    method=request.method,
                    url=url,
                    operation=request.operation,
                    now=time.time(),
                )
            return proto.decode(answer, into, method=request.method, url=url)

        return await call_with_retries(
            attempt,
            operation=request.operation,
            method=request.method,
            url=url,
            policy=config.retry,
            gate=self._gate,
        )


def _cut_by(exc: RuntimeError, request: proto.Request, url: str, *, closed: bool) -> FathomError:
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
            f"the request was broken off by {exc!r} {where}: asyncio objects made in one event"
            " loop were used in another. Keep everything the client is given (session=, trace"
            " hooks, locks) in the loop that awaits it, or let the client make its own session"
        )
    if request.operation not in {proto.Operation.LIST, proto.Operation.GET}:
        error.may_have_been_applied = True
    return error
