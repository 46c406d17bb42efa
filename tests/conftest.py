"""Shared fixtures: a served FakeFathom, clients pointed at it, and fake time."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

import fathom_events
from fathom_events import AsyncClient, Client, FathomError, RetryPolicy
from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, TOKEN, Api, FakeTime
from tests.support.secrecy import assert_token_free

# The suite decides where clients send and what they log: a developer's own settings in the
# shell (or the CI machine's) would change both, here and in every command line run.
for _variable in ("FATHOM_API_BASE_URL", "FATHOM_EVENTS_LOG", "FATHOM_EVENTS_REDIS_URL"):
    os.environ.pop(_variable, None)

# A real redis-server for the tests of the shared budget: redis_server, redis_url, start_redis.
pytest_plugins = ["tests.support.redis"]

# The front door binds each public name when it is first used. Use them all now, as
# `from fathom_events import *` does, so that a test of its namespace sees every name
# whichever test runs first (test_exported_members, run one test at a time).
for _name in fathom_events.__all__:
    getattr(fathom_events, _name)


@pytest.fixture(name="fake_time")
def _fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(name="every_error_token_free")
def _every_error_token_free(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every FathomError made during the test is checked for the token once the test ends.

    Errors are recorded as they are made, wherever the test catches them (or a
    bulk report keeps them), and each is walked when the test is over: its
    attributes, a pickle, and every frame along its tracebacks.
    """
    made: list[FathomError] = []

    def recorded(self: FathomError, *args: object) -> None:
        super(FathomError, self).__init__(*args)
        made.append(self)

    monkeypatch.setattr(FathomError, "__init__", recorded)
    yield
    for error in made:
        assert_token_free(error, TOKEN)


@pytest.fixture(name="sessions_made")
def _sessions_made(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every aiohttp session made from now to the test's end, in order, in any thread.

    How a test sees a client's own sessions from outside: when one is made,
    reused, closed. Take this fixture before any other that makes a session.
    """
    made: list[aiohttp.ClientSession] = []
    make = aiohttp.ClientSession.__init__

    def recorded(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        make(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", recorded)
    return made


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom()
    fake.add_site(SITE)
    return fake


@pytest.fixture(name="base_url")
async def _base_url(fake: FakeFathom) -> AsyncIterator[str]:
    async with fake.serve() as url:
        yield url


@pytest.fixture(name="api")
async def _api(base_url: str) -> AsyncIterator[Api]:
    """Plain HTTP to the served fake (not our client), over one aiohttp.ClientSession."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, base_url)


@pytest.fixture(name="policy")
def _policy() -> RetryPolicy:
    return RetryPolicy()


@pytest.fixture(name="client")
async def _client(
    base_url: str, fake_time: FakeTime, policy: RetryPolicy
) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        TOKEN, base_url, timeout=5.0, retry=policy, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        yield client


@pytest.fixture(name="thread_url")
def _thread_url(fake: FakeFathom) -> Iterator[str]:
    with fake.serve_in_thread() as url:
        yield url


@pytest.fixture(name="sync_client")
def _sync_client(thread_url: str, fake_time: FakeTime, policy: RetryPolicy) -> Iterator[Client]:
    with Client(
        TOKEN, thread_url, timeout=5.0, retry=policy, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        yield client
