"""AsyncClient over real loopback HTTP against FakeFathom: every endpoint, every error class.

The cases that hold on both faces are in client_cases.py; this file runs them on the
async face, and holds what only the async client has (borrowed sessions, its loop).
"""

from __future__ import annotations

import asyncio

import aiohttp
import attrs
import pytest

from fathom_events import (
    APITimeoutError,
    AsyncClient,
    ClientClosedError,
    InvalidRequestError,
    RetryPolicy,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.client_cases import CASES, Case
from tests.support.faces import Face, Served
from tests.support.helpers import SITE, TOKEN, FakeTime, authorization_sent

NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture(name="face")
def _face(fake: FakeFathom, base_url: str, fake_time: FakeTime, policy: RetryPolicy) -> Served:
    return Served(Face("async"), fake, base_url, fake_time, policy)


@pytest.mark.parametrize("case", CASES)
async def test_client_case(case: Case, face: Served) -> None:
    """Each case of the table shared with the blocking client holds on AsyncClient."""
    await case(face)


@pytest.mark.parametrize("case", CASES)
async def test_client_case_over_the_docs_transport(case: Case, face: Served) -> None:
    """Each case of the table holds on AsyncClient over the docs' own transport (httpx)."""
    await case(attrs.evolve(face, face=Face("async", "user")))


async def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """token=None reads FATHOM_API_TOKEN; no token at all is a clear InvalidRequestError."""
    monkeypatch.setenv("FATHOM_API_TOKEN", "from-env")
    assert await authorization_sent(None) == "Bearer from-env"
    monkeypatch.delenv("FATHOM_API_TOKEN")
    with pytest.raises(InvalidRequestError, match="FATHOM_API_TOKEN") as info:
        AsyncClient()
    assert info.value.field == "token"


@pytest.mark.parametrize("token", ["", "  ", "a\nb", 42])
def test_malformed_tokens_rejected(token: object) -> None:
    """An empty token, or one that could break the header, is refused at construction."""
    with pytest.raises(InvalidRequestError, match="token"):
        AsyncClient(token)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/v1",
        "ftp://x/v1",
        "not a url",
        "https://u:p@x/v1",
        "https://x/v1?t=1",
    ],
)
def test_unsafe_base_urls_rejected(url: str) -> None:
    """Plain http to a non-loopback host, odd schemes and URLs with credentials are refused."""
    with pytest.raises(InvalidRequestError, match="base_url"):
        AsyncClient(TOKEN, url)


async def test_one_session_for_many_calls(
    sessions_made: list[aiohttp.ClientSession], client: AsyncClient
) -> None:
    """The client makes one session and reuses it for every request."""
    await client.events.list(SITE)
    await client.events.list(SITE)
    await client.events.create(SITE, "x")
    (session,) = sessions_made
    assert not session.closed


async def test_close_closes_owned_session_and_refuses_calls(
    sessions_made: list[aiohttp.ClientSession], base_url: str
) -> None:
    """aclose() closes the session we made; later calls raise ClientClosedError."""
    client = AsyncClient(TOKEN, base_url)
    await client.events.list(SITE)
    (session,) = sessions_made
    await client.aclose()
    assert session.closed
    assert client.closed
    with pytest.raises(ClientClosedError):
        await client.events.list(SITE)
    await client.aclose()  # idempotent


async def test_borrowed_session_is_used_and_left_open(base_url: str, fake: FakeFathom) -> None:
    """A session the user passes in is used for requests and never closed by the client."""
    async with aiohttp.ClientSession(headers={"X-Mine": "yes"}) as session:
        async with AsyncClient(TOKEN, base_url, session=session) as client:
            await client.events.list(SITE)
        assert not session.closed
        assert fake.requests[-1].header("X-Mine") == "yes"


async def test_with_options_shares_session_and_overrides(
    sessions_made: list[aiohttp.ClientSession], client: AsyncClient
) -> None:
    """with_options returns a client sharing the session with the chosen retry and timeout."""
    await client.events.list(SITE)
    twin = client.with_options(max_retries=0, timeout=1.5)
    assert twin.retry_policy.max_retries == 0
    assert client.retry_policy.max_retries == 3
    assert twin._options.timeouts.total == 1.5
    await twin.events.list(SITE)
    assert len(sessions_made) == 1  # the twin sent on the original's session
    await twin.aclose()
    assert not client.closed


async def test_close_during_a_retry_wait_is_client_closed(
    fake: FakeFathom, base_url: str, fake_time: FakeTime
) -> None:
    """A call whose client is closed while it waits to retry raises ClientClosedError."""
    fake.inject(Fault.rate_limited("5"))
    client = AsyncClient(TOKEN, base_url, clock=fake_time.clock, sleep=fake_time.sleep)
    original_sleep = fake_time.sleep

    async def close_while_waiting(seconds: float) -> None:
        await client.aclose()
        await original_sleep(seconds)

    client._limits.sleep = close_while_waiting
    with pytest.raises(ClientClosedError):
        await client.events.list(SITE)
    assert len(fake.requests) == 1


async def test_borrowed_session_gets_our_timeout(fake: FakeFathom, base_url: str) -> None:
    """A session the user passes in still has each attempt bounded by the client's timeout."""
    fake.inject(Fault.hang())
    async with aiohttp.ClientSession() as session:  # aiohttp's own default is 5 minutes
        client = AsyncClient(TOKEN, base_url, timeout=0.2, session=session, retry=NO_RETRY)
        async with client:
            with pytest.raises(APITimeoutError):  # not the guard's TimeoutError
                await asyncio.wait_for(client.events.list(SITE), 5)
