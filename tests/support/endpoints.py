"""Every endpoint, called the same way on either face, against a server that answers as told.

For tests that serve chosen answers (``RawServer``) and judge what comes out:
each call uses a fresh client with retries off and fake time, so one answer's
``Retry-After`` never reaches the next call and nothing sleeps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    Client,
    DeletedEvent,
    Event,
    EventPage,
    FathomError,
    RetryPolicy,
    Site,
    SitePage,
    TokenInfo,
)
from tests.support.faces import user_transport
from tests.support.helpers import SITE, TOKEN, FakeTime

EVENT_ID = "ABCDEFGH"
NO_RETRY = RetryPolicy(max_retries=0)

#: Each endpoint's call on a client of either face (the async face's returns an awaitable),
#: the type it returns, and the start of the path it is sent to (under the base URL).
CALLS: dict[str, tuple[Callable[[Any], Any], type[Any]]] = {
    "list": (lambda c: c.events.list(SITE, limit=10, starting_after="7E2TJKBV"), EventPage),
    "get": (lambda c: c.events.get(SITE, EVENT_ID), Event),
    "create": (lambda c: c.events.create(SITE, "Purchase early access", "dollar"), Event),
    "update": (lambda c: c.events.update(SITE, EVENT_ID, name="Purchase (live)"), Event),
    "delete": (lambda c: c.events.delete(SITE, EVENT_ID), DeletedEvent),
    "wipe": (lambda c: c.events.wipe(SITE, EVENT_ID), type(None)),
    "sites.list": (lambda c: c.sites.list(limit=10, starting_after="ABCDEFGH"), SitePage),
    "sites.get": (lambda c: c.sites.get(SITE), Site),
    "token": (lambda c: c.token(), TokenInfo),
}
PATHS: dict[str, str] = {
    **dict.fromkeys(
        ["list", "get", "create", "update", "delete", "wipe"], f"/v1/sites/{SITE}/events"
    ),
    "sites.list": "/v1/sites?",
    "sites.get": f"/v1/sites/{SITE}",
    "token": "/v1/token",
}


def warned_if_wipe(call: str) -> contextlib.AbstractContextManager[object]:
    """wipe() is deprecated: expect its warning, and only there."""
    if call == "wipe":
        return pytest.warns(DeprecationWarning, match="wipe")
    return contextlib.nullcontext()


def _over(transport: str) -> dict[str, Any]:
    """The client's ``transport=`` for the harness's transport name (none for aiohttp)."""
    return {"transport": user_transport()} if transport == "user" else {}


async def outcome_async(
    url: str, call: str, *, timeout: float = 5.0, transport: str = "aiohttp"
) -> object:
    """What ``call`` gives through a fresh AsyncClient: its value or the FathomError raised."""
    fake_time = FakeTime()
    async with AsyncClient(
        TOKEN,
        url,
        timeout=timeout,
        retry=NO_RETRY,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        **_over(transport),
    ) as client:
        with warned_if_wipe(call):
            try:
                result: object = await CALLS[call][0](client)
            except FathomError as error:
                result = error
    return result


def outcome_blocking(
    url: str, call: str, *, timeout: float = 5.0, transport: str = "aiohttp"
) -> object:
    """What ``call`` gives through a fresh Client: its value or the FathomError raised."""
    fake_time = FakeTime()
    with (
        Client(
            TOKEN,
            url,
            timeout=timeout,
            retry=NO_RETRY,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            **_over(transport),
        ) as client,
        warned_if_wipe(call),
    ):
        try:
            result: object = CALLS[call][0](client)
        except FathomError as error:
            result = error
    return result
