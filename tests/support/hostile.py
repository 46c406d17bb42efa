"""A hostile server: raw asyncio sockets on loopback that answer with whatever bytes we choose.

``FakeFathom`` speaks well-formed HTTP through aiohttp.web; the hostile suite needs
answers no well-behaved server would give (bad status lines, lying lengths, bombs,
bodies that never end). :class:`RawServer` reads each request (head and body) and
lets a function decide, per request, what goes back on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future

import attrs


@attrs.frozen
class RawRequest:
    """One request as it arrived: the head's lines, decoded as latin-1, and the body."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


#: What a reply function gives back: bytes to write (then the connection closes), or a
#: coroutine function that writes what it likes and returns when it is done.
Reply = bytes | Callable[[asyncio.StreamWriter], Awaitable[None]]


def http(
    status: int | str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: bool = True,
) -> bytes:
    """A raw HTTP/1.1 answer; ``status`` may be a whole custom reason (``"200 OK"``)."""
    line = status if isinstance(status, str) else f"{status} X"
    head = [f"HTTP/1.1 {line}", "Connection: close"]
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if length and "Content-Length" not in all_headers:
        all_headers["Content-Length"] = str(len(body))
    head.extend(f"{key}: {value}" for key, value in all_headers.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def always(reply: Reply) -> Callable[[RawRequest], Reply]:
    """A reply function giving every request the same ``reply``."""
    return lambda _: reply


def _spaces_compressed(decoded_size: int, wbits: int) -> bytes:
    # Compressed a piece at a time, so a bomb of GiBs never exists decoded here either.
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    piece = b" " * (1 << 20)
    parts = [compressor.compress(piece) for _ in range(decoded_size // len(piece))]
    parts.append(compressor.compress(piece[: decoded_size % len(piece)]))
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(decoded_size: int) -> bytes:
    """A gzip member that inflates to ``decoded_size`` bytes of spaces (JSON whitespace)."""
    return _spaces_compressed(decoded_size, 16 + zlib.MAX_WBITS)


def deflate_bomb(decoded_size: int) -> bytes:
    """A zlib stream (``Content-Encoding: deflate``) inflating to ``decoded_size`` spaces."""
    return _spaces_compressed(decoded_size, zlib.MAX_WBITS)


class RawServer:
    """Serves ``reply(request)`` for each request; ``requests`` records what arrived."""

    def __init__(self, reply: Callable[[RawRequest], Reply]) -> None:
        self._reply = reply
        self.requests: list[RawRequest] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def _read_request(self, reader: asyncio.StreamReader) -> RawRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = tuple(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in lines[1:] if line)
        )
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        return RawRequest(method, target, headers, body, head + body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            reply = self._reply(request)
            if isinstance(reply, bytes):
                writer.write(reply)
                await writer.drain()
            else:
                await reply(writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve on a free loopback port of the running loop; yields the base URL."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            server.close()
            for handler in list(self._handlers):  # a reply that never ends is stopped here
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    @contextlib.contextmanager
    def serve_in_thread(self) -> Iterator[str]:
        """Serve from a loop in a thread of its own, for the blocking client's tests."""
        started: Future[str] = Future()
        stop: asyncio.Event | None = None
        loop: asyncio.AbstractEventLoop | None = None

        async def run() -> None:
            nonlocal stop, loop
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            async with self.serve() as url:
                started.set_result(url)
                await stop.wait()

        thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
        thread.start()
        try:
            yield started.result(timeout=10)
        finally:
            assert loop is not None
            assert stop is not None
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
