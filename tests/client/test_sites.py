"""client.sites and client.token(), on both faces, over real HTTP against FakeFathom."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fathom_events import (
    AsyncClient,
    BadRequestError,
    Client,
    ClientClosedError,
    InvalidRequestError,
    NotFoundError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
    Site,
    SitePage,
    TokenInfo,
    TooManySitesError,
)
from fathom_events._converter import json_loads
from fathom_events.testing import FakeFathom, Fault, MemoryTransport, RecordedRequest
from tests.support.faces import Face, collect, face_fixture, opened  # noqa: F401 - face_fixture: `face`
from tests.support.helpers import SITE, TOKEN
from tests.support.hostile import RawServer, http

#: Whether answers are read with the stdlib's json (a plain install) rather than orjson.
STDLIB_JSON = json_loads is json.loads

T0 = datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)
NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom(now=lambda: T0)
    fake.add_site(SITE, "Bugs Bunny Portfolio", sharing="none", timezone="America/New_York",
                  created_at=T0 - timedelta(days=2))  # fmt: skip
    fake.add_site("SECOND", "Second", sharing="private", created_at=T0 - timedelta(days=1))
    fake.add_site("THIRD", "Third", sharing="public", timezone="Europe/Paris", created_at=T0)
    return fake


def many_sites(count: int) -> FakeFathom:
    fake = FakeFathom(now=lambda: T0)
    for n in range(count):
        fake.add_site(f"S{n:04}", created_at=T0 + timedelta(seconds=n))
    return fake


# -- sites ----------------------------------------------------------------------------


async def test_list_reads_every_field(face: Face, fake: FakeFathom) -> None:
    """sites.list() gives a SitePage of Site objects, oldest first, with each field read."""
    async with opened(face, fake) as run:
        page = await run(lambda c: c.sites.list())
    assert isinstance(page, SitePage)
    assert (page.has_more, page.url) == (False, "/v1/sites")
    assert page.data[0] == Site(
        SITE, "Bugs Bunny Portfolio", "none", T0 - timedelta(days=2), "America/New_York"
    )
    assert [(s.id, s.sharing) for s in page.data] == [
        (SITE, "none"),
        ("SECOND", "private"),
        ("THIRD", "public"),
    ]


async def test_list_sends_limit_and_cursors(face: Face, fake: FakeFathom) -> None:
    """limit, starting_after and ending_before reach the API and give the pages they name."""
    async with opened(face, fake) as run:
        after = await run(lambda c: c.sites.list(limit=1, starting_after=SITE))
        before = await run(lambda c: c.sites.list(ending_before="THIRD"))
    assert ([s.id for s in after.data], after.has_more) == (["SECOND"], True)
    assert [s.id for s in before.data] == ["SECOND", SITE]
    queries = [r.query for r in fake.requests_for("GET", "/v1/sites")]
    assert queries == [{"limit": "1", "starting_after": SITE}, {"ending_before": "THIRD"}]


async def test_get_one_site_and_a_missing_one(face: Face, fake: FakeFathom) -> None:
    """sites.get() reads one site; an unknown one is NotFoundError."""
    async with opened(face, fake) as run:
        site = await run(lambda c: c.sites.get("THIRD"))
        with pytest.raises(NotFoundError):
            await run(lambda c: c.sites.get("NOPE"))
    assert site == Site("THIRD", "Third", "public", T0, "Europe/Paris")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.sites.list(limit=0), "limit"),
        (lambda c: c.sites.list(limit=101), "limit"),
        (lambda c: c.sites.list(starting_after="A", ending_before="B"), "starting_after"),
        (lambda c: c.sites.list(starting_after="\ud800"), "starting_after"),
        (lambda c: c.sites.get(""), "site_id"),
        (lambda c: c.sites.get("bad\udfff"), "site_id"),
        (lambda c: c.sites.paginate(page_size=0), "page_size"),
        (lambda c: c.sites.paginate(starting_after="A", ending_before="B"), "starting_after"),
        (lambda c: c.sites.ids(max_sites=0), "max_sites"),
        (lambda c: c.sites.ids(max_sites=True), "max_sites"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    face: Face, fake: FakeFathom, call: Callable[[Any], Any], field: str
) -> None:
    """Sites' input is checked as events' is: InvalidRequestError naming the field, no request."""
    async with opened(face, fake) as run:
        with pytest.raises(InvalidRequestError) as caught:
            await run(call)
    assert caught.value.field == field
    assert fake.requests == []


async def test_paginate_walks_both_ways(face: Face) -> None:
    """paginate() walks every site forward (oldest first) or backward (newest first)."""
    fake = many_sites(25)
    async with opened(face, fake) as run:
        forward = await collect(await run(lambda c: c.sites.paginate(page_size=10)))
        backward = await collect(
            await run(lambda c: c.sites.paginate(page_size=10, ending_before="S0024"))
        )
    assert [s.id for s in forward] == [f"S{n:04}" for n in range(25)]
    assert [s.id for s in backward] == [f"S{n:04}" for n in reversed(range(24))]


async def test_ids_lists_every_site_100_a_request(face: Face) -> None:
    """ids() gives every site's id, oldest first, in pages of 100."""
    fake = many_sites(150)
    async with opened(face, fake) as run:
        ids = await run(lambda c: c.sites.ids())
    assert ids == [f"S{n:04}" for n in range(150)]
    assert [r.query.get("limit") for r in fake.requests] == ["100", "100"]


def site_json(site_id: str) -> dict[str, object]:
    return {"id": site_id, "object": "site", "name": site_id, "created_at": "2020-07-27 12:01:01"}


def sites_page(*site_ids: str, has_more: bool) -> Fault:
    page = {"object": "list", "url": "/v1/sites", "has_more": has_more,
            "data": [site_json(site_id) for site_id in site_ids]}  # fmt: skip
    return Fault.respond(200, json=page)


def repeat_sites_across_pages(fake: FakeFathom) -> None:
    """The next two listings of sites answer A, B, then B, A, C: a hostile or shifting listing."""
    fake.inject(sites_page("A", "B", has_more=True), method="GET", path="/v1/sites")
    fake.inject(sites_page("B", "A", "C", has_more=False), method="GET", path="/v1/sites")


async def test_ids_gives_each_site_once(face: Face, fake: FakeFathom) -> None:
    """ids() keeps the first of a site that the listing's pages give again."""
    repeat_sites_across_pages(fake)
    async with opened(face, fake) as run:
        ids = await run(lambda c: c.sites.ids())
    assert ids == ["A", "B", "C"]
    assert [r.query.get("starting_after") for r in fake.requests] == [None, "B"]


async def test_ids_cap_counts_each_site_once(face: Face, fake: FakeFathom) -> None:
    """A site given again does not count toward max_sites."""
    repeat_sites_across_pages(fake)
    async with opened(face, fake) as run:
        assert await run(lambda c: c.sites.ids(max_sites=3)) == ["A", "B", "C"]


async def test_ids_stops_past_its_cap(face: Face) -> None:
    """ids(max_sites=N) raises TooManySitesError at the first page past N, and asks no further."""
    fake = many_sites(350)
    async with opened(face, fake) as run:
        with pytest.raises(TooManySitesError) as caught:
            await run(lambda c: c.sites.ids(max_sites=150))
    assert caught.value.limit == 150
    assert "max_sites" in str(caught.value)
    assert len(fake.requests) == 2


async def test_listing_needs_an_account_wide_token(face: Face, fake: FakeFathom) -> None:
    """A per-site token may get its site but not list sites: the API's 400 is BadRequestError."""
    fake.add_token("per-site", [f"manage:{SITE}"])
    async with opened(face, fake, "per-site") as run:
        assert (await run(lambda c: c.sites.get(SITE))).id == SITE
        with pytest.raises(BadRequestError, match="permission"):
            await run(lambda c: c.sites.list())


def served(body: object) -> RawServer:
    return RawServer(lambda _: http(200, json.dumps(body).encode()))


async def test_sites_are_read_tolerantly() -> None:
    """Unknown fields are ignored, sharing/timezone may be missing or unknown, either time form."""
    body = {
        "object": "list",
        "has_more": False,
        "url": ["/v1/sites"],  # not a string: the request's path is kept instead
        "data": [
            {"id": "A", "name": "a", "created_at": "2020-07-27T12:01:01.500Z", "extra": [1]},
            {"id": "B", "name": "b", "sharing": "team-only", "created_at": "2020-07-27 12:01:01",
             "timezone": None},
        ],
    }  # fmt: skip
    server = served(body)
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        page = await client.sites.list()
    when = datetime(2020, 7, 27, 12, 1, 1, tzinfo=timezone.utc)
    assert page.data == [
        Site("A", "a", None, when + timedelta(milliseconds=500), None),
        Site("B", "b", "team-only", when, None),
    ]
    assert page.url == "/v1/sites"


async def test_a_sites_page_of_the_wrong_shape_names_its_field() -> None:
    """A sites list whose data is not an array is ResponseDecodeError naming $.data."""
    server = served({"object": "list", "url": "/v1/sites", "has_more": False, "data": {}})
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        with pytest.raises(ResponseDecodeError, match=r"\$\.data: expected a list of sites"):
            await client.sites.list()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"id": "A", "name": "a", "created_at": 5}, "$.created_at"),
        ({"id": "A", "name": None, "created_at": "2020-07-27 12:01:01"}, "$.name"),
        ({"id": "A", "name": "a", "sharing": 3, "created_at": "2020-07-27 12:01:01"}, "$.sharing"),
        # orjson (the speedups) refuses a lone surrogate anywhere as invalid JSON.
        (
            {"id": "\ud800", "name": "a", "created_at": "2020-07-27 12:01:01"},
            "$.id" if STDLIB_JSON else "not valid JSON",
        ),
    ],
)
async def test_a_site_of_the_wrong_shape_names_its_field(body: object, problem: str) -> None:
    """A site answer that breaks the shape is ResponseDecodeError naming the field."""
    server = served(body)
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        with pytest.raises(ResponseDecodeError, match=re.escape(problem)):
            await client.sites.get("A")


# -- the token -------------------------------------------------------------------------


async def test_token_reads_what_the_api_says(face: Face, fake: FakeFathom) -> None:
    """token() gives the token's name, version, abilities and dates, never the secret."""
    fake.add_token("secret-value", ["read:A", "manage:B"], name="CI", version=2,
                   created_at=T0 - timedelta(days=1), updated_at=T0,
                   expires_at=T0 + timedelta(days=30))  # fmt: skip
    async with opened(face, fake, "secret-value") as run:
        info = await run(lambda c: c.token())
    assert info == TokenInfo(
        "CI",
        2,
        ("read:A", "manage:B"),
        last_used_at=T0,
        expires_at=T0 + timedelta(days=30),
        created_at=T0 - timedelta(days=1),
        updated_at=T0,
    )
    assert "secret-value" not in repr(info)


async def test_token_is_asked_once_and_refreshed_on_request(face: Face, fake: FakeFathom) -> None:
    """token() sends one request per client (twins included); refresh=True sends another."""
    async with opened(face, fake) as run:
        first = await run(lambda c: c.token())
        again = await run(lambda c: c.token())
        twin = await run(lambda c: c.with_options(max_retries=1).token())
        assert len(fake.requests_for("GET", "/v1/token")) == 1
        fresh = await run(lambda c: c.token(refresh=True))
        after = await run(lambda c: c.token())
    assert first == again == twin == fresh == after
    assert len(fake.requests_for("GET", "/v1/token")) == 2


async def test_concurrent_first_calls_share_one_request(face: Face, fake: FakeFathom) -> None:
    """Ten token() calls at once, before any answer, send one request between them."""
    async with opened(face, fake) as run:
        answers = await asyncio.gather(*(run(lambda c: c.token()) for _ in range(10)))
    assert len(set(answers)) == 1
    assert len(fake.requests_for("GET", "/v1/token")) == 1


class Held:
    """A MemoryTransport handler that answers as ``fake`` once released (no real waiting)."""

    def __init__(self, fake: FakeFathom) -> None:
        self.fake = fake
        self.release = asyncio.Event()
        self.arrived = 0

    async def __call__(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        self.arrived += 1
        await self.release.wait()
        return await self.fake.answer(request)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition()`` holds (no clock involved)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_concurrent_callers_in_one_loop_wait_for_the_first() -> None:
    """Callers that arrive while the first token request is out share its one answer."""
    fake = FakeFathom()
    held = Held(fake)
    async with AsyncClient(TOKEN, transport=MemoryTransport(held)) as client:
        calls = [asyncio.ensure_future(client.token()) for _ in range(5)]
        await until(lambda: held.arrived == 1)
        held.release.set()
        answers = await asyncio.gather(*calls)
    assert len(set(answers)) == 1
    assert held.arrived == 1


@pytest.mark.parametrize("cancelled", ["first", "waiter"])
async def test_a_cancelled_caller_leaves_the_other_its_answer(cancelled: str) -> None:
    """Cancel the asker and its waiter asks again; cancel a waiter and the asker goes on."""
    held = Held(FakeFathom())
    async with AsyncClient(TOKEN, transport=MemoryTransport(held)) as client:
        first = asyncio.ensure_future(client.token())
        await until(lambda: held.arrived == 1)
        waiter = asyncio.ensure_future(client.token())
        for _ in range(10):
            await asyncio.sleep(0)  # the waiter is now waiting on the first's request
        gone, kept = (first, waiter) if cancelled == "first" else (waiter, first)
        gone.cancel()
        await until(gone.done)
        held.release.set()
        info = await kept
    assert gone.cancelled()
    assert info.abilities == ("*",)
    assert held.arrived == (2 if cancelled == "first" else 1)


async def test_a_failure_is_not_kept(face: Face, fake: FakeFathom) -> None:
    """A token() that fails raises; the next call asks again and keeps that answer."""
    fake.inject(Fault.respond(500, json={"error": "down"}), path="/v1/token")
    async with opened(face, fake, retry=NO_RETRY) as run:
        with pytest.raises(ServerError):
            await run(lambda c: c.token())
        info = await run(lambda c: c.token())
        await run(lambda c: c.token())
    assert info.abilities == ("*",)
    assert len(fake.requests_for("GET", "/v1/token")) == 2


@pytest.mark.parametrize(
    ("abilities", "list_sites", "read", "manage"),
    [
        (["*"], True, {"A", "B"}, {"A", "B"}),
        (["all-sites-readonly"], True, {"A", "B"}, set()),
        (["read:A"], False, {"A"}, set()),
        (["manage:A"], False, {"A"}, {"A"}),
        (["read:A", "manage:B"], False, {"A", "B"}, {"B"}),
        (["read:*", "manage:*", "sites:list", "admin", "READ:A"], False, set(), set()),
        ([], False, set(), set()),
    ],
)
def test_abilities_grant_what_the_reference_says(
    abilities: list[str], list_sites: bool, read: set[str], manage: set[str]
) -> None:
    """* grants all, all-sites-readonly reads all, manage implies read; unknown grants nothing."""
    info = TokenInfo("t", 1, tuple(abilities))
    assert info.can_list_sites is list_sites
    assert {s for s in ("A", "B") if info.can_read(s)} == read
    assert {s for s in ("A", "B") if info.can_manage(s)} == manage


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"abilities": ["*"]},
            TokenInfo(None, None, ("*",)),
        ),
        (
            {"name": "n", "version": "4b", "abilities": ["future:thing"], "expires_at": None,
             "created_at": "2024-01-01T12:00:00+02:00", "updated_at": "2024-01-15 09:24:00",
             "last_used_at": None, "extra": {"x": 1}},
            TokenInfo("n", "4b", ("future:thing",),
                      created_at=datetime(2024, 1, 1, 10, tzinfo=timezone.utc),
                      updated_at=datetime(2024, 1, 15, 9, 24, tzinfo=timezone.utc)),
        ),
    ],
)  # fmt: skip
async def test_token_is_read_tolerantly(body: object, expected: TokenInfo) -> None:
    """Only abilities is required; version may be a string; times null, missing or either form."""
    server = served(body)
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        assert await client.token() == expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "n"}, r"\$.abilities: missing"),
        ({"abilities": "*"}, r"\$.abilities"),
        ({"abilities": ["*", 3]}, r"\$.abilities"),
        ({"abilities": [], "version": 1.5}, r"\$.version"),
        ({"abilities": [], "expires_at": "soon"}, r"\$.expires_at"),
    ],
)
async def test_a_token_of_the_wrong_shape_names_its_field(body: object, problem: str) -> None:
    """A token answer that breaks the shape is ResponseDecodeError naming the field."""
    server = served(body)
    async with server.serve() as url, AsyncClient(TOKEN, url, retry=NO_RETRY) as client:
        with pytest.raises(ResponseDecodeError, match=problem):
            await client.token()


async def test_a_closed_async_client_refuses(client: AsyncClient) -> None:
    """After aclose(), sites and token() raise ClientClosedError, sending nothing."""
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.sites.list()
    with pytest.raises(ClientClosedError):
        await client.token()
    with pytest.raises(ClientClosedError):
        await client.events.plan({SITE: []})


def test_a_closed_blocking_client_refuses(sync_client: Client) -> None:
    """After close(), sites and token() raise ClientClosedError, sending nothing."""
    sync_client.close()
    with pytest.raises(ClientClosedError):
        sync_client.sites.ids()
    with pytest.raises(ClientClosedError):
        sync_client.token()
