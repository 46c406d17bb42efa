"""The running asyncio loop, asked for with an error that says what works where none runs.

Used wherever asyncio is first needed: the per-loop sessions (``_http``), the
in-flight cap's slots and the client's sleeps.
"""

from __future__ import annotations

import asyncio

from .exceptions import UnsupportedEventLoopError

__all__ = ["NO_ASYNCIO", "asyncio_sleep", "running_loop"]

Loop = asyncio.AbstractEventLoop

NO_ASYNCIO = (
    "AsyncClient runs on asyncio, and no asyncio event loop is running here (trio, or"
    " anyio's trio backend?). Run it under asyncio (anyio.run(main, backend='asyncio')), or"
    " call the blocking Client from a worker thread: await"
    " trio.to_thread.run_sync(client.events.list, site_id)"
)


def running_loop() -> Loop:
    """The running asyncio loop, or :class:`UnsupportedEventLoopError` saying what works."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise UnsupportedEventLoopError(NO_ASYNCIO) from None


async def asyncio_sleep(seconds: float) -> None:
    """``asyncio.sleep``, refusing with what works instead where no asyncio loop runs."""
    running_loop()
    await asyncio.sleep(seconds)
