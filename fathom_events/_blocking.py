"""The blocking ``Client``: the async client driven through one anyio portal.

An aiohttp session belongs to one event loop, so each :class:`Client` starts
one portal (an event loop in a daemon thread) for its whole life and builds its
:class:`AsyncClient` inside it. Every blocking method is made from its async
twin by :func:`blocking`, so each method's logic exists once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import os
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._client import AsyncClient, OptionsAndCounters
from ._events import AsyncEvents
from ._options import ClientOptions, refuse_pickle_and_copy, same_parameters_as
from ._pagination import AsyncPaginator, PageLike, T
from ._sites import AsyncSites
from .exceptions import ClientClosedError, UnsupportedEventLoopError
from .types import Event, Site

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Client", "Events", "Paginator", "Sites", "blocking", "blocking_of"]

P = ParamSpec("P")
_UNWIND_TIMEOUT = 5.0  # seconds an interrupted call may take to unwind in the portal
R = TypeVar("R")
A = TypeVar("A")


def _backend_options() -> dict[str, Any]:
    # uvloop makes each hop into the portal cheaper; it is optional.
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return {}
    return {"use_uvloop": True}


class _Portal:
    """One portal for one client's life; knows the process it was started in.

    It runs the portal's loop in a thread of its own rather than through
    ``start_blocking_portal``: that context manager is a generator, and in a
    forked child, where the loop thread no longer exists, collecting it runs
    its ``finally``, which waits for that thread forever (at the latest when
    the child exits).
    """

    def __init__(self) -> None:
        started: Future[BlockingPortal] = Future()
        self._loop: asyncio.AbstractEventLoop

        async def serve() -> None:
            async with BlockingPortal() as portal:
                self._loop = asyncio.get_running_loop()
                started.set_result(portal)
                await portal.sleep_until_stopped()

        def run_loop() -> None:
            try:
                anyio.run(serve, backend="asyncio", backend_options=_backend_options())
            except BaseException as exc:
                if started.done():
                    raise
                started.set_exception(exc)

        self._thread = threading.Thread(target=run_loop, name="fathom-events-portal", daemon=True)
        self._thread.start()
        self.portal = started.result()
        self.pid = os.getpid()
        self.thread_id: int | None = self._thread.ident
        # The calls in flight, so that closing can cancel them before the session goes.
        self._lock = threading.Lock()
        self._closing = False
        self._in_flight: set[Future[Any]] = set()

    def run(self, fn: Callable[[], Awaitable[R]]) -> R:
        """Run ``fn()`` in the portal and wait; an interrupt here cancels it there."""
        if os.getpid() != self.pid:
            raise ClientClosedError(
                "this Client was created in another process (before a fork); its event loop"
                " thread does not exist here: create a new Client in this process"
            )
        finished = threading.Event()

        async def tracked() -> R:
            try:
                return await fn()
            finally:
                finished.set()

        with self._lock:
            if self._closing:
                raise ClientClosedError("this client is closed; create a new one")
            # The portal's loop, entered directly: one thread round trip per call where
            # ``portal.start_task_soon`` makes two. The portal still owns the loop, its
            # thread and their shutdown. Kept: without it W1 blocking is 13-18% slower.
            call = tracked()
            try:
                future = asyncio.run_coroutine_threadsafe(call, self._loop)
            except RuntimeError:  # the loop has ended under us
                call.close()
                raise ClientClosedError("this client is closed; create a new one") from None
            self._in_flight.add(future)
        try:
            return future.result()
        except FutureCancelledError:
            raise ClientClosedError("the client was closed while this call was running") from None
        except BaseException:
            # KeyboardInterrupt (or any other escape) in the waiting thread: cancel the
            # request inside the portal, and wait for it to unwind, so that when the
            # interrupt reaches the caller nothing is left running and any report the
            # call was filling says it was cut short.
            future.cancel()
            finished.wait(_UNWIND_TIMEOUT)
            raise
        finally:
            with self._lock:
                self._in_flight.discard(future)

    def close(self, aclose: Callable[[], Awaitable[None]]) -> None:
        """Cancel the calls in flight, run ``aclose`` in the portal, then stop its thread."""
        with self._lock:
            self._closing = True
            in_flight = list(self._in_flight)
        # Cancelled first: a call left running would retry on the closed session and
        # fail with aiohttp's bare RuntimeError instead of ClientClosedError.
        for future in in_flight:
            future.cancel()
        try:
            self.portal.call(aclose)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self.portal.call(self.portal.stop)
            self._thread.join()


def _finalize(portal: _Portal, client: AsyncClient, description: str) -> None:
    # Runs when a Client is garbage-collected unclosed (and at exit for one never closed).
    # The ResourceWarning is issued here, not in __del__: for a client in a reference
    # cycle (it is in one, with its Events) the collector runs this callback first.
    try:
        if os.getpid() != portal.pid:
            return
        if threading.get_ident() == portal.thread_id:
            # Collected on the portal's own thread, which cannot wait for itself.
            threading.Thread(
                target=portal.close, args=(client.aclose,), name="fathom-events-close"
            ).start()
        else:
            portal.close(client.aclose)
    finally:
        warnings.warn(
            f"unclosed {description}: use 'with Client() as client:' or call close()",
            ResourceWarning,
            stacklevel=1,
        )


def _refuse_on_its_thread(portal: _Portal) -> None:
    """Refuse a call made on the portal's own thread (from a callback the client runs there).

    That thread runs the client's calls: a call made from it would wait for
    itself for good, and every other thread's call would wait behind it.
    """
    if threading.get_ident() == portal.thread_id:
        raise UnsupportedEventLoopError(
            "this Client was called from its own event loop thread (from a callback it runs,"
            " such as on_progress or on_event), where the call would wait for itself for good:"
            " keep what you need in the callback and call the client after the call returns (or"
            " from a thread the callback does not wait for)"
        )


class _Face(Protocol):
    """A blocking face: a resource (``client.events``) or the client itself."""

    @property
    def _client(self) -> Client: ...


def blocking_of(
    method: Callable[Concatenate[A, P], Awaitable[R]], resource: Callable[[AsyncClient], A]
) -> Callable[Concatenate[_Face, P], R]:
    """The blocking twin of ``method`` of the async ``resource(client)``: same name and docs.

    A deprecated method (PEP 702 ``__deprecated__``) warns here, in the
    caller's thread, where warning filters and the stack level make sense.
    """
    deprecation: str | None = getattr(method, "__deprecated__", None)
    target: Callable[Concatenate[A, P], Awaitable[R]] = (
        method.__wrapped__  # type: ignore[attr-defined]
        if deprecation
        else method
    )

    @functools.wraps(method)
    def twin(self: _Face, /, *args: P.args, **kwargs: P.kwargs) -> R:
        client = self._client
        portal = client._portal()  # noqa: SLF001 - a closed client refuses before warning
        if deprecation:
            warnings.warn(deprecation, DeprecationWarning, stacklevel=2)
        return portal.run(functools.partial(target, resource(client._async), *args, **kwargs))  # noqa: SLF001

    return twin


_EVENTS: Callable[[AsyncClient], AsyncEvents] = operator.attrgetter("events")
_SITES: Callable[[AsyncClient], AsyncSites] = operator.attrgetter("sites")


def _client_as_resource(client: AsyncClient) -> AsyncClient:
    """For the client's own methods (``token``): the resource is the async client itself."""
    return client


def blocking(
    method: Callable[Concatenate[AsyncEvents, P], Awaitable[R]],
) -> Callable[Concatenate[_Face, P], R]:
    """The blocking twin of an ``AsyncEvents`` method: see :func:`blocking_of`."""
    return blocking_of(method, _EVENTS)


class Paginator(Generic[T]):
    """The blocking face of :class:`~fathom_events.AsyncPaginator`, made by ``paginate()``.

    ``for item in paginator`` yields every item; ``for page in
    paginator.pages()`` yields the pages. Each page is one portal call; its
    items are then yielded in your thread.
    """

    def __init__(self, client: Client, paginator: AsyncPaginator[T]) -> None:
        self._client = client
        self._paginator = paginator

    def pages(self) -> Iterator[PageLike[T]]:
        """Yield each page as it is fetched (one request each)."""
        walker = self._paginator.walker()
        while not walker.done:  # known here, so the walk's end costs no portal call
            page = self._client._portal().run(walker.next_page)  # noqa: SLF001
            if page is None:
                return
            yield page

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data


class Events:
    """The events of your sites, blocking: ``client.events``. See :class:`AsyncEvents`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    list = blocking(AsyncEvents.list)
    get = blocking(AsyncEvents.get)
    create = blocking(AsyncEvents.create)
    update = blocking(AsyncEvents.update)
    delete = blocking(AsyncEvents.delete)
    wipe = blocking(AsyncEvents.wipe)
    pull = blocking(AsyncEvents.pull)
    plan = blocking(AsyncEvents.plan)
    apply = blocking(AsyncEvents.apply)
    sync = blocking(AsyncEvents.sync)

    def paginate(
        self,
        site_id: str,
        page_size: int = 100,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Paginator[Event]:
        # Building the paginator only checks input and sends nothing, so it runs here.
        async_events = self._client._async.events  # noqa: SLF001
        return Paginator(
            self._client, async_events.paginate(site_id, page_size, starting_after, ending_before)
        )

    paginate.__doc__ = AsyncEvents.paginate.__doc__


class Sites:
    """The account's sites, read-only and blocking: ``client.sites``. See :class:`AsyncSites`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    list = blocking_of(AsyncSites.list, _SITES)
    get = blocking_of(AsyncSites.get, _SITES)
    ids = blocking_of(AsyncSites.ids, _SITES)
    every = blocking_of(AsyncSites.every, _SITES)

    def paginate(
        self,
        page_size: int = 100,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Paginator[Site]:
        # Building the paginator only checks input and sends nothing, so it runs here.
        async_sites = self._client._async.sites  # noqa: SLF001
        return Paginator(
            self._client, async_sites.paginate(page_size, starting_after, ending_before)
        )

    paginate.__doc__ = AsyncSites.paginate.__doc__


class Client(OptionsAndCounters):
    """A blocking client for the Fathom Events API, with the same methods as :class:`AsyncClient`.

    What it offers, each method its async twin's without ``async``:

    * ``client.events`` (:class:`Events`): ``list``, ``get``, ``create``,
      ``update``, ``delete`` and ``paginate`` a site's events, and bulk work
      across sites: ``pull``, ``plan``, ``apply``, ``sync``.
    * ``client.sites`` (:class:`Sites`): ``list``, ``get``, ``paginate``,
      ``every`` and ``ids`` of the account's sites.
    * ``client.token()``: what the token may do (a :class:`TokenInfo`).
    * ``client.with_options(...)``: a twin with other call options;
      ``requests_sent`` and ``retries`` count what was sent.

    ``with Client() as client:`` or call :meth:`close`. Its parameters are
    :class:`AsyncClient`'s, and mean the same: ``token``, ``base_url``,
    ``timeout``, ``connect_timeout``, ``retry``, ``max_in_flight``,
    ``rate_limit``, ``transport``, ``max_response_bytes``,
    ``allow_insecure_http``, ``proxy``, ``trust_env``, ``ssl``, ``clock``,
    ``sleep`` and ``on_event`` (not ``session``: an aiohttp session belongs to
    one event loop, and this client runs its own). It calls ``on_event`` from
    its event loop's thread, where calling the client is refused.
    It is safe to share one client between threads.

    Each client runs an event loop in a background thread and blocks the
    calling thread while a request runs. Called from code that is itself
    running an event loop (Jupyter, an async web framework) it works, but it
    blocks that loop for the length of each call: use :class:`AsyncClient`
    there. After ``os.fork()`` a client made in the parent raises
    :class:`ClientClosedError` in the child: make a new one there.
    """

    @same_parameters_as(ClientOptions.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = ClientOptions(*args, **kwargs)  # every check here, before a thread is started
        portal = _Portal()

        async def start() -> AsyncClient:
            client = AsyncClient._of(options)  # noqa: SLF001
            await client.__aenter__()
            return client

        self._setup(portal.run(start), portal, owner=True)

    @classmethod
    def _over(cls, client: AsyncClient, portal: _Portal) -> Client:
        """A twin: the blocking face of ``client``, in ``portal``; it closes nothing."""
        twin = cls.__new__(cls)
        twin._setup(client, portal, owner=False)  # noqa: SLF001
        return twin

    def _setup(self, client: AsyncClient, portal: _Portal, *, owner: bool) -> None:
        self._async = client
        # The blocking face shows the options and counters of the client it drives.
        self._options = client._options  # noqa: SLF001
        self._limits = client._limits  # noqa: SLF001
        self.__portal: _Portal | None = portal
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = (
            weakref.finalize(self, _finalize, portal, client, f"Client(base_url={self.base_url!r})")
            if owner
            else None
        )
        self._events = Events(self)
        self._sites = Sites(self)

    @property
    def events(self) -> Events:
        """The events of your sites: list, get, create, update, delete, paginate; bulk work."""
        return self._events

    @property
    def sites(self) -> Sites:
        """The account's sites, read-only: list, get, paginate, every, ids."""
        return self._sites

    @property
    def _client(self) -> Client:
        # What a blocking twin reads to reach its client: here, the client itself.
        return self

    token = blocking_of(AsyncClient.token, _client_as_resource)

    def _portal(self) -> _Portal:
        """The portal every call goes through, once the call may be made from this thread."""
        portal = self.__portal
        if portal is None:
            raise ClientClosedError("this client is closed; create a new one")
        _refuse_on_its_thread(portal)
        return portal

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (on this client, or the one it was derived from)."""
        return self.__portal is None or self._async.closed

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, closed={self.closed})"

    __reduce_ex__ = refuse_pickle_and_copy("an event loop thread, an aiohttp session")

    @same_parameters_as(AsyncClient.with_options)
    def with_options(self, *args: Any, **kwargs: Any) -> Client:
        """A client sharing this one's thread, session and limits, with other call options.

        ``max_retries``, ``timeout``, ``retry`` and ``retry_ambiguous_creates``
        mean what they mean to :meth:`AsyncClient.with_options`. Closing the
        twin does nothing: close the original, which ends the twin too.
        """
        return Client._over(self._async.with_options(*args, **kwargs), self._portal())

    def close(self) -> None:
        """Close the session and stop the portal's thread. Idempotent; a twin does nothing."""
        if self._finalizer is None:
            return
        if (open_portal := self.__portal) is not None:
            _refuse_on_its_thread(open_portal)
        with self._lock:
            portal, self.__portal = self.__portal, None
        if portal is None:
            return
        self._finalizer.detach()
        if os.getpid() != portal.pid:
            return
        portal.close(self._async.aclose)

    def __enter__(self) -> Self:
        self._portal()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
