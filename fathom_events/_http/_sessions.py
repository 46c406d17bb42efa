"""One resource per asyncio event loop (the aiohttp sessions): made there, ended with it.

An aiohttp session (and its pool of connections) belongs to the event loop it
was made in. :class:`PerLoop` keeps one per loop that uses a client, so that a
client made at import serves ``asyncio.run`` after ``asyncio.run``, threads
that each run a loop, a notebook's long-lived loop, and a test runner's loop
per test. Looking up the running loop's resource is one dict lookup.

The end of a loop is noticed through asyncio's own shutdown of async
generators: ``asyncio.run``, ``asyncio.Runner``, ``anyio.run`` and asgiref run
``loop.shutdown_asyncgens()`` before they close a loop. Each resource has a
small watcher, an async generator registered with its loop, whose ``finally``
closes the resource there while the loop still runs; the watchers are kept
alive here (a loop refers to them only weakly), so a client dropped unclosed
still has its sessions closed by their loops' ends. A loop closed without
that step (one managed by hand) is noticed later, when any loop opens a
session, at ``aclose()``, or when the client is collected, and its resource
is then released without touching the dead loop.

:class:`Pinned` is the other kind of source: a resource lent to us (a borrowed
``session=``), bound to its own loop and never closed by us.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import socket
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import AsyncGeneratorType
from typing import Any, Generic, TypeVar, cast

from fathom_events._loops import running_loop
from fathom_events.exceptions import ClientClosedError, UnsupportedEventLoopError

__all__ = ["PerLoop", "Pinned", "close_socket"]

T = TypeVar("T")
Loop = asyncio.AbstractEventLoop
Watcher = AsyncGeneratorType[None, None]
# Seconds aclose() waits for another thread's running loop to close its resource.
_CLOSE_ELSEWHERE_WAIT = 5.0
# Tasks closing a resource in another loop, kept referenced until they are done.
_CLOSING: set[asyncio.Task[None]] = set()

BORROWED_ELSEWHERE = (
    "this AsyncClient was given session=, an aiohttp session, which works only in the event"
    " loop it was made in, and it was awaited from another loop. Make the client without"
    " session= (it then opens a session per event loop by itself), or make the session and"
    " the client in the loop that awaits them"
)


class _Held(Generic[T]):
    """One loop's resource and the watcher that ends it with the loop."""

    __slots__ = ("item", "loop", "watcher")
    watcher: Watcher

    def __init__(self, loop: Loop, item: T) -> None:
        self.loop = loop
        self.item = item


# Every watcher not yet ended, whichever client made it. A loop refers to the generators it
# will shut down only weakly, and a watcher must outlive a client dropped unclosed so that
# its idle loop's shutdown still finds it. A watcher leaves this set when it ends.
_LIVE: set[_Held[Any]] = set()
_LIVE_LOCK = threading.Lock()


def _finish_now(watcher: Watcher) -> None:
    """Run a watcher's ``finally`` here, for a loop that is closed: it does not wait."""
    closing = watcher.aclose()
    try:
        closing.send(None)
    except StopIteration:
        return
    closing.close()  # it wanted to wait on a loop: not for a closed loop, but never hang


def _collected(loop: Loop, watcher: Watcher) -> None:
    # The finalizer of a watcher collected unfinished (at interpreter exit, when _LIVE goes).
    # asyncio's own would schedule the close on the loop, and raise if the loop is closed.
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed in the meantime
            loop.call_soon_threadsafe(loop.create_task, watcher.aclose())
            return
    _finish_now(watcher)


class PerLoop(Generic[T]):
    """One ``T`` per asyncio event loop, from ``make()``; ``close`` or ``release`` ends it.

    ``close(item)`` is awaited in the item's own loop; ``release(item)`` lets go
    of an item whose loop is closed, without that loop.
    """

    def __init__(
        self,
        *,
        make: Callable[[], T],
        close: Callable[[T], Awaitable[None]],
        release: Callable[[T], None],
    ) -> None:
        self._make = make
        self._close = close
        self._release = release
        self._lock = threading.Lock()
        self._items: dict[Loop, T] = {}
        self._held: dict[Loop, _Held[T]] = {}
        self._closed = False
        # Dropped unclosed: end what can be ended now; an idle loop's shutdown ends the rest.
        weakref.finalize(self, _dropped, self._held)

    def get(self) -> T:
        """The running loop's item, made now if this loop has none yet."""
        try:
            return self._items[asyncio.get_running_loop()]
        except (KeyError, RuntimeError):
            return self._open()

    def _open(self) -> T:
        loop = running_loop()
        with self._lock:
            if self._closed:
                raise ClientClosedError("this client is closed; create a new one")
            item = self._items.get(loop)
            if item is not None:
                return item
            held = _Held(loop, self._make())
            held.watcher = _start_watcher(
                _watch(held, weakref.ref(self), self._close, self._release), loop
            )
            self._held[loop] = held
            self._items[loop] = held.item
        with _LIVE_LOCK:
            _LIVE.add(held)
            dead = [other for other in _LIVE if other.loop.is_closed()]
        for gone in dead:  # loops closed by hand, without shutting their generators down
            _finish_now(gone.watcher)
        return held.item

    def _forget(self, held: _Held[T]) -> None:
        with self._lock:
            if self._held.get(held.loop) is held:
                del self._held[held.loop]
                del self._items[held.loop]

    async def aclose(self) -> None:
        """End every item that can be ended now; no loop may make a new one after this.

        The running loop's item is closed here; another running loop's is closed
        in that loop (waiting a few seconds at most); a closed loop's is released.
        A loop that exists but is not running ends its item when it shuts down.
        """
        current = asyncio._get_running_loop()  # noqa: SLF001 - None under trio
        with self._lock:
            self._closed = True
            everything = list(self._held.values())
        elsewhere: list[concurrent.futures.Future[None]] = []
        for held in everything:
            if held.watcher.ag_running:  # being ended already
                continue
            if held.loop is current:
                await held.watcher.aclose()
            elif (ended := _end_from_elsewhere(held)) is not None:
                elsewhere.append(ended)
        if elsewhere and current is not None:
            await asyncio.wait(
                [asyncio.wrap_future(ended) for ended in elsewhere],
                timeout=_CLOSE_ELSEWHERE_WAIT,
            )


def _start_watcher(watcher: AsyncGenerator[None, None], loop: Loop) -> Watcher:
    """Step ``watcher`` to its ``yield``, registering it with the running ``loop``."""
    hooks = sys.get_asyncgen_hooks()
    # The loop's own first-iteration hook registers the watcher, so that the loop's
    # shutdown ends it; ours replaces asyncio's finalizer, which fails on a closed loop.
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=functools.partial(_collected, loop))
    try:
        first_step = watcher.asend(None)
    finally:
        sys.set_asyncgen_hooks(*hooks)
    with contextlib.suppress(StopIteration):  # it runs to its yield without waiting
        first_step.send(None)
    return cast("Watcher", watcher)


async def _watch(
    held: _Held[T],
    owner: weakref.ref[PerLoop[T]],
    close: Callable[[T], Awaitable[None]],
    release: Callable[[T], None],
) -> AsyncGenerator[None, None]:
    # The one place an item is ended, so it is ended once. It refers to its client only
    # weakly: a client dropped unclosed must not be kept alive by its loops.
    try:
        yield
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(held)
        client = owner()
        if client is not None:
            client._forget(held)  # noqa: SLF001
        if held.loop.is_closed():
            release(held.item)
        else:
            await close(held.item)


def _dropped(held: dict[Loop, _Held[Any]]) -> None:
    for one in list(held.values()):
        if not one.watcher.ag_running:
            _end_from_elsewhere(one)


def _end_from_elsewhere(held: _Held[Any]) -> concurrent.futures.Future[None] | None:
    """Start ending ``held`` from outside its loop; a future if that loop runs it now.

    A closed loop's item is released here; a running loop is asked to end it; an
    idle loop (not running, not closed) ends it when it shuts down.
    """
    if held.loop.is_closed():
        _finish_now(held.watcher)
        return None
    if held.loop.is_running():
        return _end_in_its_loop(held.loop, held.watcher)
    return None


def _end_in_its_loop(loop: Loop, watcher: Watcher) -> concurrent.futures.Future[None]:
    """Ask ``loop`` (running in another thread) to end ``watcher``; done when it has."""
    ended: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def end() -> None:
        if not watcher.ag_running:  # else the loop's shutdown is ending it
            await watcher.aclose()

    def done(task: asyncio.Task[None]) -> None:
        _CLOSING.discard(task)
        if not task.cancelled():
            task.exception()  # a failure to close is not worth a log line at exit
        ended.set_result(None)

    def start() -> None:
        # The coroutine is made only once the loop runs this, so a loop that closes
        # first leaves no coroutine never awaited: its watcher then ends with it.
        task = loop.create_task(end())
        _CLOSING.add(task)
        task.add_done_callback(done)

    try:
        loop.call_soon_threadsafe(start)
    except RuntimeError:  # it closed in the meantime
        _finish_now(watcher)
        ended.set_result(None)
    return ended


class Pinned(Generic[T]):
    """A resource lent to us: usable only in its own loop, and never closed by us."""

    def __init__(self, item: T, loop: Loop | None) -> None:
        self._item = item
        self._loop = loop  # None: bound to the first loop that uses it
        self._lock = threading.Lock()

    def get(self) -> T:
        """The item, if the running loop is its own."""
        loop = running_loop()
        if loop is not self._loop:
            with self._lock:
                if self._loop is None:
                    self._loop = loop
            if loop is not self._loop:
                raise UnsupportedEventLoopError(BORROWED_ELSEWHERE)
        return self._item

    async def aclose(self) -> None:
        """Nothing to close: the lender closes what it lent."""


def close_socket(transport: asyncio.BaseTransport | None) -> None:
    """Close the socket under ``transport``, whose event loop is closed, without that loop.

    asyncio cannot close a transport once its loop is closed (``close()``
    schedules the end on the loop), and would report the socket when the
    transport is collected. Close the socket as the loop would have, for
    asyncio's own transports (uvloop's end with their loop), and mark the
    transport closing, so that a stream writer over it (redis-py's) does not
    warn when it is collected either. A ``release`` of :class:`PerLoop` calls
    it for each connection its resource holds.
    """
    sock = getattr(transport, "_sock", None)
    if isinstance(sock, socket.socket):
        sock.close()
        transport._sock = None  # type: ignore[union-attr]  # noqa: SLF001
        transport._closing = True  # type: ignore[union-attr]  # noqa: SLF001
