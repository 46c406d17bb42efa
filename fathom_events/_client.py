"""The asynchronous client: ``AsyncClient``, its ``events`` and ``sites`` and its token."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from . import _protocol as proto
from ._defaults import DEFAULT_BASE_URL
from ._events import AsyncEvents
from ._http._aiohttp import AiohttpTransport
from ._http._sender import Sender
from ._limits import Clock, Limits, RateLimiter, Sleep
from ._logs import LOGGER, switch_on_from_environment
from ._loops import asyncio_sleep
from ._observe._observer import Observer, observer_for
from ._options import (
    AsyncClientOptions,
    ClientOptions,
    refuse_pickle_and_copy,
    same_parameters_as,
)
from ._retry import RetryPolicy, call_with_retries
from ._sites import AsyncSites
from ._token import TokenCache
from .exceptions import ClientClosedError
from .types import TokenInfo

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Self

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "OptionsAndCounters"]

T = TypeVar("T")
logger = logging.getLogger(LOGGER)


def _changes_made(**changes: Any) -> dict[str, Any]:
    """The changes a caller made: ``None`` means "keep", as in ``with_options``."""
    return {name: value for name, value in changes.items() if value is not None}


@attrs.frozen
class _Shared:
    """What a client shares with its ``with_options`` twins: limits, sender, token's answer."""

    limits: Limits
    sender: Sender
    token: TokenCache = attrs.field(factory=TokenCache)
    observer: Observer | None = None

    @classmethod
    def new(cls, options: ClientOptions, session: aiohttp.ClientSession | None = None) -> _Shared:
        """Limits and a sender made to ``options``: through the transport given, or aiohttp's
        (on ``session`` if one is lent). The first client made reads ``FATHOM_EVENTS_LOG``."""
        switch_on_from_environment()
        clock = options.clock or time.monotonic
        sleep = options.sleep or asyncio_sleep
        limits = Limits(
            max_in_flight=options.max_in_flight,
            rate_limit=options.rate_limit,
            clock=clock,
            sleep=sleep,
            limiter=_shared_limiter(options, clock, sleep),
        )
        transport = options.transport
        prepare = None
        if transport is None:
            built_in = AiohttpTransport(
                session=session,
                max_response_bytes=options.max_response_bytes,
                proxy=options.proxy_in_use,
                ssl=options.ssl,
            )
            transport, prepare = built_in, built_in.open
            if (proxy := options.proxy_in_use) is not None:
                logger.info(
                    "requests to %s go through the proxy %s (%s)",
                    options.base_url,
                    proxy.url,
                    proxy.source,
                )
        sender = Sender(
            transport,
            base_url=options.base_url,
            token=options.token,
            max_response_bytes=options.max_response_bytes,
            prepare=prepare,
        )
        observer = observer_for(options.on_event, clock=limits.clock, base_url=options.base_url)
        return cls(limits, sender, observer=observer)


def _shared_limiter(options: ClientOptions, clock: Clock, sleep: Sleep) -> RateLimiter | None:
    """The budget kept in Redis, for a rate limit given a ``redis_url`` (None: in-process)."""
    rate_limit = options.rate_limit
    if rate_limit is None or rate_limit.redis_url is None:
        return None
    from ._redis_limiter import RedisRateLimiter  # noqa: PLC0415 - redis-py only when asked for

    return RedisRateLimiter(rate_limit, token=options.token, clock=clock, sleep=sleep)


class OptionsAndCounters:
    """The base of both faces: what they show of their options, and the counts they share."""

    _options: ClientOptions
    _limits: Limits

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._options.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy this client's calls use."""
        return self._options.retry

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this client (and its ``with_options`` twins) sent."""
        return self._limits.requests_sent

    @property
    def retries(self) -> int:
        """How many of those requests were retries."""
        return self._limits.retries


class AsyncClient(OptionsAndCounters):
    """An asynchronous client for the Fathom Events API.

    What it offers:

    * ``client.events`` (:class:`AsyncEvents`): ``list``, ``get``, ``create``,
      ``update``, ``delete`` and ``paginate`` a site's events, and bulk work
      across sites: ``pull``, ``plan``, ``apply``, ``sync``.
    * ``client.sites`` (:class:`AsyncSites`): ``list``, ``get``, ``paginate``,
      ``every`` and ``ids`` of the account's sites.
    * ``await client.token()``: what the token may do (a :class:`TokenInfo`).
    * ``client.with_options(...)``: a twin with other call options;
      ``requests_sent`` and ``retries`` count what was sent.

    ``base_url`` is where it sends (Fathom's API by default: a fake's in tests).
    Use it as ``async with AsyncClient() as client:`` so its session is closed,
    or call :meth:`aclose`. One client is meant to live long and be shared by
    every task, whichever asyncio event loop awaits it: it holds one aiohttp
    session per loop (made on first use there, closed when that loop ends),
    and one cap on requests in flight (``max_in_flight``), an optional
    ``rate_limit`` and the cool-down after a 429, shared by all its calls in
    every loop and thread.

    * ``token``: the API token; ``None`` reads ``FATHOM_API_TOKEN``.
    * ``base_url``: the API's URL; ``None`` reads ``FATHOM_API_BASE_URL``, and
      without it Fathom's own (``https://api.usefathom.com/v1``).
    * ``timeout``: seconds one attempt may take in all; ``connect_timeout``
      the part of it spent connecting. ``None`` disables that limit.
    * ``retry``: the :class:`RetryPolicy` (retries are on by default).
    * ``max_in_flight``: requests in flight at once, over all calls (8).
    * ``rate_limit``: a :class:`RateLimit` all calls share (none by default),
      "at most N requests per S seconds", each counted from when it is sent
      until S seconds after its answer. Given a ``redis_url``, the budget and
      the cool-down are kept in Redis and shared by every client of the token
      (or of the ``key``) in every process, on every machine; the client's
      connections to Redis close with it. ``max_in_flight`` stays this
      client's own.
    * ``session``: an ``aiohttp.ClientSession`` to use instead of our own; it
      is never closed by us, and every call ends on it as on our own (its
      ``raise_for_status`` and ``auto_decompress`` do not apply to our
      requests, and aiohttp's hidden resend of a GET or DELETE is refused);
      the client then works only in that session's event loop.
    * ``transport``: send through this instead of aiohttp (not with
      ``session``): ``fathom_events.testing.MemoryTransport`` answers in
      memory, for tests; any :class:`~fathom_events.AsyncTransport` will do
      (an object with ``async send(request, timeouts)`` and ``async
      aclose()``: :class:`~fathom_events.AsyncTransport` says what they take
      and give, :class:`~fathom_events.TransportRequest` and
      :class:`~fathom_events.Timeouts` what a request brings). The client
      still builds each request (URL, headers, the token among them), refuses
      an answer over ``max_response_bytes``, keeps the token out of answers
      and errors, turns the transport's other failures into
      :class:`APIConnectionError`, and closes it once when it closes.
    * ``max_response_bytes``: an answer bigger than this once decoded (gzip,
      deflate, br, zstd) is refused, not read (4 MiB).
    * ``allow_insecure_http``: permit ``http://`` to a host that is not
      loopback, or through a proxy that is not (the token would travel
      unencrypted).
    * ``proxy``: send every request through this ``http://`` or ``https://``
      proxy (``user:password@`` allowed: sent as ``Proxy-Authorization``, to
      the proxy only, and never shown); an https:// API is reached through a
      CONNECT tunnel, so the proxy sees neither the token nor the requests.
    * ``trust_env``: without ``proxy``, use the proxy ``HTTPS_PROXY`` (for an
      http:// base URL, ``HTTP_PROXY``) names, unless ``NO_PROXY`` names the
      API's host; read when the client is made. ``.netrc`` is never read.
    * ``ssl``: an ``ssl.SSLContext`` for TLS (a CA of your own, a client
      certificate), such as ``ssl.create_default_context(cafile=...)``; it
      must verify the server. ``proxy``, ``trust_env`` and ``ssl`` are the
      built-in transport's settings: not with ``transport``.
    * ``clock`` / ``sleep``: a monotonic clock and an async sleep, injectable
      so tests can run retries and rate limits without real waiting.
    * ``on_event``: called with a record of each step of each call
      (:class:`CallStarted`, :class:`Waited`, :class:`RequestSent`,
      :class:`AnswerReceived`, :class:`RetryScheduled`, :class:`CallFinished`),
      in the call's own task, as the step happens; keep it quick. What it
      raises is logged (a WARNING the first time, DEBUG after) and changes
      nothing. The blocking :class:`Client` calls it from its event loop's
      thread. Kept by ``with_options`` twins.
    """

    @same_parameters_as(AsyncClientOptions.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = AsyncClientOptions(*args, **kwargs)
        self._setup(options, _Shared.new(options, options.session), owner=True)

    @classmethod
    def _of(cls, options: ClientOptions, shared: _Shared | None = None) -> AsyncClient:
        """A client of checked ``options``: over ``shared`` (then it closes nothing), or its own."""
        client = cls.__new__(cls)
        client._setup(options, shared or _Shared.new(options), owner=shared is None)  # noqa: SLF001
        return client

    def _setup(self, options: ClientOptions, shared: _Shared, *, owner: bool) -> None:
        self._options = options
        self._shared = shared
        self._limits = shared.limits
        self._sender = shared.sender
        self._owns_sender = owner
        self._timeouts = options.timeouts
        self._observer = shared.observer
        self._events = AsyncEvents(self._call, self._limits, self._ensure_open, self.token)
        self._sites = AsyncSites(self._call)

    @property
    def events(self) -> AsyncEvents:
        """The events of your sites: list, get, create, update, delete, paginate; bulk work."""
        return self._events

    @property
    def sites(self) -> AsyncSites:
        """The account's sites, read-only: list, get, paginate, every, ids."""
        return self._sites

    @property
    def closed(self) -> bool:
        """True once the client (or the client it was derived from) is closed."""
        return self._sender.closed

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r}, closed={self.closed})"

    __reduce_ex__ = refuse_pickle_and_copy("an aiohttp session bound to its event loop")

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
        policy = self._options.retry if retry is None else retry
        tuning = _changes_made(
            max_retries=max_retries, retry_ambiguous_creates=retry_ambiguous_creates
        )
        if tuning and isinstance(policy, RetryPolicy):  # anything else: refused just below
            policy = attrs.evolve(policy, **tuning)
        # The twin sends through the original's sender: it keeps the proxy found (from the
        # environment too, which is read once) rather than look again.
        options = attrs.evolve(
            self._options,
            retry=policy,
            proxy=self._options.proxy_in_use,  # type: ignore[arg-type]  # a Proxy, taken back as it is
            **_changes_made(timeout=timeout),
        )
        return AsyncClient._of(options, self._shared)

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
        """Close the sessions we own (and the connections to a shared budget's Redis).

        The running loop's session is closed here, another running loop's in
        that loop, and a finished loop's is released. Idempotent; a twin from
        ``with_options`` does nothing.
        """
        if self._owns_sender:
            try:
                await self._sender.aclose()
            finally:
                await self._limits.aclose()

    async def token(self, *, refresh: bool = False) -> TokenInfo:
        """What the API says of this client's token: name, abilities, dates (never the secret).

        Asked once (``GET /v1/token``) and kept for the client's life, shared
        with its ``with_options`` twins; concurrent first calls share that one
        request. ``refresh=True`` asks again. ``can_read(site_id)``,
        ``can_manage(site_id)`` and ``can_list_sites`` say what the token may do.
        """
        self._refuse_if_closed()
        return await self._shared.token.get(self._ask_token, refresh=refresh)

    async def _ask_token(self) -> TokenInfo:
        return await self._call(proto.TOKEN_REQUEST, TokenInfo)

    def _ensure_open(self) -> None:
        """Refuse now if closed, or if this event loop cannot have a session."""
        self._refuse_if_closed()
        self._sender.open()

    def _refuse_if_closed(self) -> None:
        if self._sender.closed:
            raise ClientClosedError("this client is closed; create a new one")

    async def _call(self, request: proto.Request, into: type[T] | proto.Lenient[T]) -> T:
        # The loop is checked where asyncio is first needed (the send, or a wait in the
        # limits), not here: on Python 3.11 each look at the running loop costs a getpid().
        self._refuse_if_closed()
        return await call_with_retries(
            self._sender,
            request,
            into,
            policy=self._options.retry,
            limits=self._limits,
            timeouts=self._timeouts,
            observer=self._observer,
        )
