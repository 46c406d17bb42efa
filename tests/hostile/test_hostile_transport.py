"""The transport against a hostile server: decoded-size caps, protocol errors, redirects, sessions.

Memory is measured with tracemalloc (the bytes the process holds), never by time.

The redirect tests run over aiohttp and over the docs' own transport (a 3xx is the
client's to refuse, whatever sends it). The rest are the aiohttp transport's own work and
stay on it: bombs refused while aiohttp streams and decodes them (a transport of the user's
reads the body whole, and the client caps it after), aiohttp's protocol errors by name,
lent sessions (raise_for_status, auto_decompress, middlewares) and aiohttp's hidden resend.
The user transport meets the protocol errors in test_hostile_secrets.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import compression_utils

from fathom_events import (
    APIConnectionError,
    AsyncClient,
    BadRequestError,
    Client,
    DeletedEvent,
    EventPage,
    NotFoundError,
    RedirectError,
    ResponseTooLargeError,
    RetryPolicy,
)
from fathom_events._http._aiohttp import _refuse_hidden_resend
from fathom_events._http._secrecy import raise_alone
from tests.limits.test_fault_matrix import SESSION_KINDS, session_of
from tests.support.faces import TRANSPORTS, TransportKind, over
from tests.support.helpers import SITE, TOKEN, FakeTime
from tests.support.hostile import (
    RawRequest,
    RawServer,
    Reply,
    always,
    deflate_bomb,
    gzip_bomb,
    http,
)
from tests.support.secrecy import assert_token_free

#: Every error these tests meet is walked for the token once each test ends (see conftest).
pytestmark = pytest.mark.usefixtures("every_error_token_free")

NO_RETRY = RetryPolicy(max_retries=0)
PAGE = json.dumps({"data": [], "has_more": False, "url": f"/v1/sites/{SITE}/events"}).encode()

# --- bodies in every encoding and framing -------------------------------------------------


def _optional(name: str, *, available: bool) -> object:
    return pytest.param(
        name, marks=pytest.mark.skipif(not available, reason=f"aiohttp cannot decode {name} here")
    )


ENCODINGS = [
    "identity",
    "gzip",
    "deflate",
    _optional("br", available=compression_utils.HAS_BROTLI),
    _optional("zstd", available=compression_utils.HAS_ZSTD),
]
COMPRESSED = ENCODINGS[1:]
FRAMINGS = ["content-length", "until-close", "chunked"]


def _zstd() -> object:
    try:
        return importlib.import_module("compression.zstd")
    except ImportError:
        return importlib.import_module("backports.zstd")


def encode(encoding: str, data: bytes) -> bytes:
    """``data`` as a server sends it with ``Content-Encoding: encoding``."""
    if encoding == "identity":
        return data
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        return importlib.import_module("brotli").compress(data, quality=5)  # type: ignore[no-any-return]
    return _zstd().compress(data)  # type: ignore[attr-defined,no-any-return]


@cache
def bomb(encoding: str, decoded_size: int) -> bytes:
    """A body of ``decoded_size`` spaces, compressed (built once per size and encoding)."""
    if encoding == "gzip":
        return gzip_bomb(decoded_size)
    if encoding == "deflate":
        return deflate_bomb(decoded_size)
    piece = b" " * (1 << 20)
    if encoding == "br":
        compressor = importlib.import_module("brotli").Compressor(quality=5)
        parts = [compressor.process(piece) for _ in range(decoded_size >> 20)]
        return b"".join([*parts, compressor.finish()])
    compressor = _zstd().ZstdCompressor()  # type: ignore[attr-defined]
    parts = [compressor.compress(piece) for _ in range(decoded_size >> 20)]
    return b"".join([*parts, compressor.flush()])


def chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    """``body`` in HTTP/1.1 chunked transfer coding."""
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def framed(body: bytes, encoding: str, framing: str, status: int = 200) -> bytes:
    """An answer carrying ``body`` (already encoded) with the given coding and framing."""
    headers = {} if encoding == "identity" else {"Content-Encoding": encoding}
    if framing == "content-length":
        return http(status, body, headers)
    if framing == "until-close":
        return http(status, body, headers, length=False)
    return http(status, chunked(body), {**headers, "Transfer-Encoding": "chunked"}, length=False)


def padded_page(decoded_size: int) -> bytes:
    """A valid page followed by JSON whitespace, ``decoded_size`` bytes in all."""
    return PAGE + b" " * (decoded_size - len(PAGE))


# --- every limit holds on the decoded body ------------------------------------------------

BOMB_SIZE = 256 * 1024 * 1024
CAP = 1024 * 1024
# A refused body may cost a few times the cap (what was read, aiohttp's buffers and one
# inflated piece), never anything like the bomb's decoded size.
MEMORY_BOUND = 3 * CAP


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("encoding", COMPRESSED)
async def test_bomb_is_refused_in_a_few_mib(encoding: str, framing: str) -> None:
    """A 256 MiB bomb under a 1 MiB cap is refused, and refusing it costs a few MiB at most."""
    server = RawServer(always(framed(bomb(encoding, BOMB_SIZE), encoding, framing)))
    async with (
        server.serve() as url,
        AsyncClient(TOKEN, url, max_response_bytes=CAP, retry=NO_RETRY) as client,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError) as info:
                await client.events.list(SITE)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"refusing the bomb held {peak / 2**20:.1f} MiB"
    assert f"max_response_bytes={CAP}" in str(info.value)
    assert info.value.attempts == 1


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("decoded_size", "fits"), [(300_000, True), (300_001, False)])
async def test_cap_counts_decoded_bytes(
    encoding: str, framing: str, decoded_size: int, fits: bool
) -> None:
    """An answer decoding to exactly the cap is read; one byte more is refused, in any coding."""
    body = encode(encoding, padded_page(decoded_size))
    server = RawServer(always(framed(body, encoding, framing)))
    async with (
        server.serve() as url,
        AsyncClient(TOKEN, url, max_response_bytes=300_000, retry=NO_RETRY) as client,
    ):
        if fits:
            assert isinstance(await client.events.list(SITE), EventPage)
        else:
            with pytest.raises(ResponseTooLargeError):
                await client.events.list(SITE)


@pytest.mark.parametrize("encoding", COMPRESSED)
async def test_session_without_decompression_still_decodes_within_the_cap(encoding: str) -> None:
    """A borrowed session made with auto_decompress=False gets a page, and a bomb is refused."""
    answers = iter(
        [
            framed(encode(encoding, PAGE), encoding, "content-length"),
            framed(bomb(encoding, BOMB_SIZE), encoding, "content-length"),
        ]
    )
    server = RawServer(lambda _: next(answers))
    async with (
        server.serve() as url,
        aiohttp.ClientSession(auto_decompress=False) as session,
        AsyncClient(TOKEN, url, session=session, max_response_bytes=CAP, retry=NO_RETRY) as client,
    ):
        assert isinstance(await client.events.list(SITE), EventPage)
        with pytest.raises(ResponseTooLargeError):
            await client.events.list(SITE)


@pytest.mark.parametrize("encoding", COMPRESSED)
async def test_body_that_cannot_be_decoded_is_a_typed_error(encoding: str) -> None:
    """A body that is not valid in its Content-Encoding ends in APIConnectionError saying so."""
    server = RawServer(always(http(200, b"not compressed at all", {"Content-Encoding": encoding})))
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError, match="could not be decoded"):
            await client.events.list(SITE)


# --- protocol errors keep the token secret ------------------------------------------------


def echo_token_in_status_line(request: RawRequest) -> bytes:
    """A server that sends the request's Authorization back as a broken status line."""
    return f"HTTP/1.1 {request.header('Authorization')}\r\n\r\n".encode("latin-1")


PROTOCOL_ERRORS: dict[str, Callable[[RawRequest], Reply]] = {
    "bad-status-line": always(b"HTTP/1.1 abc\r\n\r\n"),
    "header-over-8KiB": always(http(200, PAGE, {"X-Big": "a" * 9000})),
    "header-without-colon": always(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
    "token-echoed-in-status-line": echo_token_in_status_line,
}


@pytest.mark.parametrize("reply", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
async def test_protocol_error_carries_no_token(reply: Callable[[RawRequest], Reply]) -> None:
    """An unparseable answer is APIConnectionError naming aiohttp's error, the token nowhere."""
    server = RawServer(reply)
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.list(SITE)
    error = info.value
    assert "ClientResponseError" in error.message
    assert error.request_sent is True
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_token_free(error, TOKEN)


def test_protocol_error_carries_no_token_on_the_blocking_face() -> None:
    """The blocking client's protocol error is as free of the token as the async one's."""
    server = RawServer(PROTOCOL_ERRORS["header-over-8KiB"])
    with (
        server.serve_in_thread() as url,
        Client(TOKEN, url, retry=NO_RETRY) as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.events.list(SITE)
    assert_token_free(info.value, TOKEN)


# --- a 3xx is never success and never followed --------------------------------------------

ELSEWHERE = "https://elsewhere.example/v1/sites/CDBUGS/events"


@pytest.fixture(name="transport", params=TRANSPORTS)
def _transport(request: pytest.FixtureRequest) -> TransportKind:
    """The redirect tests run over aiohttp and over the docs' own transport."""
    transport: TransportKind = request.param
    return transport


def redirect(status: int, location: str | None = ELSEWHERE) -> Callable[[RawRequest], Reply]:
    headers = {} if location is None else {"Location": location}
    return always(http(status, PAGE, headers))


@pytest.mark.parametrize("status", [300, 301, 302, 303, 305, 307, 308, 399])
async def test_redirect_is_an_error_and_not_followed(
    status: int, fake_time: FakeTime, transport: TransportKind
) -> None:
    """A 3xx, even with a readable body, is RedirectError naming status and Location; sent once."""
    server = RawServer(redirect(status))
    async with (
        server.serve() as url,
        AsyncClient(
            TOKEN, url, clock=fake_time.clock, sleep=fake_time.sleep, transport=over(transport)
        ) as client,
    ):
        with pytest.raises(RedirectError) as info:
            await client.events.list(SITE)
    error = info.value
    assert (error.status, error.location, error.attempts) == (status, ELSEWHERE, 1)
    assert str(status) in str(error)
    assert ELSEWHERE in str(error)
    assert len(server.requests) == 1


async def test_redirect_without_location(transport: TransportKind) -> None:
    """A 3xx with no Location is a RedirectError whose location is None."""
    server = RawServer(redirect(302, location=None))
    async with (
        server.serve() as url,
        AsyncClient(TOKEN, url, retry=NO_RETRY, transport=over(transport)) as client,
    ):
        with pytest.raises(RedirectError) as info:
            await client.events.create(SITE, "Signup")
    assert info.value.location is None
    assert info.value.may_have_been_applied is False
    assert "no Location" in str(info.value)


def test_redirect_is_an_error_on_the_blocking_face(
    fake_time: FakeTime, transport: TransportKind
) -> None:
    """The blocking client raises the same RedirectError for a 3xx, and does not follow it."""
    server = RawServer(redirect(308))
    with (
        server.serve_in_thread() as url,
        Client(
            TOKEN, url, clock=fake_time.clock, sleep=fake_time.sleep, transport=over(transport)
        ) as client,
        pytest.raises(RedirectError) as info,
    ):
        client.events.delete(SITE, "EVENT1")
    assert (info.value.status, info.value.location) == (308, ELSEWHERE)
    assert len(server.requests) == 1


# --- a borrowed session ends as our own does ----------------------------------------------


def lose_first_answer(then: bytes) -> Callable[[RawRequest], Reply]:
    """The first request is read (and, say, processed) and the connection dropped unanswered."""
    count = 0

    async def drop(writer: asyncio.StreamWriter) -> None:
        return None

    def reply(_: RawRequest) -> Reply:
        nonlocal count
        count += 1
        return drop if count == 1 else then

    return reply


NOT_FOUND = http(404, b'{"error": "not found"}')


@contextlib.asynccontextmanager
async def client_on(
    server: RawServer, session_kind: str, **options: Any
) -> AsyncIterator[AsyncClient]:
    """A client of ``server`` on a session of ``session_kind`` (see the fault matrix)."""
    async with (
        server.serve() as url,
        session_of(session_kind) as session,
        AsyncClient(TOKEN, url, session=session, **options) as client,
    ):
        yield client


@pytest.mark.parametrize("session_kind", SESSION_KINDS)
async def test_lost_delete_answer_is_not_resent_unseen(session_kind: str) -> None:
    """With retries off, a DELETE whose answer was lost is sent once, on any session."""
    server = RawServer(lose_first_answer(then=NOT_FOUND))
    async with client_on(server, session_kind, retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.delete(SITE, "EVENT1")
    assert len(server.requests) == 1
    assert info.value.request_sent is True
    assert info.value.attempts == 1


@pytest.mark.parametrize("session_kind", SESSION_KINDS)
async def test_lost_delete_answer_is_retried_in_the_open(
    session_kind: str, fake_time: FakeTime
) -> None:
    """A DELETE whose answer was lost is resent by our retry loop, which knows it may have acted."""
    server = RawServer(lose_first_answer(then=NOT_FOUND))
    async with client_on(
        server, session_kind, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        outcome = await client.events.delete(SITE, "EVENT1")
        assert client.requests_sent == 2
    assert outcome == DeletedEvent("EVENT1", deleted=True)
    assert len(server.requests) == 2


@pytest.mark.parametrize("session_kind", SESSION_KINDS)
@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (404, NotFoundError), (301, RedirectError)]
)
async def test_status_mapping_ignores_the_sessions_raise_for_status(
    session_kind: str, status: int, error: type[Exception]
) -> None:
    """A 4xx or 3xx maps to our typed error, sent once, whatever the session's raise_for_status."""
    server = RawServer(always(http(status, b'{"error": "no"}', {"Location": "/v1/x"})))
    async with client_on(server, session_kind) as client:
        with pytest.raises(error):
            await client.events.get(SITE, "EVENT1")
    assert len(server.requests) == 1


@pytest.mark.parametrize("session_kind", SESSION_KINDS)
async def test_retry_after_is_honoured_on_any_session(
    session_kind: str, fake_time: FakeTime
) -> None:
    """A 429's Retry-After is waited out and the call then succeeds, whoever owns the session."""
    answers = iter([http(429, b'{"error": "slow down"}', {"Retry-After": "7"}), http(200, PAGE)])
    server = RawServer(lambda _: next(answers))
    async with client_on(
        server, session_kind, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        assert isinstance(await client.events.list(SITE), EventPage)
    assert fake_time.sleeps == [7.0]


async def test_borrowed_session_keeps_its_own_middlewares() -> None:
    """The borrowed session's middlewares still run on our requests (ours is added around them)."""

    async def tag(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        request.headers["X-Mine"] = "yes"
        return await handler(request)

    server = RawServer(always(http(200, PAGE)))
    async with (
        server.serve() as url,
        aiohttp.ClientSession(middlewares=(tag,)) as session,
        AsyncClient(TOKEN, url, session=session, retry=NO_RETRY) as client,
    ):
        await client.events.list(SITE)
    assert server.requests[0].header("X-Mine") == "yes"


def test_unknown_session_layout_keeps_the_sessions_own_chain() -> None:
    """Were aiohttp to drop _middlewares, we would pass no chain (never replace theirs unread)."""
    stand_in = cast("aiohttp.ClientSession", object())
    assert _refuse_hidden_resend(stand_in) == {}


def test_an_error_is_raised_alone_even_while_another_is_handled() -> None:
    """raise_alone leaves no __context__, even where an exception is being handled.

    Python 3.10 can leave an exception aiohttp handled inside an awaited
    coroutine as the one being handled where the client raises its own error;
    here an ``except`` block stands in for that.
    """
    error = APIConnectionError("lost", method="GET", url="http://x/v1")

    def while_handling_another() -> None:
        try:
            raise ValueError(f"Authorization: Bearer {TOKEN}")  # noqa: TRY301 - the stand-in
        except ValueError:
            raise_alone(error)

    with pytest.raises(APIConnectionError) as info:
        while_handling_another()
    assert info.value is error
    assert error.__context__ is None
    assert error.__cause__ is None
    assert_token_free(error, TOKEN)
