"""Checked by ``mypy --strict fathom_events tests/typing``, never run: both faces' parameters.

The constructors and ``with_options`` take their parameters from one place
(``ClientOptions``, ``AsyncClient.with_options``); type checkers must still see
each one, typed: a wrong argument is an error, pinned by an ``ignore`` that
mypy would report as unused if the error went away.
"""

# ruff: noqa: INP001 - a loose file for mypy to check, deliberately not a package
from __future__ import annotations

import ssl

import aiohttp
from typing_extensions import assert_type
from yarl import URL

from fathom_events import AsyncClient, Client, RateLimit, RetryPolicy


async def async_client_takes_every_setting(session: aiohttp.ClientSession) -> None:
    """Every setting, and a lent session, by its name and type; three of them by position."""
    client = AsyncClient(
        "token",
        "https://api.example.test/v1",
        30,
        connect_timeout=None,
        retry=RetryPolicy(),
        max_in_flight=2,
        rate_limit=RateLimit(10),
        session=session,
        max_response_bytes=1024,
        allow_insecure_http=False,
        clock=lambda: 0.0,
    )
    assert_type(client, AsyncClient)
    assert_type(client.with_options(max_retries=1, timeout=2.0), AsyncClient)
    AsyncClient(max_in_flight="8")  # type: ignore[arg-type]
    AsyncClient(sleep=print)  # type: ignore[arg-type]
    AsyncClient(None, None)  # None: $FATHOM_API_BASE_URL, else Fathom's own
    AsyncClient(None, 3)  # type: ignore[arg-type]
    AsyncClient(proxy=URL("http://proxy:3128"))  # type: ignore[arg-type]
    AsyncClient(ssl=True)  # type: ignore[arg-type]
    AsyncClient(trust_env=True, ssl=ssl.create_default_context(), proxy="http://proxy:3128")
    AsyncClient(token="t", retries=3)  # type: ignore[call-arg]
    AsyncClient(on_event=print)  # any callable of one record
    AsyncClient(on_event=lambda record: record.call_id)
    AsyncClient(on_event=lambda record: record.seconds)  # type: ignore[attr-defined]
    AsyncClient(on_event=lambda: None)  # type: ignore[arg-type, misc]
    client.with_options(max_retries="1")  # type: ignore[arg-type]


def blocking_client_takes_every_setting_but_a_session() -> None:
    """The blocking face takes the same settings, and no session."""
    client = Client("token", timeout=None, retry=None, max_response_bytes=1024)
    assert_type(client, Client)
    assert_type(client.with_options(retry_ambiguous_creates=True), Client)
    Client(timeout="30")  # type: ignore[arg-type]
    Client(on_event="print")  # type: ignore[arg-type]
    Client("t", "u", 1.0, 2.0)  # type: ignore[call-arg]
    client.with_options(retry=3)  # type: ignore[arg-type]
    client.with_options(1)  # type: ignore[call-arg]
