"""Narrow transport tests: aiohttp failures map to our errors (aioresponses fakes the wire)."""

from __future__ import annotations

import asyncio
import pickle
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aioresponses import aioresponses

from fathom_events import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    ResponseTooLargeError,
    RetryPolicy,
)
from fathom_events._options import Secret
from tests.support.helpers import SITE, TOKEN

BASE = "https://api.example.test/v1"
LIST_URL = f"{BASE}/sites/{SITE}/events"


@pytest.fixture(name="client")
async def _client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(TOKEN, BASE, retry=RetryPolicy(max_retries=0)) as client:
        yield client


def connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("api.example.test", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, os_error)


@pytest.mark.parametrize(
    ("exception", "error", "sent", "tls"),
    [
        (connector_error(ConnectionRefusedError(111, "refused")), APIConnectionError, False, False),
        (aiohttp.ConnectionTimeoutError(), APITimeoutError, False, False),
        (asyncio.TimeoutError(), APITimeoutError, True, False),
        (aiohttp.SocketTimeoutError(), APITimeoutError, True, False),
        (aiohttp.ServerDisconnectedError(), APIConnectionError, True, False),
        (aiohttp.ClientPayloadError("cut"), APIConnectionError, True, False),
        (aiohttp.ClientOSError(104, "reset"), APIConnectionError, True, False),
        (ssl.SSLError("bad certificate"), APIConnectionError, False, True),
    ],
)
async def test_failures_map_to_connection_errors(
    client: AsyncClient,
    exception: Exception,
    error: type[APIConnectionError],
    sent: bool,
    tls: bool,
) -> None:
    """Each aiohttp failure becomes our error, saying whether the request may have been sent."""
    with aioresponses() as mocked:
        mocked.get(LIST_URL, exception=exception)
        with pytest.raises(error) as info:
            await client.events.list(SITE)
    assert type(info.value) is error
    assert info.value.request_sent is sent
    assert info.value.tls_failure is tls
    assert info.value.url == LIST_URL
    # aiohttp's exception is named in the message, not chained: it may hold the token.
    assert type(exception).__name__ in info.value.message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


async def test_answer_without_length_is_capped(client: AsyncClient) -> None:
    """A streamed answer with no Content-Length is cut off at max_response_bytes."""
    capped = AsyncClient(TOKEN, BASE, retry=RetryPolicy(max_retries=0), max_response_bytes=10)
    async with capped:
        with aioresponses() as mocked:
            mocked.get(LIST_URL, body=b'{"data": [], "has_more": false, "url": "/v1"}')
            with pytest.raises(ResponseTooLargeError):
                await capped.events.list(SITE)


async def test_answer_within_cap_is_read(client: AsyncClient) -> None:
    """An answer under the cap is read and decoded."""
    with aioresponses() as mocked:
        mocked.get(LIST_URL, payload={"data": [], "has_more": False, "url": "/v1/x"})
        page = await client.events.list(SITE)
    assert page.url == "/v1/x"


def test_secret_hides_itself() -> None:
    """A Secret shows no value in repr or str and refuses to be pickled."""
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert secret.reveal() == "hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
