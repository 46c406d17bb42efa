"""FakeFathom's sites, token and account endpoints, over real HTTP with a plain ClientSession."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest

from fathom_events.testing import FakeFathom, Fault
from tests.fake.test_fake_server import T0, ticking_clock
from tests.support.helpers import TOKEN, Api

SCOPED = "scoped"
PUBLISHED_SITE = {
    "id": "CDBUGS",
    "object": "site",
    "name": "Bugs Bunny Portfolio",
    "sharing": "none",
    "created_at": "2020-07-27 12:01:01",
    "timezone": "America/New_York",
}


def sites_path(**query: str) -> str:
    return f"/sites?{urlencode(query)}" if query else "/sites"


def site_path(site_id: str) -> str:
    return f"/sites/{quote(site_id, safe='')}"


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    return FakeFathom(now=ticking_clock())


@pytest.fixture(name="site_ids")
def _site_ids(fake: FakeFathom) -> list[str]:
    """25 sites, one second apart, oldest first, added newest first."""
    ids = [f"S{n:02}" for n in range(25)]
    for n in reversed(range(25)):
        fake.add_site(ids[n], created_at=T0 + timedelta(seconds=n))
    return ids


async def walk(api: Api, cursor_name: str, first: dict[str, str]) -> tuple[list[str], list[bool]]:
    """Follow `cursor_name` from the page `first` asks for; the ids seen and each has_more."""
    seen: list[str] = []
    flags: list[bool] = []
    query = first
    while True:
        reply = await api.call("GET", sites_path(**query))
        assert reply.status == 200, reply.body
        page = reply.json()
        seen += [site["id"] for site in page["data"]]
        flags.append(page["has_more"])
        if not page["has_more"]:
            return seen, flags
        query = {"limit": first["limit"], cursor_name: seen[-1]}


# -- the published examples ------------------------------------------------------


def published_fake() -> FakeFathom:
    """The account and token of the reference's examples, at the example's last use."""
    fake = FakeFathom(tokens={}, now=lambda: datetime(2024, 1, 15, 9, 24, tzinfo=timezone.utc))
    fake.add_site(
        "CDBUGS",
        "Bugs Bunny Portfolio",
        sharing="none",
        timezone="America/New_York",
        created_at=datetime(2020, 7, 27, 12, 1, 1),  # noqa: DTZ001 - naive is UTC
    )
    fake.add_token(
        TOKEN,
        ["*"],
        name="Production server",
        version=4,
        created_at=datetime(2024, 1, 1, 12, tzinfo=timezone.utc),
        updated_at=datetime(2024, 1, 15, 9, 24, tzinfo=timezone.utc),
    )
    fake.set_account(account_id=500302232, name="Bugs Bunny", email="bugs@example.com")
    return fake


async def test_published_examples() -> None:
    """The sites list, the site, the token and the account answer as the reference's examples."""
    async with published_fake().serve() as base_url, aiohttp.ClientSession() as session:
        api = Api(session, base_url)
        listed = (await api.call("GET", sites_path())).json()
        one = (await api.call("GET", site_path("CDBUGS"))).json()
        token = (await api.call("GET", "/token")).json()
        account = (await api.call("GET", "/account")).json()
    assert account == {
        "id": 500302232,
        "object": "account",
        "name": "Bugs Bunny",
        "email": "bugs@example.com",
    }
    assert listed == {"object": "list", "url": "/v1/sites", "has_more": False, "data": [one]}
    assert one == PUBLISHED_SITE
    assert token == {
        "name": "Production server",
        "version": 4,
        "abilities": ["*"],
        "last_used_at": "2024-01-15 09:24:00",
        "expires_at": None,
        "created_at": "2024-01-01 12:00:00",
        "updated_at": "2024-01-15 09:24:00",
    }


async def test_token_never_returns_the_secret(api: Api, fake: FakeFathom) -> None:
    """No field of the /token answer holds the token itself."""
    secret = "s3cr3t-token-value"
    fake.add_token(secret, ["*"], name="n")
    reply = await api.call("GET", "/token", token=secret)
    assert reply.status == 200
    assert secret.encode() not in reply.body


async def test_site_defaults() -> None:
    """add_site(id) alone: name is the id, sharing none, timezone UTC, created now (clock)."""
    fake = FakeFathom(now=lambda: T0)
    fake.add_site("PLAIN")
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        site = (await Api(session, base_url).call("GET", site_path("PLAIN"))).json()
    assert site == {
        "id": "PLAIN",
        "object": "site",
        "name": "PLAIN",
        "sharing": "none",
        "created_at": "2023-11-07 05:31:56",
        "timezone": "UTC",
    }


async def test_add_site_again_changes_only_what_is_given(api: Api, fake: FakeFathom) -> None:
    """Adding an existing site again changes the given fields and keeps its events."""
    fake.add_site("S", "Old name", sharing="private", timezone="Europe/Paris")
    fake.add_event("S", "Kept", event_id="EV")
    fake.add_site("S", sharing="public")
    site = (await api.call("GET", site_path("S"))).json()
    assert (site["name"], site["sharing"], site["timezone"]) == (
        "Old name",
        "public",
        "Europe/Paris",
    )
    assert [event["id"] for event in fake.events("S")] == ["EV"]


async def test_site_made_by_add_event_dates_from_it(api: Api, fake: FakeFathom) -> None:
    """add_event on an unknown site creates the site with the event's created_at."""
    fake.add_event("NEW", "First", created_at=datetime(2021, 3, 4, 5, 6, 7))  # noqa: DTZ001
    site = (await api.call("GET", site_path("NEW"))).json()
    assert (site["name"], site["created_at"]) == ("NEW", "2021-03-04 05:06:07")


async def test_unknown_sharing_is_served_as_given(api: Api, fake: FakeFathom) -> None:
    """A sharing value the reference does not list is served as given (for tolerant clients)."""
    fake.add_site("S", sharing="team-only")
    assert (await api.call("GET", site_path("S"))).json()["sharing"] == "team-only"


async def test_iso_format_applies_to_sites() -> None:
    """created_at_format="iso" renders a site's created_at as ISO 8601 too."""
    fake = FakeFathom(now=lambda: T0, created_at_format="iso")
    fake.add_site("S")
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        reply = await Api(session, base_url).call("GET", site_path("S"))
    assert reply.json()["created_at"] == "2023-11-07T05:31:56Z"


@pytest.mark.parametrize(
    ("call", "exception"),
    [
        (lambda fake: fake.add_site("S", sharing=""), ValueError),
        (lambda fake: fake.add_site("S", timezone=3), ValueError),
        (lambda fake: fake.add_site("S", ""), ValueError),
        (lambda fake: fake.add_site(""), ValueError),
        (lambda fake: fake.add_token("t", ["*"], version=True), ValueError),
        (lambda fake: fake.add_token("t", ["*"], version=-1), ValueError),
        (lambda fake: fake.add_token("t", ["*"], name=""), ValueError),
        (lambda fake: fake.add_token("t", "*"), TypeError),
    ],
)
def test_bad_seeding_is_refused(call: Any, exception: type[Exception]) -> None:
    """add_site and add_token refuse empty or mistyped fields."""
    with pytest.raises(exception):
        call(FakeFathom())


# -- pagination ---------------------------------------------------------------------


async def test_forward_pages_cover_every_site_once(api: Api, site_ids: list[str]) -> None:
    """starting_after walks forward: 10, 10, 5 sites, oldest first, has_more until the end."""
    assert await walk(api, "starting_after", {"limit": "10"}) == (site_ids, [True, True, False])


async def test_backward_pages_walk_newest_first(api: Api, site_ids: list[str]) -> None:
    """ending_before walks back newest first, has_more until the oldest."""
    first = {"limit": "10", "ending_before": site_ids[-1]}
    assert await walk(api, "ending_before", first) == (site_ids[-2::-1], [True, True, False])


async def test_default_limit_is_ten(api: Api, site_ids: list[str]) -> None:
    """Without limit, a page holds the 10 oldest sites."""
    page = (await api.call("GET", sites_path())).json()
    assert [site["id"] for site in page["data"]] == site_ids[:10]
    assert page["has_more"] is True


async def test_order_is_created_at_then_insertion(api: Api, fake: FakeFathom) -> None:
    """Sites sort by created_at, ties in the order added; a new created_at moves a site."""
    fake.add_site("LATE", created_at=T0 + timedelta(hours=1))
    fake.add_site("TIE1", created_at=T0)
    fake.add_site("TIE2", created_at=T0)
    fake.add_site("MOVED", created_at=T0 + timedelta(hours=2))
    fake.add_site("MOVED", created_at=T0 - timedelta(hours=1))
    page = (await api.call("GET", sites_path())).json()
    assert [site["id"] for site in page["data"]] == ["MOVED", "TIE1", "TIE2", "LATE"]


async def test_seeded_sites_are_listed_in_order(api: Api, fake: FakeFathom) -> None:
    """seed() makes sites the list returns in the order seeded."""
    site_ids = fake.seed(12, 1, prefix="P")
    seen, _ = await walk(api, "starting_after", {"limit": "5"})
    assert seen == site_ids


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
async def test_limit_out_of_range_is_a_validation_error(api: Api, limit: str) -> None:
    """A limit that is not an integer from 1 to 100 answers 400 {"errors": {"limit": [...]}}."""
    reply = await api.call("GET", sites_path(limit=limit))
    assert reply.status == 400
    assert list(reply.json()["errors"]) == ["limit"]


@pytest.mark.parametrize(("limit", "count"), [("1", 1), ("100", 25)])
async def test_limit_in_range(api: Api, site_ids: list[str], limit: str, count: int) -> None:
    """Limits from 1 to 100 are honoured."""
    page = (await api.call("GET", sites_path(limit=limit))).json()
    assert len(page["data"]) == count
    assert page["has_more"] is (count < len(site_ids))


async def test_both_cursors_are_refused(api: Api, site_ids: list[str]) -> None:
    """starting_after and ending_before together answer 400 {"error": ...}."""
    reply = await api.call("GET", sites_path(starting_after=site_ids[0], ending_before=site_ids[5]))
    assert reply.status == 400
    assert "error" in reply.json()


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
async def test_unknown_cursor_is_refused(api: Api, site_ids: list[str], cursor: str) -> None:
    """A cursor naming no site answers 400 {"error": ...} naming the cursor."""
    reply = await api.call("GET", sites_path(**{cursor: "NOPE"}))
    assert reply.status == 400
    assert cursor in reply.json()["error"]
    assert "site" in reply.json()["error"]


# -- the account and the retired site wipe ------------------------------------------------


async def test_account_defaults(api: Api) -> None:
    """GET /v1/account answers the fake's account: an integer id, object, name and email."""
    reply = await api.call("GET", "/account")
    assert reply.json() == {
        "id": 500302232,
        "object": "account",
        "name": "Fake Fathom",
        "email": "fake@example.com",
    }


async def test_set_account_changes_only_what_is_given(api: Api, fake: FakeFathom) -> None:
    """set_account changes the fields given and keeps the others."""
    fake.set_account(name="Acme", email="ops@acme.example")
    fake.set_account(account_id=7)
    account = (await api.call("GET", "/account")).json()
    assert account == {"id": 7, "object": "account", "name": "Acme", "email": "ops@acme.example"}


@pytest.mark.parametrize(
    ("fields", "exception"),
    [
        ({"account_id": True}, ValueError),
        ({"account_id": "500302232"}, ValueError),
        ({"account_id": -1}, ValueError),
        ({"name": ""}, ValueError),
        ({"email": 3}, ValueError),
    ],
)
def test_bad_account_fields_are_refused(fields: dict[str, Any], exception: type[Exception]) -> None:
    """set_account refuses an id that is not an integer >= 0, and an empty or mistyped text."""
    fake = FakeFathom()
    with pytest.raises(exception):
        fake.set_account(**fields)


@pytest.mark.parametrize(
    ("abilities", "status"),
    [
        (["*"], 410),
        (["manage:CDBUGS"], 410),
        (["all-sites-readonly"], 400),
        (["read:CDBUGS"], 400),
        (["manage:OTHER"], 404),
    ],
)
async def test_site_wipe_is_gone(
    api: Api, fake: FakeFathom, abilities: list[str], status: int
) -> None:
    """DELETE /v1/sites/{id}/data answers 410 once the token may manage the site; wipes nothing."""
    fake.add_event("CDBUGS", "Kept")
    fake.add_token(SCOPED, abilities)
    reply = await api.call("DELETE", site_path("CDBUGS") + "/data", token=SCOPED)
    assert reply.status == status
    if status == 410:
        assert "retired" in reply.json()["error"]
    assert len(fake.events("CDBUGS")) == 1
    assert (await api.call("DELETE", site_path("NOPE") + "/data")).status == 404
    assert (await api.call("DELETE", site_path("CDBUGS") + "/data", token=None)).status == 401


# -- scopes and errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("abilities", "expected"),
    [
        (["*"], (200, 200, 200, 200)),
        (["all-sites-readonly"], (200, 200, 200, 400)),
        (["manage:CDBUGS"], (400, 200, 200, 400)),
        (["read:CDBUGS"], (400, 200, 200, 400)),
        (["read:OTHER", "manage:OTHER"], (400, 404, 200, 400)),
        (["sites:list", "read:*"], (400, 404, 200, 400)),  # unknown abilities grant nothing
        ([], (400, 404, 200, 400)),
    ],
)
async def test_scopes(
    api: Api, fake: FakeFathom, abilities: list[str], expected: tuple[int, ...]
) -> None:
    """Listing needs * or all-sites-readonly; a site read access; /token any; /account *."""
    fake.add_site("CDBUGS")
    fake.add_token(SCOPED, abilities)
    statuses = []
    for path in (sites_path(), site_path("CDBUGS"), "/token", "/account"):
        reply = await api.call("GET", path, token=SCOPED)
        statuses.append(reply.status)
        if reply.status == 400:
            assert "permission" in reply.json()["error"]
    assert tuple(statuses) == expected


async def test_unknown_and_hidden_sites_are_the_same_404(api: Api, fake: FakeFathom) -> None:
    """A site that does not exist and one the token may not see both answer the same 404."""
    fake.add_site("CDBUGS")
    fake.add_site("OTHER")
    fake.add_token(SCOPED, ["read:CDBUGS"])
    missing = await api.call("GET", site_path("NOPE"))
    hidden = await api.call("GET", site_path("OTHER"), token=SCOPED)
    assert (missing.status, hidden.status) == (404, 404)
    assert missing.json() == hidden.json() == {"error": "Site not found."}


@pytest.mark.parametrize("path", [sites_path(), site_path("CDBUGS"), "/token", "/account"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Token {TOKEN}"])
async def test_bad_credentials_are_401(
    api: Api, fake: FakeFathom, path: str, authorization: str | None
) -> None:
    """A missing, malformed or unknown token answers 401 Unauthenticated."""
    fake.add_site("CDBUGS")
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = await api.call("GET", path, token=None, headers=headers)
    assert (reply.status, reply.json()) == (401, {"error": "Unauthenticated."})


async def test_expired_token_is_401() -> None:
    """A token answers until its expires_at (by the fake's clock), then 401 everywhere."""
    clock = {"now": T0}
    fake = FakeFathom(tokens={}, now=lambda: clock["now"])
    fake.add_site("CDBUGS")
    fake.add_token(SCOPED, ["*"], expires_at=T0 + timedelta(minutes=1))
    paths = ("/token", sites_path(), site_path("CDBUGS"))
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        api = Api(session, base_url)
        before = [await api.call("GET", path, token=SCOPED) for path in paths]
        clock["now"] += timedelta(minutes=1)
        after = [(await api.call("GET", path, token=SCOPED)).status for path in paths]
    assert [reply.status for reply in before] == [200, 200, 200]
    assert before[0].json()["expires_at"] == "2023-11-07 05:32:56"
    assert after == [401, 401, 401]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", sites_path(), "GET"),
        ("DELETE", site_path("CDBUGS"), "GET"),
        ("PUT", "/token", "GET"),
        ("POST", "/account", "GET"),
        ("GET", site_path("CDBUGS") + "/data", "DELETE"),
    ],
)
async def test_wrong_method_is_405(
    api: Api, fake: FakeFathom, method: str, path: str, allow: str
) -> None:
    """The sites, token and account paths answer only GET, the site wipe DELETE: else 405."""
    fake.add_site("CDBUGS")
    reply = await api.call(method, path, body={"name": "x"})
    assert (reply.status, reply.headers["Allow"]) == (405, allow)
    assert len(fake.events("CDBUGS")) == 0


@pytest.mark.parametrize(
    "path",
    ["/sites/", "/sites/CDBUGS/", "/site", "/sites/CDBUGS/x", "/account/", "/accounts"],
)
async def test_near_misses_are_404(api: Api, fake: FakeFathom, path: str) -> None:
    """Paths next to the sites endpoints answer 404."""
    fake.add_site("CDBUGS")
    assert (await api.call("GET", path)).status == 404


@pytest.mark.parametrize("path", ["/v1/sites", "/v1/sites/*", "/v1/token"])
async def test_faults_apply_to_the_new_paths(api: Api, fake: FakeFathom, path: str) -> None:
    """An injected fault hits the sites and token paths like any other, then they answer."""
    fake.add_site("CDBUGS")
    fake.inject(Fault.rate_limited("3"), method="GET", path=path)
    target = {"/v1/sites": sites_path(), "/v1/sites/*": site_path("CDBUGS")}.get(path, "/token")
    faulted = await api.call("GET", target)
    assert (faulted.status, faulted.headers["Retry-After"]) == (429, "3")
    assert (await api.call("GET", target)).status == 200
    assert fake.pending_faults() == 0
