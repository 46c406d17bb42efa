"""One harness for the suite: a client of either face, over either transport, called the same way.

A :class:`Face` says how a test opens a client. Its ``kind`` is ``"async"`` (an
``AsyncClient`` awaited in the test's own event loop) or ``"blocking"`` (a
``Client`` made, called and closed in worker threads, as plain code would, with no
event loop of its own; each call is awaited there). Its ``transport`` is
``"aiohttp"`` (the built-in one) or ``"user"``: the transport that the docs'
"Writing your own transport" (docs/reference/transport.md) defines, taken from
that page itself, so that the docs cannot drift from what is tested.

It serves two styles of test:

* ``opened(face, server, ...)`` serves ``server`` and yields ``run``, which calls
  any method of the face's client: ``await run(lambda c: c.sites.ids())``;
* the client-case table (client_cases.py) takes a :class:`Served` (a face, the
  ``fake`` fixture served for it, fake time and the policy) and awaits
  ``client.events.list(...)`` on either face alike: a blocking client's
  ``events`` are called in a worker thread (:class:`ThreadedEvents`).

The ``face`` fixture is both faces over aiohttp (ids ``async`` and ``blocking``); a
module about what comes back from a server imports :func:`every_face_fixture`
instead, which adds both faces over the user transport (``async-user`` and
``blocking-user``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar

import attrs
import pytest

from fathom_events import AsyncClient, AsyncEvents, AsyncTransport, Client, Events, RetryPolicy
from fathom_events.testing import FakeFathom
from tests.support.helpers import TOKEN, FakeTime
from tests.support.readme import TRANSPORT_PAGE, python_blocks

P = ParamSpec("P")
R = TypeVar("R")

#: The docs' page whose one Python block defines a transport on another HTTP stack: its title.
USER_TRANSPORT_SECTION = "Writing your own transport"

#: The built-in transport, or the docs' own ("Writing your own transport").
TransportKind = Literal["aiohttp", "user"]
#: Runs ``fn(client)`` on the face under test and gives its value (awaited if need be).
Run = Callable[[Callable[[Any], Any]], Awaitable[Any]]


class Server(Protocol):
    """A server on loopback: a ``FakeFathom``, or the hostile suite's ``RawServer``."""

    def serve(self) -> contextlib.AbstractAsyncContextManager[str]: ...

    def serve_in_thread(self) -> contextlib.AbstractContextManager[str]: ...


# -- the user's transport, from the docs ---------------------------------------------


@functools.cache
def user_transport_class() -> Callable[[], AsyncTransport]:
    """The class the docs' "Writing your own transport" defines, run from that page itself.

    The page must hold exactly one Python block, defining exactly one class with
    ``send`` and ``aclose``; the block is run as a module that is not ``__main__``.
    """
    blocks = python_blocks(TRANSPORT_PAGE)
    (block,) = [block for block in blocks if block.section == USER_TRANSPORT_SECTION]
    names = block.run({"__name__": "docs_transport"})
    classes: list[Any] = [
        value
        for value in names.values()
        if inspect.isclass(value)
        and value.__module__ == "docs_transport"
        and callable(getattr(value, "send", None))
        and callable(getattr(value, "aclose", None))
    ]
    (found,) = classes
    made: Callable[[], AsyncTransport] = found  # its send and aclose were checked above
    return made


def user_transport() -> AsyncTransport:
    """A new transport of the docs' class (a client closes the transport it is given)."""
    return user_transport_class()()


def over(transport: TransportKind) -> AsyncTransport | None:
    """What to pass as ``transport=``: None for the built-in one, else a new docs transport."""
    return user_transport() if transport == "user" else None


# -- a blocking client's events, awaited -----------------------------------------------


def in_a_thread(
    method: Callable[Concatenate[Events, P], R],
) -> Callable[Concatenate[ThreadedEvents, P], Coroutine[Any, Any, R]]:
    """A blocking method, called in a worker thread and awaited."""

    async def call(self: ThreadedEvents, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self.blocking, *args, **kwargs)

    return call


class ThreadedEvents:
    """A blocking client's ``events``, each call made in a worker thread."""

    def __init__(self, blocking: Events) -> None:
        self.blocking = blocking

    list = in_a_thread(Events.list)
    get = in_a_thread(Events.get)
    create = in_a_thread(Events.create)
    update = in_a_thread(Events.update)
    delete = in_a_thread(Events.delete)
    wipe = in_a_thread(Events.wipe)


# -- the faces ---------------------------------------------------------------------------


@attrs.frozen
class Opened:
    """A client of either face, as the tests use it."""

    client: AsyncClient | Client
    events: AsyncEvents | ThreadedEvents  # awaited on either face
    run: Run  # any call on the client: ``await run(lambda c: c.sites.ids())``
    reprs: Callable[[], list[str]]  # the client's repr, and those of the parts it holds

    @property
    def base_url(self) -> str:
        return self.client.base_url


@attrs.frozen
class Face:
    """How a test opens a client: which face, over which transport."""

    kind: Literal["async", "blocking"]
    transport: TransportKind = "aiohttp"

    @property
    def id(self) -> str:
        """The test id: ``async``, ``blocking``, ``async-user`` or ``blocking-user``."""
        return self.kind if self.transport == "aiohttp" else f"{self.kind}-{self.transport}"

    def serve(self, server: Server) -> contextlib.AbstractAsyncContextManager[str]:
        """Serve ``server`` where this face's client reaches it: the test's loop, or a thread."""
        if self.kind == "async":
            return server.serve()
        return _in_a_thread(server)

    @contextlib.asynccontextmanager
    async def open(
        self, token: str, base_url: str | None, /, **options: Any
    ) -> AsyncIterator[Opened]:
        """A client of this face and transport; closed (in a worker thread if blocking) after."""
        if self.transport == "user":
            options = {"transport": user_transport(), **options}
        if self.kind == "async":
            async with AsyncClient(token, base_url, **options) as client:

                async def run_async(fn: Callable[[Any], Any]) -> Any:
                    result = fn(client)
                    return await result if inspect.isawaitable(result) else result

                yield Opened(
                    client,
                    client.events,
                    run_async,
                    lambda: [repr(client), repr(client._sender), repr(client.events)],
                )
            return
        blocking = await asyncio.to_thread(functools.partial(Client, token, base_url, **options))
        try:

            async def run_blocking(fn: Callable[[Any], Any]) -> Any:
                return await asyncio.to_thread(fn, blocking)

            yield Opened(
                blocking,
                ThreadedEvents(blocking.events),
                run_blocking,
                lambda: [repr(blocking), repr(blocking.events), repr(blocking._async)],
            )
        finally:
            await asyncio.to_thread(blocking.close)

    @contextlib.asynccontextmanager
    async def opened(
        self, server: Server, token: str = TOKEN, **options: Any
    ) -> AsyncIterator[Opened]:
        """``server`` served, and a client of this face on it with fake time and a 5 s timeout."""
        fake_time = FakeTime()
        settings = {"timeout": 5.0, "clock": fake_time.clock, "sleep": fake_time.sleep, **options}
        async with self.serve(server) as url, self.open(token, url, **settings) as client:
            yield client


@contextlib.asynccontextmanager
async def _in_a_thread(server: Server) -> AsyncIterator[str]:
    with server.serve_in_thread() as url:
        yield url


ASYNC = Face("async")
BLOCKING = Face("blocking")
#: Both faces over the built-in transport.
FACES = [ASYNC, BLOCKING]
#: Both faces over the built-in transport and over the docs'.
EVERY_FACE = [*FACES, Face("async", "user"), Face("blocking", "user")]
TRANSPORTS: list[TransportKind] = ["aiohttp", "user"]


@contextlib.asynccontextmanager
async def opened(
    face: Face, server: Server, token: str = TOKEN, **options: Any
) -> AsyncIterator[Run]:
    """A client of ``face`` on ``server`` (see :meth:`Face.opened`), as its ``run``."""
    async with face.opened(server, token, **options) as client:
        yield client.run


@pytest.fixture(name="face", params=FACES, ids=lambda face: face.id)
def face_fixture(request: pytest.FixtureRequest) -> Face:
    """The face under test, over aiohttp (import it to parametrize a module)."""
    face: Face = request.param
    return face


@pytest.fixture(name="face", params=EVERY_FACE, ids=lambda face: face.id)
def every_face_fixture(request: pytest.FixtureRequest) -> Face:
    """The face under test, over aiohttp and over the docs' transport (import it instead)."""
    face: Face = request.param
    return face


@attrs.frozen
class Served:
    """A face, and the ``fake`` fixture served for it: what the client-case table's cases take."""

    face: Face
    fake: FakeFathom
    url: str  # where `fake` is served
    fake_time: FakeTime
    policy: RetryPolicy

    def open(
        self, token: str, base_url: str, /, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[Opened]:
        """A client of the face: see :meth:`Face.open`."""
        return self.face.open(token, base_url, **options)

    def serve(self, server: Server) -> contextlib.AbstractAsyncContextManager[str]:
        """Another server, served for the face: see :meth:`Face.serve`."""
        return self.face.serve(server)

    def client(self) -> contextlib.AbstractAsyncContextManager[Opened]:
        """The tests' usual client: the fake's token and URL, fake time, the policy fixture."""
        return self.open(
            TOKEN,
            self.url,
            timeout=5.0,
            retry=self.policy,
            clock=self.fake_time.clock,
            sleep=self.fake_time.sleep,
        )


async def collect(paginator: Any) -> list[Any]:
    """Every item of a paginator of either face."""
    if hasattr(paginator, "__aiter__"):
        return [item async for item in paginator]
    return await asyncio.to_thread(list, paginator)
