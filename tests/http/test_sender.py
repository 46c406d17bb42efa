"""The one sender: one place builds a URL, one blots out the token, for every transport."""

from __future__ import annotations

import ast
import pickle
import sys
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest

import fathom_events
from fathom_events import (
    APIConnectionError,
    AsyncClient,
    AsyncTransport,
    NotFoundError,
    RetryPolicy,
    Timeouts,
    TransportRequest,
    UnsupportedEventLoopError,
)
from fathom_events._options import ClientOptions
from fathom_events.testing import FakeFathom, MemoryTransport
from tests.support.helpers import SITE, TOKEN
from tests.support.secrecy import assert_token_free

PACKAGE = Path(fathom_events.__file__).parent
NO_RETRY = RetryPolicy(max_retries=0)
#: TokenEchoes' methods that blot the token out (found_in only looks).
BLOTTING = {"blot", "blot_answer", "blot_bytes"}


def functions() -> dict[str, ast.AST]:
    """Every top-level function and method of the client (not its test fake), by dotted name.

    A function nested in another counts as part of it.
    """
    found: dict[str, ast.AST] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "testing":
            continue
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            methods = node.body if isinstance(node, ast.ClassDef) else [node]
            prefix = f"{module}.{node.name}." if isinstance(node, ast.ClassDef) else f"{module}."
            for function in methods:
                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[prefix + function.name] = function
    return found


def blots(function: ast.AST) -> bool:
    """Whether ``function`` calls a method of TokenEchoes that blots the token out."""
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in BLOTTING
        for node in ast.walk(function)
    )


def builds_a_url(function: ast.AST) -> bool:
    """Whether ``function`` joins a base URL and a request's target, or asks for a target."""
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "target"
        ):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for side in (node.left, node.right):
                name = side.attr if isinstance(side, ast.Attribute) else getattr(side, "id", "")
                if "base_url" in name:
                    return True
    return False


def test_one_function_blots_out_an_echoed_token() -> None:
    """Outside TokenEchoes itself, only Sender._blot_out blots the token out of anything."""
    blotting = sorted(
        name
        for name, function in functions().items()
        if blots(function) and ".TokenEchoes." not in name
    )
    assert blotting == ["fathom_events._http._sender.Sender._blot_out"]


def test_one_function_builds_a_request_url() -> None:
    """Only Sender.url joins the base URL and a request's path and query."""
    building = sorted(name for name, function in functions().items() if builds_a_url(function))
    assert building == ["fathom_events._http._sender.Sender.url"]


def test_the_scans_are_not_blind() -> None:
    """Both scans find what they look for in code written to have it."""
    sample = ast.parse("def f(self, r):\n    e.blot(x)\n    return self._base_url + r.target()")
    assert blots(sample)
    assert builds_a_url(sample)
    assert not blots(ast.parse("def g():\n    return e.found_in(b, h)"))


class Recording:
    """A transport of the user's own that answers 404 and keeps what it was handed."""

    def __init__(self) -> None:
        self.handed: list[tuple[object, object]] = []
        self.closes = 0

    async def send(
        self, request: TransportRequest, timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.handed.append((request, timeouts))
        return 404, {"content-type": "application/json"}, b'{"error": "Not found"}'

    async def aclose(self) -> None:
        self.closes += 1


def test_the_contract_is_public_and_is_what_the_client_uses() -> None:
    """AsyncTransport, TransportRequest and Timeouts import from fathom_events: the client's own."""
    from fathom_events import AsyncTransport as Public  # noqa: PLC0415 - the import is the test

    assert Public is AsyncTransport
    hints = typing.get_type_hints(ClientOptions)
    assert hints["transport"] == AsyncTransport | None
    assert hints["timeouts"] is Timeouts
    assert {"AsyncTransport", "TransportRequest", "Timeouts"} <= set(fathom_events.__all__)


def test_memory_transport_implements_the_contract() -> None:
    """MemoryTransport is an AsyncTransport: mypy --strict checks this assignment."""
    transport: AsyncTransport = MemoryTransport(FakeFathom())
    assert callable(transport.send)
    assert callable(transport.aclose)


async def test_a_user_transport_is_handed_the_public_types() -> None:
    """send() gets a TransportRequest (absolute URL, read-only headers) and Timeouts; one aclose."""
    transport = Recording()
    async with AsyncClient(TOKEN, transport=transport, timeout=7.0, connect_timeout=2.0) as client:
        with pytest.raises(fathom_events.NotFoundError):
            await client.events.get(SITE, "E1")
    ((request, timeouts),) = transport.handed
    assert type(request) is TransportRequest
    assert request.url == f"{fathom_events.DEFAULT_BASE_URL}/sites/{SITE}/events/E1"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert type(timeouts) is Timeouts
    assert timeouts.connect == 2.0
    assert timeouts.total is not None
    assert timeouts.total <= 7.0
    assert transport.closes == 1


async def test_both_transports_send_the_same_headers(fake: FakeFathom, base_url: str) -> None:
    """aiohttp and a user's transport carry one User-Agent and the same headers: the sender's."""
    names = ("Authorization", "Accept", "User-Agent", "Content-Type")
    async with AsyncClient(TOKEN, base_url) as client:
        await client.events.create(SITE, "over aiohttp")
    over_aiohttp = {name: fake.requests[-1].header(name) for name in names}
    async with AsyncClient(TOKEN, transport=MemoryTransport(fake)) as client:
        await client.events.create(SITE, "in memory")
    in_memory = {name: fake.requests[-1].header(name) for name in names}
    assert over_aiohttp == in_memory
    assert (in_memory["User-Agent"] or "").startswith(f"fathom-events/{fathom_events.__version__} ")


class Quoting:
    """A transport whose own FathomError quotes the request, token and all, everywhere."""

    def __init__(self, padding: int = 0) -> None:
        self.padding = padding

    async def send(
        self, request: TransportRequest, _timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        quoted = request.headers["Authorization"]
        cause = RuntimeError(f"underneath: {quoted}")
        error = APIConnectionError(
            "x" * self.padding + f"proxy refused {quoted}",
            method=request.method,
            url=f"{request.url}?auth={quoted}",
        )
        error.request_sent = False
        error.request = request  # type: ignore[attr-defined]  # as aiohttp keeps request_info
        if sys.version_info >= (3, 11):  # notes are new in 3.11
            error.add_note(f"sent with {quoted}")
        raise error from cause

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_a_user_transports_fathom_error_comes_out_blotted() -> None:
    """A FathomError a transport raises with the token in it: the same error, token blotted out."""
    async with AsyncClient(TOKEN, transport=Quoting(), retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.get(SITE, "E1")
    error = info.value
    assert "proxy refused Bearer ********" in error.message
    assert error.url.endswith("?auth=Bearer ********")
    assert error.request_sent is False  # what the transport said stays said
    assert error.request.headers["Authorization"] == "Bearer ********"  # type: ignore[attr-defined]
    assert error.__cause__ is None
    assert_token_free(error, TOKEN)


async def test_a_long_message_is_blotted_before_it_is_cut_short() -> None:
    """A token straddling where a message is cut short leaves no piece of itself."""
    async with AsyncClient(TOKEN, transport=Quoting(padding=990), retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.get(SITE, "E1")
    assert len(info.value.message) < 1100
    assert TOKEN[:6] not in str(info.value)
    assert_token_free(info.value, TOKEN)


class Broken:
    """A transport that fails as a user's might: a bare exception quoting the token."""

    async def send(
        self, request: TransportRequest, _timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        raise UnsupportedEventLoopError(f"no loop for {request.headers['Authorization']}")

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_a_fathom_error_without_request_fields_is_blotted_too() -> None:
    """An error holding the token only in its args (no message field) comes out blotted."""
    async with AsyncClient(TOKEN, transport=Broken(), retry=NO_RETRY) as client:
        with pytest.raises(UnsupportedEventLoopError, match=r"no loop for Bearer \*{8}") as info:
            await client.events.get(SITE, "E1")
    assert_token_free(info.value, TOKEN)


class Holder:
    """An object of a transport's own, showing the token in its repr."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"Holder({self.token!r})"


class QuotingEverywhere:
    """A transport whose status error holds the token in bytes, a set, an object and headers."""

    async def send(
        self, request: TransportRequest, _timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        error = NotFoundError(
            "gone",
            status=404,
            body={"kept": b"raw " + token.encode()},
            headers={"Retry-After": "2", f"x-{token.lower()}": "seen"},
            method=request.method,
            url=request.url,
        )
        error.raw = token.encode()  # type: ignore[attr-defined]
        error.names = {token}  # type: ignore[attr-defined]
        error.holder = Holder(token)  # type: ignore[attr-defined]
        raise error

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_every_kind_of_value_on_a_transports_error_is_blotted() -> None:
    """Bytes, sets, objects and header names (in any case) on a transport's error lose the token."""
    async with AsyncClient(TOKEN, transport=QuotingEverywhere(), retry=NO_RETRY) as client:
        with pytest.raises(NotFoundError) as info:
            await client.events.get(SITE, "E1")
    error = info.value
    assert error.headers["retry-after"] == "2"  # still found in any case
    assert "x-********" in error.headers
    shown_whole = repr(vars(error)) + repr(error.args)
    assert TOKEN not in shown_whole
    assert TOKEN.lower() not in shown_whole
    assert TOKEN.encode() not in pickle.dumps(error)
    assert_token_free(error, TOKEN)
