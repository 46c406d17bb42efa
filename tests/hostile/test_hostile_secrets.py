"""No secret in frames, header names or escaped echoes, on both faces, over real HTTP.

A hostile server (``RawServer`` on loopback) answers with broken HTTP, drops
the connection, sends too much, or quotes the token back: as it was sent, as a
header's name, JSON-escaped (``\\/``, ``\\u002f``) or percent-encoded (``%2F``,
``%252F``). Whatever comes out carries the token in no form: not in the error
or what it leads to, not in a pickle, and not in the locals of any frame along
its tracebacks. The tests' own frames are left out of that walk: they hold the
token, since they hand it to the client; every other frame (the library's, and
any other along the chain) must not.
"""

from __future__ import annotations

import asyncio
import pickle
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from fathom_events import (
    AnswerReceived,
    APIConnectionError,
    AsyncClient,
    BadRequestError,
    CallFinished,
    CallRecord,
    FathomError,
    RedirectError,
    RetryPolicy,
    UnexpectedError,
)
from fathom_events._http._secrecy import TokenEchoes
from fathom_events._options import Secret
from fathom_events.testing import FakeFathom, Fault
from tests.hostile.test_hostile_transport import PROTOCOL_ERRORS
from tests.support.faces import (  # noqa: F401 - every_face_fixture: `face`, and over the docs'
    ASYNC,
    Face,
    Run,
    every_face_fixture,
    opened,
)
from tests.support.helpers import SITE, TOKEN
from tests.support.hostile import RawRequest, RawServer, Reply, always, http
from tests.support.secrecy import (
    assert_frames_token_free,
    assert_records_token_free,
    assert_token_free,
)

#: Every error these tests meet is walked for the token once each test ends (see conftest).
pytestmark = pytest.mark.usefixtures("every_error_token_free")

NO_RETRY = RetryPolicy(max_retries=0)
CAP = 1000


async def raised(run: Run, call: Callable[[Any], Any]) -> FathomError:
    """The FathomError ``call`` ends in on the face ``run`` drives."""
    try:
        await run(call)
    except FathomError as error:
        return error
    raise AssertionError("the call succeeded")  # pragma: no cover - the test then fails


# --- no frame holds the token ---------------------------------------------------------------


async def hang_up(_: object) -> None:
    """Read the request, answer nothing, close the connection."""


def echo_everywhere(request: RawRequest) -> bytes:
    """A 400 quoting the Authorization header in its body, a header's value and a header's name."""
    sent = request.header("authorization") or ""
    token = sent.removeprefix("Bearer ")
    body = f'{{"error": "token {sent} may not do that"}}'.encode()
    return http(400, body, {"X-Echo": sent, token: "seen"})


HOSTILE: dict[str, Callable[[RawRequest], Reply]] = {
    **PROTOCOL_ERRORS,
    "hung-up": always(hang_up),
    "over-the-cap": always(http(200, b" " * (CAP + 1))),
    "over-the-cap-unframed": always(http(200, b" " * (CAP + 1), length=False)),
    "undecodable-gzip": always(http(200, b"not gzip", {"Content-Encoding": "gzip"})),
    "not-json": always(http(200, b"<html>")),
    "token-echoed": echo_everywhere,
    "redirect": always(http(302, b"", {"Location": "https://elsewhere.example/v1"})),
}


@pytest.mark.parametrize("reply", HOSTILE.values(), ids=HOSTILE.keys())
async def test_no_frame_along_an_error_holds_the_token(
    face: Face, reply: Callable[[RawRequest], Reply]
) -> None:
    """Whatever a hostile server answers, nothing the error leads to holds the token, frames too,
    nor does any record on_event was given."""
    if face.transport == "user" and reply is HOSTILE["header-over-8KiB"]:
        # aiohttp refuses a header over 8 KiB; httpx (h11) reads it and answers: whether such
        # a header is an error is the HTTP stack's choice, not a promise of the client.
        pytest.skip("a header over 8 KiB is an error of aiohttp's parser only")
    server = RawServer(reply)
    seen: list[CallRecord] = []
    async with opened(
        face, server, retry=NO_RETRY, max_response_bytes=CAP, on_event=seen.append
    ) as run:
        error = await raised(run, lambda c: c.events.list(SITE))
    assert_token_free(error, TOKEN)
    assert [type(record) for record in seen][-2:] == [AnswerReceived, CallFinished]
    assert_records_token_free(seen, TOKEN)


# --- the token echoed as a header's name ----------------------------------------------------


async def test_a_token_echoed_as_a_header_name_is_blotted_out(face: Face) -> None:
    """A header named after the token is kept under a blotted name, in the error and its pickle."""
    server = RawServer(echo_everywhere)
    async with opened(face, server, retry=NO_RETRY) as run:
        error = await raised(run, lambda c: c.events.list(SITE))
    assert isinstance(error, BadRequestError)
    assert error.headers["********"] == "seen"
    assert error.headers["X-Echo"] == "Bearer ********"
    assert_token_free(error, TOKEN)


# --- the token echoed escaped or percent-encoded --------------------------------------------

#: A token with characters JSON and URL encoders change: "/", "+" and "=".
MARKED = "fathom/token+0123456789=ABCDEFabcdef"


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


#: The token as servers quote it back: PHP's json_encode escapes "/"; an HTML-safe or .NET
#: JSON encoder writes \uXXXX; a URL percent-encodes, in either case, once more when nested.
MARKED_FORMS = {
    "as-sent": MARKED,
    "json-slash": MARKED.replace("/", "\\/"),
    "json-unicode": "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in MARKED),
    "json-unicode-upper": "".join(c if c.isalnum() else f"\\u{ord(c):04X}" for c in MARKED),
    "percent": quote(MARKED, safe=""),
    "percent-lower": _lower_escapes(quote(MARKED, safe="")),
    "percent-twice": quote(quote(MARKED, safe=""), safe=""),
    # A hostile encoder may escape every character, letters and digits too.
    "json-unicode-every": "".join(f"\\u{ord(c):04x}" for c in MARKED),
    "percent-every": "".join(f"%{byte:02X}" for byte in MARKED.encode()),
    "escaped-letter": MARKED.replace("A", "%41"),
}
#: What a header's name may hold (RFC 9110's tchar).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch


def echo_form(status: int, form: str) -> Callable[[RawRequest], Reply]:
    """An answer quoting ``form`` in its body, a header, the Location and (if it can) a name."""
    body = f'{{"error": "token {form} may not do that", "url": "/v1?t={form}"}}'.encode()
    headers = {"X-Echo": f"Bearer {form}", "Location": f"https://elsewhere.example/?t={form}"}
    if _HEADER_NAME(form):
        headers[form] = "seen"
    return always(http(status, body, headers))


@pytest.mark.parametrize("status", [400, 302])
@pytest.mark.parametrize("form", MARKED_FORMS.values(), ids=MARKED_FORMS.keys())
async def test_an_escaped_echo_of_the_token_is_blotted_out(
    face: Face, form: str, status: int
) -> None:
    """A token quoted back JSON-escaped or percent-encoded is blotted out of the whole error."""
    server = RawServer(echo_form(status, form))
    async with opened(face, server, MARKED, retry=NO_RETRY) as run:
        error = await raised(run, lambda c: c.events.list(SITE))
    assert isinstance(error, (BadRequestError, RedirectError))
    assert error.headers["X-Echo"] == "Bearer ********"
    assert "********" in str(error.body)
    if isinstance(error, RedirectError):
        assert error.location == "https://elsewhere.example/?t=********"
    if _HEADER_NAME(form):
        assert error.headers["********"] == "seen"
    assert_token_free(error, MARKED, *MARKED_FORMS.values())


@pytest.mark.parametrize("form", MARKED_FORMS.values(), ids=MARKED_FORMS.keys())
async def test_an_escaped_echo_in_a_page_never_reaches_the_caller(form: str) -> None:
    """An event name quoting the token JSON-escaped or percent-encoded is read blotted out."""
    page = (
        f'{{"object": "list", "url": "/v1/sites/{SITE}/events", "has_more": false,'
        f' "data": [{{"id": "E1", "object": "event", "name": "Bearer {form}",'
        ' "currency": null, "created_at": "2024-01-01 00:00:00"}]}'
    )
    server = RawServer(always(http(200, page.encode())))
    async with opened(ASYNC, server, MARKED, retry=NO_RETRY) as run:
        listed = await run(lambda c: c.events.list(SITE))
    assert listed.data[0].name == "Bearer ********"


async def test_a_token_cut_short_in_a_message_leaves_none_of_itself(face: Face) -> None:
    """A token echoed where the message is cut short is blotted out before the cut."""
    padding = "x" * 230  # the message is cut at 300 characters, in the token's middle
    server = RawServer(always(f"HTTP/1.1 {padding}{MARKED}\r\n\r\n".encode()))
    async with opened(face, server, MARKED, retry=NO_RETRY) as run:
        error = await raised(run, lambda c: c.events.list(SITE))
    assert isinstance(error, APIConnectionError)
    assert padding[:200] in error.message
    assert MARKED[:8] not in error.message
    assert_token_free(error, MARKED[:8])


# --- what counts as the token ---------------------------------------------------------------

NEAR_MISSES = {
    "one-letter-off": MARKED.replace("A", "B"),
    "escaped-other-letter": MARKED.replace("A", "%42"),
    "bad-escape": MARKED.replace("/", "%2G"),
    "cut-short": MARKED[:-1],
}


@pytest.mark.parametrize("text", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_only_the_token_is_blotted_out(text: str) -> None:
    """Text that is not the token in some form (a letter off or escaped, cut short) is kept."""
    echoes = TokenEchoes(Secret(MARKED))
    assert echoes.blot(f"<{text}>") == f"<{text}>"
    assert not echoes.found_in(text.encode(), {text: text})


def test_a_non_ascii_token_is_found_in_its_escaped_forms() -> None:
    """Each character may come back as UTF-8, \\uXXXX (a pair beyond the BMP) or %XX per byte."""
    echoes = TokenEchoes(Secret("caf\u00e9-\U0001f600-token-0123456789"))
    forms = [
        "caf\u00e9-\U0001f600-token-0123456789",
        "caf\\u00e9-\\ud83d\\ude00-token-0123456789",
        "caf%C3%A9-%F0%9F%98%80-token-0123456789",
    ]
    for form in forms:
        assert echoes.blot(f"<{form}>") == "<********>"
        assert echoes.found_in(form.encode(), {})


@pytest.mark.parametrize(
    "headers",
    [
        {"Location": f"https://e.example/?t={MARKED_FORMS['percent']}"},
        {MARKED_FORMS["percent"]: "1"},
    ],
    ids=["value", "name"],
)
def test_an_echo_in_a_header_alone_is_found(headers: dict[str, str]) -> None:
    """The token quoted in a header's value or name alone, the body clean, is found."""
    assert TokenEchoes(Secret(MARKED)).found_in(b"{}", headers)


def test_a_short_token_is_never_found() -> None:
    """A token too short to tell from data is looked for nowhere (see MIN_BLOTTED_TOKEN)."""
    echoes = TokenEchoes(Secret("short"))
    assert echoes.blot("short") == "short"
    assert not echoes.found_in(b"short", {"short": "short"})


def test_the_echo_finder_shows_and_pickles_no_token() -> None:
    """What looks for the token's echoes shows no token in its repr and refuses pickle."""
    echoes = TokenEchoes(Secret(MARKED))
    assert MARKED not in repr(echoes)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(echoes)


# --- what no frame keeps: foreign failures and cancellations --------------------------------


async def test_a_foreign_failure_inside_aiohttp_is_mapped_alone() -> None:
    """A trace hook's LookupError is an APIConnectionError with no token in its frames."""

    async def broken_hook(*_: object) -> None:
        raise LookupError("a hook's own bug")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(broken_hook)  # inside aiohttp, its headers in a local
    fake = FakeFathom()
    fake.add_site(SITE)
    async with (
        fake.serve() as url,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        AsyncClient(TOKEN, url, session=session, retry=NO_RETRY) as client,
    ):
        with pytest.raises(APIConnectionError, match="LookupError: a hook's own bug") as raised:
            await client.events.list(SITE)
        pulled = await client.events.pull([SITE])
    assert_token_free(raised.value, TOKEN)
    assert isinstance(pulled.failed[SITE], APIConnectionError)
    assert_token_free(pulled.failed[SITE], TOKEN)


async def test_a_recorded_foreign_error_keeps_no_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """A foreign error in bulk work is an UnexpectedError's cause, without its traceback."""
    fake = FakeFathom()
    fake.add_site(SITE)
    async with fake.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        real = client.events.list

        async def broken(*args: Any, **kwargs: Any) -> Any:
            await real(*args, **kwargs)
            raise KeyError("a bug")

        monkeypatch.setattr(client.events, "list", broken)
        pulled = await client.events.pull([SITE])
    error = pulled.failed[SITE]
    assert isinstance(error, UnexpectedError)
    assert isinstance(error.__cause__, KeyError)
    assert error.__cause__.__traceback__ is None
    assert_token_free(error, TOKEN)


async def test_a_cancelled_request_leaves_no_token_in_its_frames() -> None:
    """A request cancelled while the server holds it: the cancellation's frames hold no token."""
    fake = FakeFathom()
    fake.add_site(SITE)
    fake.inject(Fault.hang())
    async with fake.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        task = asyncio.ensure_future(client.events.list(SITE))
        for _ in range(10_000):  # turns of the loop, never a real sleep
            if fake.requests:
                break
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await task
    assert_frames_token_free(cancelled.value, [TOKEN])
