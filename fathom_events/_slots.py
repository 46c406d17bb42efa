"""A cap on calls in flight that every event loop and thread of one client shares.

``asyncio.Semaphore`` binds itself to the first loop that waits on it, so one
client awaited from two loops (two ``asyncio.run`` calls, two threads) could
not share it. :class:`Slots` keeps the count under a ``threading.Lock``; a call
that must wait parks a future of its own loop, and whoever frees a slot hands
it straight to the longest waiter, waking it in its loop's thread. Taking a
free slot never touches a loop, so the common case costs one lock round trip.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from ._loops import running_loop

__all__ = ["Slots"]


class _Waiter:
    """One call waiting for a slot, in its own loop."""

    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        # Set under the lock when a slot is handed over: from then on the slot is this
        # waiter's to give back, whatever happens to its future or its task.
        self.granted = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled waiter gives its slot back itself
        future.set_result(None)


class Slots:
    """At most ``limit`` holders at once, from any loop and any thread, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._free = limit
        self._waiters: collections.deque[_Waiter] = collections.deque()

    def try_take(self) -> bool:
        """Take a slot if one is free now (and nobody waits for one); never blocks."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            return False

    async def take(self) -> None:
        """Wait for a slot in the running loop; a cancelled wait leaves no slot taken."""
        waiter = _Waiter(running_loop())
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                granted = waiter.granted
                if not granted and waiter in self._waiters:
                    self._waiters.remove(waiter)
            if granted:  # handed a slot on the way out: pass it on
                self.give_back()
            raise

    def give_back(self) -> None:
        """Free a slot: hand it to the longest waiter whose loop still runs, or keep it free."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.future.done():  # cancelled while waiting; it leaves by itself
                    continue
                try:
                    if waiter.loop is asyncio._get_running_loop():  # noqa: SLF001
                        waiter.future.set_result(None)
                    else:
                        waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                except RuntimeError:  # its loop is closed: nobody is left to wake
                    continue
                waiter.granted = True
                return
            self._free += 1

    @property
    def in_use(self) -> int:
        """How many slots are held or handed over right now."""
        with self._lock:
            return self.limit - self._free
