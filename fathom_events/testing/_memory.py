"""`MemoryTransport`: a client's requests answered in memory, with no socket."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Protocol

import anyio

from fathom_events.testing._recording import RecordedRequest, record_sent
from fathom_events.testing._server import FakeFathom

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    # What a handler answers: the status, the headers and the body.
    Reply = tuple[int, Mapping[str, str], bytes]
    Handler = Callable[[RecordedRequest], Reply | Awaitable[Reply]]


# What a client's transport is handed: the parts of fathom_events.TransportRequest and
# Timeouts it reads. The testing package imports nothing of the client (so that the fake
# cannot learn from it), so it names them itself; tests/http/test_sender.py has the type
# checker confirm that MemoryTransport is a fathom_events.AsyncTransport.
class _Sent(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes | None: ...


class _Limits(Protocol):
    @property
    def total(self) -> float | None: ...


class MemoryTransport:
    """An `AsyncTransport` for `AsyncClient(transport=...)` (or `Client`) answering in memory.

        MemoryTransport(fake)      # a FakeFathom's answers: fake.answer
        MemoryTransport(handler)   # your function's

    A handler takes the request as a `RecordedRequest` (method, decoded
    `path`, `query`, lower-cased `headers`, `body`, parsed `json`) and returns
    `(status, headers, body)`: an int, a mapping and bytes. It may be async;
    an awaited answer is bounded by the client's per-attempt `timeout`. What
    it raises is the client's to report: `TimeoutError` as `APITimeoutError`,
    anything else (not a `FathomError`) as `APIConnectionError`.

    Everything above HTTP is real: the client builds, sends (token and all),
    retries and decodes as it does over aiohttp; only the socket is gone, so
    nothing is compressed, streamed or size-checked on the way.
    """

    def __init__(self, answer: FakeFathom | Handler) -> None:
        handler = answer.answer if isinstance(answer, FakeFathom) else answer
        if not callable(handler):
            raise TypeError(
                f"MemoryTransport takes a FakeFathom or a handler function; got {answer!r:.100}"
            )
        self._answer: Handler = handler
        self._shown = answer
        #: True once the client it was given to has closed (it closes its transport).
        self.closed = False

    def __repr__(self) -> str:
        return f"MemoryTransport({self._shown!r:.100}, closed={self.closed})"

    async def send(
        self, request: _Sent, timeouts: _Limits, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Answer one request: the handler's `(status, headers, body)`.

        An answer that is awaited (a fake's, with its latency and faults) must
        come within `timeouts.total`, or `TimeoutError` is raised, as over a network.
        """
        recorded = record_sent(request.method, request.url, request.headers, request.body)
        result = self._answer(recorded)
        if inspect.isawaitable(result):
            with anyio.fail_after(timeouts.total):
                result = await result
        if not (isinstance(result, tuple) and len(result) == 3):
            raise TypeError(
                f"a MemoryTransport handler returns (status, headers, body); got {result!r:.100}"
            )
        return result

    async def aclose(self) -> None:
        """Nothing to let go; marks the transport closed."""
        self.closed = True
