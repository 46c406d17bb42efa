"""Constants, fake time and a plain HTTP helper shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
from yarl import URL

from fathom_events import AsyncClient, FathomError, RetryPolicy
from fathom_events.testing import FakeFathom, MemoryTransport

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

SITE = "CDBUGS"
TOKEN = FakeFathom.DEFAULT_TOKEN
_NO_BODY = object()


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Let the other tasks run at the time the sleep began, as they would on a real clock.
        self.sleeps.append(seconds)
        wake_at = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, wake_at)


@attrs.frozen
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.frozen
class Api:
    """A thin helper over one ClientSession, speaking to one fake."""

    session: aiohttp.ClientSession
    base_url: str

    def url(self, path: str) -> URL:
        return URL(self.base_url + path, encoded=True)

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        accept: str | None = "application/json",
        body: Any = _NO_BODY,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Reply:
        sent = {} if token is None else {"Authorization": f"Bearer {token}"}
        if accept is not None:
            sent["Accept"] = accept
        sent.update(headers or {})
        extra: dict[str, Any] = {"data": data} if body is _NO_BODY else {"json": body}
        async with self.session.request(method, self.url(path), headers=sent, **extra) as resp:
            return Reply(resp.status, resp.headers, await resp.read())


async def authorization_sent(token: str | None) -> str | None:
    """The Authorization header an AsyncClient made with ``token`` sends (None: read the env)."""
    fake = FakeFathom()
    fake.add_site(SITE)
    retry = RetryPolicy(max_retries=0)
    async with AsyncClient(token, transport=MemoryTransport(fake), retry=retry) as client:
        with contextlib.suppress(FathomError):  # a token the fake does not know: refused
            await client.events.list(SITE)
    return fake.requests[-1].header("Authorization")
