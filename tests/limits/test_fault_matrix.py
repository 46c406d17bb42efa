"""Every endpoint against every fault: the right outcome, attempt count and no duplicate event."""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import attrs
import pytest

from fathom_events import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    FathomError,
    GoneError,
    RedirectError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ServerError,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import user_transport
from tests.support.helpers import SITE, TOKEN, FakeTime
from tests.support.hostile import deflate_bomb, gzip_bomb
from tests.support.secrecy import assert_token_free

ENDPOINTS = ("list", "get", "create", "update", "delete", "wipe")
METHODS = {
    "list": "GET",
    "get": "GET",
    "create": "POST",
    "update": "POST",
    "delete": "DELETE",
    "wipe": "DELETE",
}
# A hang guard, not a speed target: the slowest case (a hang, retried) takes about
# two attempt timeouts of 0.25 s; a case still running after this is stuck.
CASE_BUDGET = 5.0
ATTEMPT_TIMEOUT = 0.25
# Who owns the aiohttp session: the client, or the caller (``session=``), whose session may
# raise for 4xx and 5xx itself, or leave bodies compressed. Every kind must end alike.
SESSION_KINDS = ("owned", "borrowed", "borrowed-raise-for-status", "borrowed-no-decompress")
#: No aiohttp at all: the docs' own transport (httpx), given as ``transport=``.
DOCS_TRANSPORT = "docs-transport"


@contextlib.asynccontextmanager
async def session_of(kind: str) -> AsyncIterator[aiohttp.ClientSession | None]:
    """The session to pass as ``session=`` for ``kind`` (None: the client makes its own)."""
    if kind == "owned":
        yield None
        return
    options = {
        "borrowed": {},
        "borrowed-raise-for-status": {"raise_for_status": True},
        "borrowed-no-decompress": {"auto_decompress": False},
    }[kind]
    async with aiohttp.ClientSession(**options) as session:  # type: ignore[arg-type]
        yield session
    assert session.closed


# A body every endpoint could read as its answer (unknown keys are ignored), sent with a
# redirect: it must not be taken for one.
ANY_ANSWER = {
    "id": "ELSEWHERE",
    "object": "event",
    "name": "Redirected",
    "created_at": "2024-01-01 00:00:00",
    "deleted": True,
    "data": [],
    "has_more": False,
    "url": "/v1/elsewhere",
}
ELSEWHERE = {"Location": "https://elsewhere.example/v1/sites"}


def compressed_bomb(encoding: str, bomb: Callable[[int], bytes]) -> Fault:
    """A 200 with a Content-Length: 16 MiB of JSON whitespace compressed to a few KiB."""
    headers = (("Content-Type", "application/json"), ("Content-Encoding", encoding))
    return Fault(kind="respond", status=200, headers=headers, body=bomb(16 * 2**20))


def raw(status: int, body: bytes, **headers: str) -> Fault:
    """An answer of exactly these bytes, whatever they hold."""
    fields = (("Content-Type", "application/json"), *headers.items())
    return Fault(kind="respond", status=status, headers=fields, body=body)


DEEP = b"[" * 100_000 + b"]" * 100_000
# Every field an endpoint reads, with an id no cursor could carry back.
SURROGATE_ID = (
    b'{"id": "\\ud800", "object": "event", "name": "x", "created_at": "2024-01-01 00:00:00",'
    b' "deleted": true, "data": [{"id": "\\ud800", "name": "x", "currency": null,'
    b' "created_at": "2024-01-01 00:00:00"}], "has_more": true, "url": "/v1"}'
)
OUT_OF_RANGE = (
    b'{"id": "E", "object": "event", "name": "x", "created_at": "9999-12-31T23:59:59-01:00",'
    b' "deleted": "yes", "data": [{"id": "E", "name": "x", "currency": null,'
    b' "created_at": "0001-01-01T00:00:00+01:00"}], "has_more": false, "url": "/v1"}'
)


@attrs.frozen
class Case:
    """One fault; ``ambiguous`` faults are retried except on create, ``effect`` means it acted."""

    name: str
    fault: Fault
    outcome: str  # "ok": succeeds in 1 attempt; "retry": in 2; "ambiguous"; or "error"
    error: type[FathomError] | None = None
    effect: bool = False


CASES = [
    Case("429", Fault.rate_limited("1"), "retry"),
    Case("503", Fault.respond(503, json={"error": "unavailable"}), "retry"),
    Case("500", Fault.respond(500, json={"error": "oops"}), "ambiguous", ServerError),
    Case("502-html", Fault.html(502), "ambiguous", ServerError),
    Case("504-html", Fault.html(504), "ambiguous", ServerError),
    Case(
        "502-after-action",
        Fault.html(502, after_action=True),
        "ambiguous",
        ServerError,
        effect=True,
    ),
    Case("disconnect", Fault.disconnect(), "ambiguous", APIConnectionError),
    Case(
        "disconnect-after-action",
        Fault.disconnect(after_action=True),
        "ambiguous",
        APIConnectionError,
        effect=True,
    ),
    Case("hang", Fault.hang(), "ambiguous", APITimeoutError),
    Case("trickle", Fault.trickle(1, 0.05), "ambiguous", APITimeoutError, effect=True),
    Case("delay", Fault.delay(0.01), "ok"),
    Case("truncated-json", Fault.truncated_json(), "error", ResponseDecodeError, effect=True),
    Case("malformed-json", Fault.malformed_json(), "error", ResponseDecodeError),
    Case("huge-body", Fault.huge_body(2_000_000), "error", ResponseTooLargeError),
    Case("gzip-bomb", compressed_bomb("gzip", gzip_bomb), "error", ResponseTooLargeError),
    Case("deflate-bomb", compressed_bomb("deflate", deflate_bomb), "error", ResponseTooLargeError),
    Case(
        "301-answer", Fault.respond(301, json=ANY_ANSWER, headers=ELSEWHERE), "error", RedirectError
    ),
    Case(
        "307-answer", Fault.respond(307, json=ANY_ANSWER, headers=ELSEWHERE), "error", RedirectError
    ),
    Case("deep-json", raw(200, DEEP), "error", ResponseDecodeError),
    Case("surrogate-id", raw(200, SURROGATE_ID), "error", ResponseDecodeError),
    Case("out-of-range-time", raw(200, OUT_OF_RANGE), "error", ResponseDecodeError),
    Case("deep-400", raw(400, b'{"error": ' + DEEP + b"}"), "error", BadRequestError),
    Case("429-absurd-retry-after", raw(429, b"{}", **{"Retry-After": "1e308"}), "retry"),
]


def call_for(client: AsyncClient, endpoint: str, event_id: str) -> Callable[[], Awaitable[object]]:
    events = client.events
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "list": lambda: events.list(SITE),
        "get": lambda: events.get(SITE, event_id),
        "create": lambda: events.create(SITE, "New goal"),
        "update": lambda: events.update(SITE, event_id, name="Renamed"),
        "delete": lambda: events.delete(SITE, event_id),
        "wipe": lambda: events.wipe(SITE, event_id),
    }
    return calls[endpoint]


def expected_attempts(case: Case, endpoint: str) -> int:
    if case.outcome == "retry":
        return 2
    if case.outcome == "ambiguous":
        return 1 if endpoint == "create" else 2
    return 1


def check_outcome(
    case: Case, endpoint: str, outcome: object, fake: FakeFathom, requests_sent: int
) -> None:
    """Assert the case's expected end: attempts sent, the result or typed error, no duplicate."""
    attempts = expected_attempts(case, endpoint)
    assert len(fake.requests) == attempts
    # Every request that reached the server was one the client sent and counted: nothing
    # (aiohttp's hidden resend, say) sends behind the retry loop's back.
    assert requests_sent == attempts
    if isinstance(outcome, BaseException):
        assert_token_free(outcome, TOKEN)
    fails = case.outcome == "error" or (case.outcome == "ambiguous" and endpoint == "create")
    if endpoint == "wipe" and (not fails or case.name == "truncated-json"):
        # Wipe's success is the retired endpoint's 410; a cut 410 body is still a 410.
        assert isinstance(outcome, GoneError), outcome
        assert outcome.attempts == attempts
    elif fails:
        assert isinstance(outcome, case.error or FathomError), outcome
        assert outcome.attempts == attempts
        if endpoint == "create":
            # A 2xx we could not read did take effect, as far as the client can tell.
            claimed = case.outcome == "ambiguous" or case.error in {
                ResponseDecodeError,
                ResponseTooLargeError,
            }
            assert outcome.may_have_been_applied is claimed
    else:
        assert not isinstance(outcome, BaseException), outcome
    created = [e for e in fake.events(SITE) if e["name"] == "New goal"]
    assert len(created) <= 1, "an event was created twice"
    if endpoint == "create" and not fails:
        assert len(created) == 1


@pytest.mark.parametrize("session_kind", [*SESSION_KINDS, DOCS_TRANSPORT])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault_matrix(
    sessions_made: list[aiohttp.ClientSession],
    endpoint: str,
    case: Case,
    session_kind: str,
    fake_time: FakeTime,
) -> None:
    """Each endpoint under each fault, on any session or transport, ends in the same way."""
    fake = FakeFathom()
    stored = fake.add_event(SITE, "Existing")
    fake.inject(case.fault, method=METHODS[endpoint], path=f"/v1/sites/{SITE}/events*")
    outcome: object = None
    started = time.monotonic()
    over_docs = session_kind == DOCS_TRANSPORT
    async with fake.serve() as url, session_of("owned" if over_docs else session_kind) as session:
        client = AsyncClient(
            TOKEN,
            url,
            timeout=ATTEMPT_TIMEOUT,
            max_response_bytes=1_000_000,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            session=session,
            transport=user_transport() if over_docs else None,
        )
        async with client:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # wipe's, tested elsewhere
                    call = call_for(client, endpoint, stored["id"])
                    outcome = await asyncio.wait_for(call(), CASE_BUDGET)
            except FathomError as error:
                outcome = error
        if over_docs:
            pass  # no aiohttp session: the docs' transport is the client's to close
        elif session is None:
            (own,) = sessions_made
            assert own.closed
        else:
            assert not session.closed  # a borrowed session is the caller's to close

    assert time.monotonic() - started < CASE_BUDGET
    check_outcome(case, endpoint, outcome, fake, client.requests_sent)
    # Nothing of ours is left running once the client and the server are closed.
    assert asyncio.all_tasks() == {asyncio.current_task()}
