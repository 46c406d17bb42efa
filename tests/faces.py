"""A client of either face, called the same way: ``await run(lambda c: c.sites.ids())``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest

from fathom_events import AsyncClient, Client

from .helpers import TOKEN, FakeTime

FACES = ["async", "blocking"]

#: Runs ``fn(client)`` on the face under test and gives its value (awaited if need be).
Run = Callable[[Callable[[Any], Any]], Awaitable[Any]]


class Server(Protocol):
    """A server on loopback: a ``FakeFathom``, or the hostile suite's ``RawServer``."""

    def serve(self) -> contextlib.AbstractAsyncContextManager[str]: ...

    def serve_in_thread(self) -> contextlib.AbstractContextManager[str]: ...


@contextlib.asynccontextmanager
async def opened(face: str, fake: Server, token: str = TOKEN, **options: Any) -> AsyncIterator[Run]:
    """A client of ``face`` on ``fake``; the blocking one is made, called and closed in threads."""
    fake_time = FakeTime()
    settings = {"timeout": 5.0, "clock": fake_time.clock, "sleep": fake_time.sleep, **options}
    if face == "async":
        async with fake.serve() as url, AsyncClient(token, url, **settings) as client:

            async def run_async(fn: Callable[[Any], Any]) -> Any:
                result = fn(client)
                return await result if inspect.isawaitable(result) else result

            yield run_async
        return
    with fake.serve_in_thread() as url:
        blocking = await asyncio.to_thread(functools.partial(Client, token, url, **settings))
        try:

            async def run_blocking(fn: Callable[[Any], Any]) -> Any:
                return await asyncio.to_thread(fn, blocking)

            yield run_blocking
        finally:
            await asyncio.to_thread(blocking.close)


@pytest.fixture(name="face", params=FACES)
def face_fixture(request: pytest.FixtureRequest) -> str:
    """The face under test: "async" or "blocking" (import it to parametrize a module)."""
    face: str = request.param
    return face


async def collect(paginator: Any) -> list[Any]:
    """Every item of a paginator of either face."""
    if hasattr(paginator, "__aiter__"):
        return [item async for item in paginator]
    return await asyncio.to_thread(list, paginator)
