"""Error answers from a hostile server: echoed tokens, odd Locations, deep bodies, raw bytes.

Each runs on both faces, over aiohttp and over the docs' own transport (``face``).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from fathom_events import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    FathomError,
    RedirectError,
    RetryPolicy,
)
from fathom_events.testing import FakeFathom
from tests.support.faces import Face, every_face_fixture  # noqa: F401 - `face`, both transports
from tests.support.helpers import SITE, TOKEN
from tests.support.hostile import RawRequest, RawServer, Reply, always, http
from tests.support.secrecy import assert_token_free

#: Every error these tests meet is walked for the token once each test ends (see conftest).
pytestmark = pytest.mark.usefixtures("every_error_token_free")

NO_RETRY = RetryPolicy(max_retries=0)


async def failure(face: Face, reply: Callable[[RawRequest], Reply]) -> FathomError:
    """The error one list call ends in against a server answering with ``reply``."""
    async with face.serve(RawServer(reply)) as url, face.open(TOKEN, url, retry=NO_RETRY) as client:
        with pytest.raises(FathomError) as info:
            await client.events.list(SITE)
    return info.value


def echo_in_body(request: RawRequest) -> bytes:
    """A 400 whose message, body and a header quote the Authorization header back."""
    sent = request.header("authorization") or ""
    body = f'{{"error": "token {sent} may not do that", "seen": ["{sent}"]}}'.encode()
    return http(400, body, {"X-Echo": sent})


async def test_a_token_echoed_in_an_error_answer_is_blotted_out(face: Face) -> None:
    """A server quoting the token in an error's body or headers does not put it in the error."""
    error = await failure(face, echo_in_body)
    assert isinstance(error, BadRequestError)
    assert "********" in error.message
    assert_token_free(error, TOKEN)
    assert TOKEN not in repr(error.body)
    assert TOKEN not in repr(error.headers)
    assert TOKEN not in pickle.dumps(error).decode("latin-1")


def echo_in_page(request: RawRequest) -> bytes:
    """A 200 page whose event name is the Authorization header."""
    sent = request.header("authorization") or ""
    page = (
        f'{{"object": "list", "url": "/v1/sites/{SITE}/events", "has_more": false,'
        f' "data": [{{"id": "E1", "object": "event", "name": "{sent}",'
        ' "currency": null, "created_at": "2024-01-01 00:00:00"}]}'
    )
    return http(200, page.encode())


async def test_a_token_echoed_in_a_page_never_reaches_the_caller(face: Face) -> None:
    """An answer holding the token is read with the token blotted out."""
    async with (
        face.serve(RawServer(echo_in_page)) as url,
        face.open(TOKEN, url, retry=NO_RETRY) as client,
    ):
        page = await client.events.list(SITE)
    assert TOKEN not in page.data[0].name
    assert "********" in page.data[0].name


async def test_a_redirect_location_is_shown_escaped(face: Face) -> None:
    """Control characters in a Location never reach the error's message raw."""
    error = await failure(
        face, lambda _: http(302, b"", {"Location": "https://e.example/\x1b[2Jx"})
    )
    assert isinstance(error, (RedirectError, APIConnectionError))
    assert "\x1b" not in str(error)
    if isinstance(error, RedirectError):  # aiohttp may refuse the header before we see it
        assert error.location == "https://e.example/\x1b[2Jx"


@pytest.mark.parametrize("key", ["error", "errors"])
async def test_a_deeply_nested_error_body_still_prints_and_pickles(face: Face, key: str) -> None:
    """An error body nested near the parser's limit still gives an error that prints and pickles."""
    for depth in (400, 800, 950, 5000):
        deep = "[" * depth + "]" * depth
        error = await failure(face, always(http(400, f'{{"{key}": {deep}}}'.encode())))
        assert isinstance(error, APIStatusError)
        assert str(error).isprintable()
        repr(error)
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert copy.status == 400
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert copy.status == 400


async def test_a_shallow_error_body_is_kept_parsed(face: Face) -> None:
    """Fathom's own error shapes stay parsed JSON in .body."""
    error = await failure(face, lambda _: http(400, b'{"errors": {"name": ["is required"]}}'))
    assert isinstance(error, BadRequestError)
    assert error.body == {"errors": {"name": ["is required"]}}
    assert error.errors == {"name": ["is required"]}


async def test_a_connection_error_message_is_one_printable_line(face: Face) -> None:
    """A malformed answer's raw bytes are escaped in the APIConnectionError's message."""
    error = await failure(face, lambda _: b"HTTP/1.1 200 \x1b[2J\r\nX\x01: y\r\n\r\n")
    assert isinstance(error, APIConnectionError)
    assert str(error).isprintable()


@pytest.mark.parametrize("token", ["t", "abc", "short-token-15c"])
async def test_a_short_token_is_not_blotted_out_of_ordinary_data(face: Face, token: str) -> None:
    """A token too short to tell from data leaves answers as they are (names, fields)."""
    fake = FakeFathom({token: ["*"]})
    fake.add_event(SITE, f"{token} signup")
    async with face.serve(fake) as url, face.open(token, url, retry=NO_RETRY) as client:
        page = await client.events.list(SITE)
    assert [event.name for event in page.data] == [f"{token} signup"]
