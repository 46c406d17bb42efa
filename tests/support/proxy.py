"""A real HTTP proxy on loopback, for the proxy tests: it tunnels CONNECT and forwards plain http.

:class:`Proxy` answers ``CONNECT host:port`` with a tunnel (bytes both ways,
unread), and a plain-http request in absolute form (``GET http://host/...``)
by forwarding it, and each later one on that connection, in origin form
without its ``Proxy-Authorization``, as proxies do. With ``credentials`` it
answers 407 to a request without the matching ``Proxy-Authorization`` (with
``echo``, a hostile proxy, quoting the one it got in its reason and body). With
``ssl`` it is an https:// proxy (TLS between the client and it). It records
what it saw (:class:`Seen`): each request line and its headers, and every
byte a client sent inside a tunnel.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl as ssl_module
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import attrs

from fathom_events.testing._server import ThreadedServer

__all__ = ["Proxy", "Seen"]

_HOP_BY_HOP = {"proxy-authorization", "proxy-connection"}


@attrs.define
class Seen:
    """What a proxy saw: each request line, its headers, and the bytes sent in tunnels."""

    lines: list[str] = attrs.Factory(list)
    headers: list[dict[str, str]] = attrs.Factory(list)
    tunnelled: bytearray = attrs.Factory(bytearray)


def _head(data: bytes) -> tuple[str, dict[str, str]]:
    """A request head's line, and its headers (names in lower case)."""
    line, *rest = data.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for field in rest:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, into: bytearray | None = None
) -> None:
    """Copy ``reader`` to ``writer`` until either ends (recording the bytes ``into``)."""
    with contextlib.suppress(ConnectionError, ssl_module.SSLError):
        while data := await reader.read(65536):
            if into is not None:
                into += data
            writer.write(data)
            await writer.drain()
    writer.close()


class Proxy:
    """An HTTP proxy on 127.0.0.1 that records what it sees (see the module's docstring)."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        echo: bool = False,
    ) -> None:
        self.seen = Seen()
        self._echo = echo
        self._ssl = ssl
        self._expected = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
        self._writers: set[asyncio.StreamWriter] = set()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve on a free port of 127.0.0.1; yield the proxy's URL (no credentials)."""
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=self._ssl)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"{'http' if self._ssl is None else 'https'}://127.0.0.1:{port}"
        finally:
            server.close()
            for writer in list(self._writers):  # so that no connection outlives the proxy
                writer.close()
            await server.wait_closed()

    @contextlib.contextmanager
    def serve_in_thread(self) -> Iterator[str]:
        """Like ``serve()``, with the proxy's event loop in a background thread."""
        server = ThreadedServer(self.serve, name="Proxy")
        url = server.start()
        try:
            yield url
        finally:
            server.stop()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            line, headers = await self._read_head(reader)
            if self._expected is not None and headers.get("proxy-authorization") != self._expected:
                given = headers.get("proxy-authorization", "") if self._echo else ""
                writer.write(
                    f"HTTP/1.1 407 Proxy Authentication Required {given}\r\n"
                    'Proxy-Authenticate: Basic realm="test"\r\n'
                    f"Content-Length: {len(given)}\r\nConnection: close\r\n\r\n{given}".encode()
                )
                await writer.drain()
                return
            method, target, _ = line.split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                self._writers.add(upstream)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(
                    _pipe(reader, upstream, self.seen.tunnelled), _pipe(up_reader, writer)
                )
                return
            parts = urlsplit(target)
            up_reader, upstream = await asyncio.open_connection(parts.hostname, parts.port or 80)
            self._writers.add(upstream)
            await asyncio.gather(
                self._forward(line, headers, reader, upstream), _pipe(up_reader, writer)
            )
        except (asyncio.IncompleteReadError, ConnectionError, ssl_module.SSLError):
            pass
        finally:
            for each in (writer, upstream):
                if each is not None:
                    each.close()
                    self._writers.discard(each)

    async def _read_head(self, reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
        line, headers = _head(await reader.readuntil(b"\r\n\r\n"))
        self.seen.lines.append(line)
        self.seen.headers.append(headers)
        return line, headers

    async def _forward(
        self,
        line: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
    ) -> None:
        """Forward this plain-http request and each next one, in origin form."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                method, target, version = line.split(" ", 2)
                parts = urlsplit(target)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                kept = [f"{n}: {v}" for n, v in headers.items() if n not in _HOP_BY_HOP]
                upstream.write("\r\n".join([f"{method} {path} {version}", *kept, "", ""]).encode())
                upstream.write(await reader.readexactly(int(headers.get("content-length", 0))))
                await upstream.drain()
                line, headers = await self._read_head(reader)
        upstream.close()
