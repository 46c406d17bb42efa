"""FakeFathom's rate budget per token (`rate_limit=`), counted as Laravel's throttle counts.

Over real HTTP with a plain aiohttp.ClientSession, and through `fake.answer()`
(what MemoryTransport calls). Time is the fake's clock, moved by hand: no test
sleeps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from fathom_events.testing import FakeFathom, Fault
from fathom_events.testing._recording import record_sent
from tests.fake.test_fake_server import T0, events_path
from tests.support.helpers import TOKEN, Api

SITE = "CDBUGS"
OTHER = "other-token"
SPENT = {"error": "Too Many Attempts."}


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="fake")
def _fake(clock: Clock) -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"], OTHER: ["*"]}, now=clock, rate_limit=(3, 60))
    fake.add_site(SITE)
    return fake


async def statuses(api: Api, count: int, path: str = "/token", **options: Any) -> list[int]:
    return [(await api.call("GET", path, **options)).status for _ in range(count)]


async def in_memory(fake: FakeFathom, method: str, path: str, token: str = TOKEN) -> Any:
    """`fake.answer()` for a request to `path` (under /v1): status, headers and parsed body."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    status, answered, body = await fake.answer(
        record_sent(method, f"http://fake/v1{path}", headers, None)
    )
    return status, answered, json.loads(body)


async def test_a_spent_budget_answers_429_until_the_window_closes(api: Api, clock: Clock) -> None:
    """Past `requests` in the window: 429, Retry-After the seconds left, Too Many Attempts."""
    assert await statuses(api, 3) == [200, 200, 200]
    clock.advance(10)
    refused = await api.call("GET", "/token")
    assert (refused.status, refused.headers["Retry-After"], refused.json()) == (429, "50", SPENT)
    clock.advance(49.5)
    assert (await api.call("GET", "/token")).headers["Retry-After"] == "1"
    clock.advance(0.5)  # the window opened at T0 closes at T0 + 60 s
    assert await statuses(api, 4) == [200, 200, 200, 429]


async def test_retry_after_rounds_up_and_is_at_least_one(api: Api, clock: Clock) -> None:
    """Retry-After is the whole seconds left, rounded up; never 0 while the window is open."""
    await statuses(api, 3)
    clock.advance(12.2)
    assert (await api.call("GET", "/token")).headers["Retry-After"] == "48"
    clock.advance(47.79)
    assert (await api.call("GET", "/token")).headers["Retry-After"] == "1"


async def test_the_window_opens_at_the_tokens_first_request(api: Api, clock: Clock) -> None:
    """The window starts with the token's first request, not with the fake, nor is it sliding."""
    clock.advance(1000)
    assert await statuses(api, 1) == [200]
    clock.advance(59)
    assert await statuses(api, 3) == [200, 200, 429]
    clock.advance(1)
    assert await statuses(api, 3) == [200, 200, 200]


async def test_refused_requests_do_not_count(api: Api, clock: Clock) -> None:
    """However many requests are refused, the next window has the whole budget."""
    assert await statuses(api, 10) == [200] * 3 + [429] * 7
    clock.advance(60)
    assert await statuses(api, 4) == [200, 200, 200, 429]


async def test_each_token_has_its_own_budget(api: Api) -> None:
    """One token's spent budget leaves another token's whole."""
    assert await statuses(api, 4) == [200, 200, 200, 429]
    assert await statuses(api, 4, token=OTHER) == [200, 200, 200, 429]


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_failed_authentication_neither_counts_nor_is_refused(
    api: Api, token: str | None
) -> None:
    """A request without a valid token is 401, spent budget or not, and spends nothing."""
    assert await statuses(api, 5, token=token) == [401] * 5
    assert await statuses(api, 4) == [200, 200, 200, 429]
    assert await statuses(api, 2, token=token) == [401] * 2


async def test_every_answer_of_an_endpoint_counts_but_unknown_routes(api: Api) -> None:
    """An endpoint's 404 and 400 count; an unknown path or a wrong method is answered first."""
    assert (await api.call("GET", events_path("NOPE"))).status == 404
    assert (await api.call("POST", events_path(), body={"name": " "})).status == 400
    assert (await api.call("GET", "/nope")).status == 404
    assert (await api.call("PUT", "/token")).status == 405
    assert await statuses(api, 2) == [200, 429]
    assert (await api.call("GET", "/nope")).status == 404
    assert (await api.call("PUT", "/token")).status == 405


async def test_http_and_memory_share_one_budget(api: Api, fake: FakeFathom, clock: Clock) -> None:
    """fake.answer() counts and refuses exactly as HTTP does, from the same budget."""
    assert await statuses(api, 1) == [200]
    assert (await in_memory(fake, "GET", "/token"))[0] == 200
    assert await statuses(api, 1) == [200]
    clock.advance(30)
    status, headers, body = await in_memory(fake, "GET", "/token")
    over_http = await api.call("GET", "/token")
    assert (status, headers["Retry-After"], body) == (429, "30", SPENT)
    assert (over_http.status, over_http.headers["Retry-After"], over_http.json()) == (
        429,
        "30",
        SPENT,
    )
    assert (await in_memory(fake, "GET", "/token", token="wrong"))[0] == 401


async def test_faults_that_answer_for_the_api_spend_nothing(api: Api, fake: FakeFathom) -> None:
    """A fault answering instead of the API (respond, disconnect) is used up and spends nothing."""
    fake.inject(Fault.respond(503), times=2)
    fake.inject(Fault.disconnect(), method="POST")
    assert await statuses(api, 2) == [503, 503]
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", events_path(), body={"name": "Lost"})
    assert await statuses(api, 4) == [200, 200, 200, 429]
    fake.inject(Fault.respond(503))
    assert await statuses(api, 2) == [503, 429]  # a gateway answers even once it is spent
    assert fake.pending_faults() == 0


async def test_faults_that_perform_spend_and_meet_the_budget(api: Api, fake: FakeFathom) -> None:
    """A fault letting the API act (after_action, delay, truncated_json) spends, or is 429."""
    fake.inject(Fault.respond(500, after_action=True))
    fake.inject(Fault.delay(0))
    assert await statuses(api, 3) == [500, 200, 200]
    fake.inject(Fault.delay(0))
    fake.inject(Fault.truncated_json())
    delayed = await api.call("GET", "/token")
    truncated = await api.call("GET", "/token")
    assert (delayed.status, delayed.json()) == (429, SPENT)
    assert truncated.status == 429
    assert truncated.body == json.dumps(SPENT).encode()[: len(json.dumps(SPENT)) // 2]


@pytest.mark.parametrize(
    "rate_limit",
    [
        (0, 60),
        (1, 0),
        (1, -5),
        (True, 60),
        ("10", 60),
        (10, "60"),
        (10,),
        10,
        (10, float("nan")),
        (1, 1e13),  # past the calendar once added to now: every request would answer 500
        (1, 1e20),
    ],
)
def test_bad_rate_limits_are_refused(rate_limit: Any) -> None:
    """rate_limit must be (requests >= 1, 0 < seconds <= ten years): else a ValueError."""
    with pytest.raises(ValueError, match="rate_limit"):
        FakeFathom(rate_limit=rate_limit)


async def test_no_rate_limit_by_default() -> None:
    """A FakeFathom without rate_limit never answers 429 on its own."""
    fake = FakeFathom()
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        assert set(await statuses(Api(session, base_url), 50)) == {200}
