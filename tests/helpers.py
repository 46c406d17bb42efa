"""Constants and fake time shared by the tests."""

from __future__ import annotations

import asyncio

from fathom_events import AsyncClient
from fathom_events._transport import Transport
from fathom_events.testing import FakeFathom

SITE = "CDBUGS"
TOKEN = FakeFathom.DEFAULT_TOKEN


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


def aiohttp_transport(client: AsyncClient) -> Transport:
    """The client's default (aiohttp) transport, for tests that look at its sessions."""
    transport = client._transport
    assert isinstance(transport, Transport)
    return transport
