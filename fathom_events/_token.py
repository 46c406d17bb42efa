"""The token as a resource: what ``GET /v1/token`` says of it, asked once per client.

:class:`TokenCache` holds that answer for the client's life, shared with its
``with_options`` twins; the client asks for it through its call like any other
request (``AsyncClient.token``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from .types import TokenInfo

__all__ = ["TokenCache"]


def _being_cancelled() -> bool:
    """Whether the running task has been asked to stop (always False before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling and cancelling())


class TokenCache:
    """What ``GET /v1/token`` answered, asked once and kept for the client's life.

    Calls that find no answer yet, in one event loop, share one request: the
    first sends it and the others wait for its answer (a failure is not
    kept: the next call asks again). ``refresh`` asks again, or joins a
    request already in flight. Loops of their own each send their own.
    """

    def __init__(self) -> None:
        self._value: TokenInfo | None = None
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, asyncio.Future[TokenInfo]] = {}

    async def get(self, ask: Callable[[], Awaitable[TokenInfo]], *, refresh: bool) -> TokenInfo:
        """The cached answer, or ``await ask()`` (once for every caller waiting on it)."""
        while True:
            if not refresh and (value := self._value) is not None:
                return value
            loop = asyncio.get_running_loop()
            with self._lock:
                waiting = self._pending.get(loop)
                if waiting is None:
                    mine = self._pending[loop] = loop.create_future()
            if waiting is None:
                return await self._ask(ask, loop, mine)
            try:
                return await asyncio.shield(waiting)
            except asyncio.CancelledError:
                if not waiting.cancelled() or _being_cancelled():
                    raise
                # The caller that was asking was cancelled, not us: ask ourselves.

    async def _ask(
        self,
        ask: Callable[[], Awaitable[TokenInfo]],
        loop: asyncio.AbstractEventLoop,
        mine: asyncio.Future[TokenInfo],
    ) -> TokenInfo:
        try:
            value = await ask()
        except BaseException as error:
            with self._lock:
                del self._pending[loop]
            if isinstance(error, Exception):
                mine.set_exception(error)
                mine.exception()  # retrieved: no "never retrieved" log when no one waits
            else:
                mine.cancel()
            raise
        self._value = value
        with self._lock:
            del self._pending[loop]
        mine.set_result(value)
        return value
