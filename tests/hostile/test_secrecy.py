"""Errors travel (pickle, copy, another process) whole and without the token; clients do not."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypedDict

import attrs
import pytest

import fathom_events.exceptions as errors_module
from fathom_events import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ClientClosedError,
    FathomError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    RequestSent,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    SharedBudgetError,
    TokenPermissionError,
    TooManyDeletesError,
    TooManyEventsError,
    TooManySitesError,
    UnexpectedError,
    UnprocessableEntityError,
    UnsupportedEventLoopError,
)
from fathom_events._options import check_transport
from tests.support.faces import TRANSPORTS, Face, TransportKind
from tests.support.helpers import SITE, TOKEN
from tests.support.hostile import RawServer, http
from tests.support.secrecy import (
    assert_frames_token_free,
    assert_records_token_free,
    assert_token_free,
    summary,
    unpickled_summary,
)

URL = f"https://api.example.test/v1/sites/{SITE}/events"


class Request(TypedDict):
    """Where an error's request went."""

    method: str
    url: str


class Answer(Request):
    """What an error's answer held."""

    body: object
    headers: dict[str, str]


REQUEST = Request(method="GET", url=URL)
ANSWER = Answer(body={"error": "no"}, headers={"Content-Type": "application/json"}, **REQUEST)


def connection_error() -> APIConnectionError:
    error = APIConnectionError("could not connect: refused", **REQUEST)
    error.request_sent = False
    error.tls_failure = True
    return error


def sample_errors() -> list[FathomError]:
    """One error of every class in the tree, with every field set away from its default."""
    samples: list[FathomError] = [
        FathomError("something failed"),
        InvalidRequestError("name", "must not be empty"),
        ClientClosedError("this client is closed; create a new one"),
        PaginationError("the cursor stopped advancing"),
        connection_error(),
        APITimeoutError("timed out waiting for the answer", **REQUEST),
        ResponseDecodeError("not JSON", status=200, body="<html>", **REQUEST),
        ResponseTooLargeError("too large", status=200, body="", **REQUEST),
        APIStatusError("teapot", status=418, **ANSWER),
        BadRequestError("bad", errors={"name": ["is required"]}, status=400, **ANSWER),
        AuthenticationError("who?", status=401, **ANSWER),
        PermissionDeniedError("no", status=403, **ANSWER),
        NotFoundError("gone fishing", status=404, **ANSWER),
        GoneError("retired", status=410, **ANSWER),
        UnprocessableEntityError("cannot", errors={"name": ["taken"]}, status=422, **ANSWER),
        RateLimitError("slow down", status=429, retry_after=7.0, **ANSWER),
        ServerError("oops", status=502, **ANSWER),
        RedirectError("moved", status=301, location="https://elsewhere.example/", **ANSWER),
        TooManyEventsError(SITE, 250),
        TooManySitesError(250),
        TooManyDeletesError(12, 3),
        TokenPermissionError(SITE, "manage", "CI token"),
        UnexpectedError("unexpected ZeroDivisionError: division by zero"),
        UnsupportedEventLoopError("fathom-events needs asyncio; this is trio"),
        SharedBudgetError("Redis did not answer", redis_url="redis://:********@redis:6379/0"),
    ]
    for number, error in enumerate(samples, start=2):
        error.attempts = number
        error.may_have_been_applied = True
        if sys.version_info >= (3, 11):  # notes are new in 3.11
            error.add_note("a note someone added")
    return samples


def test_samples_cover_every_error_class() -> None:
    """The samples hold one error of each class the library exports (add new ones here)."""
    exported = {getattr(errors_module, name) for name in errors_module.__all__}
    assert {type(error) for error in sample_errors()} == exported


@pytest.mark.parametrize("error", sample_errors(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))],  # noqa: S301
)
def test_error_copies_and_pickles_whole(
    error: FathomError, duplicate: Callable[[FathomError], FathomError]
) -> None:
    """copy, deepcopy and a pickle round trip give the same class, message and fields."""
    assert summary(duplicate(error)) == summary(error)


class FutureError(APIStatusError):
    """A subclass with a signature of its own, as a later release might add."""

    def __init__(self, reason: str, *, code: int) -> None:
        super().__init__(f"{reason} ({code})", status=code, body=None, headers={}, **REQUEST)
        self.code = code


def test_a_subclass_with_its_own_signature_pickles() -> None:
    """The tree's pickling does not call __init__, so any future signature round-trips."""
    error = FutureError("odd", code=499)
    assert summary(pickle.loads(pickle.dumps(error))) == summary(error)  # noqa: S301


async def caught_from_the_wire(transport: TransportKind) -> list[FathomError]:
    """Errors the client raises for real: a protocol error and a status error, token in play."""
    caught: list[FathomError] = []
    replies = iter([b"HTTP/1.1 abc\r\n\r\n", http(404, b'{"error": "Event not found"}')])
    server = RawServer(lambda _: next(replies))
    async with (
        server.serve() as url,
        Face("async", transport).open(TOKEN, url, retry=RetryPolicy(max_retries=0)) as client,
    ):
        for _ in range(2):
            try:
                await client.events.get(SITE, "EVENT1")
            except FathomError as error:  # noqa: PERF203 - two calls, each meant to fail
                caught.append(error)
    return caught


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_errors_unpickle_whole_in_another_process(transport: TransportKind) -> None:
    """Pickled into a fresh (spawned) process, every error keeps class, fields, no token."""
    samples = [*sample_errors(), *await caught_from_the_wire(transport)]
    blobs = [pickle.dumps(error) for error in samples]
    for error, blob in zip(samples, blobs, strict=True):
        assert_token_free(error, TOKEN)
        assert TOKEN.encode() not in blob
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        there = list(pool.map(unpickled_summary, blobs))
    for error, seen in zip(samples, there, strict=True):
        assert seen == summary(error)
        assert TOKEN not in repr(seen)


def test_record_walk_finds_a_token_in_a_record() -> None:
    """The walk over on_event's records is able to fail: it finds a token in a record's URL."""
    leaky = RequestSent(call_id=1, operation="events.list", attempt=1, method="GET", url=TOKEN)
    assert_records_token_free([RequestSent(**{**attrs.asdict(leaky), "url": URL})], TOKEN)
    with pytest.raises(AssertionError, match="the token shows"):
        assert_records_token_free([leaky], TOKEN)


def test_token_walk_finds_a_token_hidden_deep_in_a_cause() -> None:
    """The token walk is able to fail: it finds a token in a cause's attribute's slot."""

    class Holder:
        __slots__ = ("secret",)

        def __init__(self) -> None:
            self.secret = {"headers": [("Authorization", f"Bearer {TOKEN}")]}

    inner = ValueError("inner")
    inner.holder = Holder()  # type: ignore[attr-defined]
    outer = APIConnectionError("connection failed", **REQUEST)
    outer.__cause__ = inner
    with pytest.raises(AssertionError, match="the secret shows"):
        assert_token_free(outer, TOKEN)


class Shows:
    """An object that shows the token in its repr."""

    def __repr__(self) -> str:
        return f"Shows({TOKEN})"


class Hides:
    """An object that holds the token but shows it in no repr or str."""

    def __init__(self) -> None:
        self.inside = {"Authorization": f"Bearer {TOKEN}"}

    def __repr__(self) -> str:
        return "Hides()"


def refused(holder: object) -> FathomError:
    """The error a library frame raises while its local ``given`` holds ``holder``."""
    try:
        check_transport(holder)
    except FathomError as error:
        return error
    raise AssertionError("check_transport accepted it")  # pragma: no cover


def as_cause(error: FathomError) -> BaseException:
    outer = RuntimeError("outer")
    outer.__cause__ = error
    return outer


def as_context(error: FathomError) -> BaseException:
    outer = RuntimeError("outer")
    outer.__context__ = error
    return outer


WRAPS: list[Callable[[FathomError], BaseException]] = [lambda error: error, as_cause, as_context]
if sys.version_info >= (3, 11):  # exception groups are new in 3.11
    WRAPS.append(lambda error: ExceptionGroup("group", [error]))  # noqa: F821 - 3.11+ here


@pytest.mark.parametrize("holder", [Shows, Hides])
@pytest.mark.parametrize("wrap", WRAPS, ids=["itself", "cause", "context", "group"][: len(WRAPS)])
def test_frame_walk_finds_the_token_in_a_library_frame(
    holder: Callable[[], object], wrap: Callable[[FathomError], BaseException]
) -> None:
    """The frame walk can fail: a library frame's local that shows or holds the token is found."""
    error = wrap(refused(holder()))
    with pytest.raises(AssertionError, match="the token shows in check_transport's local 'given'"):
        assert_frames_token_free(error, [TOKEN])


# --- clients refuse to travel -------------------------------------------------------------

COPIERS: dict[str, Callable[[Any], object]] = {
    "pickle": pickle.dumps,
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
async def test_async_client_refuses_pickle_and_copy(copier: Callable[[Any], object]) -> None:
    """An AsyncClient (and a with_options twin) refuses pickle and copies, saying why."""
    async with AsyncClient(TOKEN, "https://api.example.test/v1") as client:
        for each in (client, client.with_options(max_retries=0)):
            with pytest.raises(TypeError, match="cannot be pickled or copied") as info:
                copier(each)
            assert "create a new asyncclient" in str(info.value).lower()
            assert TOKEN not in str(info.value)


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
def test_blocking_client_refuses_pickle_and_copy(copier: Callable[[Any], object]) -> None:
    """A blocking Client refuses pickle and copies, saying why."""
    with (
        Client(TOKEN, "https://api.example.test/v1") as client,
        pytest.raises(TypeError, match="cannot be pickled or copied") as info,
    ):
        copier(client)
    assert "thread" in str(info.value)
