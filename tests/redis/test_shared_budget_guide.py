"""The guide "Many workers, one rate budget": its recipes run as written, sharing one budget.

Each recipe is run twice, as two workers would run it (a namespace each, so a
client each), against a served FakeFathom and the tests' real redis-server
(``REDIS_URL``, as the recipes read it). Both workers' requests must be in one
budget in Redis, and nothing Redis holds may show the token.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest
from starlette.testclient import TestClient

from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, TOKEN, FakeTime
from tests.support.readme import SHARED_BUDGET_PAGE, point_at_the_fake, python_blocks
from tests.support.redis import RedisServer

WORKERS = 2


def recipes() -> list[str]:
    """The guide's Python blocks, in order: the web workers', then Celery's."""
    return [block.source for block in python_blocks(SHARED_BUDGET_PAGE)]


def worker(source: str) -> dict[str, Any]:
    """One worker process's module: the recipe run in a namespace of its own."""
    namespace: dict[str, Any] = {"__name__": "worker"}
    exec(compile(source, "shared-budget.md", "exec"), namespace)  # noqa: S102 - our docs' code
    return namespace


@pytest.fixture(autouse=True)
def _world(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeFathom,
    thread_url: str,
    fake_time: FakeTime,
    redis_url: str,
) -> None:
    """The recipes' AsyncClient() talks to the fake; REDIS_URL is the tests' redis-server."""
    point_at_the_fake(monkeypatch, thread_url, fake_time)
    monkeypatch.setenv("REDIS_URL", redis_url)
    fake.add_event(SITE, "Signed up")


def places_by_budget(redis_server: RedisServer) -> dict[bytes, int]:
    """Each budget's sorted set of places in Redis, and how many places it holds."""
    held = redis_server.everything()
    assert not any(
        TOKEN.encode() in key or TOKEN.encode() in repr(v).encode() for key, v in held.items()
    )
    return {key: len(value) for key, value in held.items() if isinstance(value, list)}


def test_every_block_of_the_section_is_run_here() -> None:
    """The guide holds the two recipes these tests run: web workers, then Celery."""
    assert len(recipes()) == 2


def test_web_workers_share_one_budget(fake: FakeFathom, redis_server: RedisServer) -> None:
    """Two workers of the Starlette recipe answer through their own clients, in one budget."""
    apps = [worker(recipes()[0])["app"] for _ in range(WORKERS)]
    for app in apps:
        with TestClient(app) as http:
            assert http.get(f"/sites/{SITE}/events").json() == ["Signed up"]
    assert len(fake.requests) == WORKERS
    assert list(places_by_budget(redis_server).values()) == [WORKERS]


def test_celery_workers_share_one_budget(fake: FakeFathom, redis_server: RedisServer) -> None:
    """Two workers of the Celery recipe run the task, each in a loop per call, in one budget."""
    workers = [worker(recipes()[1]) for _ in range(WORKERS)]
    totals = [each["ensure_goals_task"](SITE) for each in workers]
    assert [t["created"] for t in totals] == [1, 0]  # the first made "Purchased"
    sent = collections.Counter(request.method for request in fake.requests)
    assert list(places_by_budget(redis_server).values()) == [sum(sent.values())]
    for each in workers:
        asyncio.run(each["fathom"].aclose())
