"""FakeFathom, tested over real HTTP with a plain aiohttp.ClientSession (not our client)."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest

from fathom_events.testing import FakeFathom, FakeFathomFixture, Fault, RecordedRequest
from fathom_events.testing._ordered import Ordered
from fathom_events.testing._plugin import _fathom_fake  # noqa: F401
from fathom_events.testing._state import EventRecord
from fathom_events.testing._wire import huge_chunks
from tests.support.helpers import TOKEN, Api
from tests.support.tls import Certificates, certificates_fixture

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = ["certificates_fixture"]

SITE = "CDBUGS"
READER = "reader"
SCOPED = "scoped"
T0 = datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)


def ticking_clock(start: datetime = T0) -> Callable[[], datetime]:
    """A clock that moves one second forward at every reading."""
    state = {"now": start}

    def now() -> datetime:
        state["now"] += timedelta(seconds=1)
        return state["now"]

    return now


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom(now=ticking_clock())
    fake.add_site(SITE)
    return fake


def events_path(site_id: str = SITE, **query: str) -> str:
    path = f"/sites/{quote(site_id, safe='')}/events"
    return f"{path}?{urlencode(query)}" if query else path


def event_path(event_id: str, site_id: str = SITE) -> str:
    """The path of one event, its id encoded as one segment (dots too, so ".." survives)."""
    return f"{events_path(site_id)}/{quote(event_id, safe='').replace('.', '%2E')}"


# -- serving --------------------------------------------------------------------


async def test_base_url_is_loopback_v1(base_url: str) -> None:
    """serve() yields http://127.0.0.1:<port>/v1."""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)


async def test_each_serving_gets_its_own_app(fake: FakeFathom) -> None:
    """The app property builds a new Application each time; state is shared."""
    assert fake.app is not fake.app
    fake.add_event(SITE, "kept")
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        reply = await Api(session, base_url).call("GET", events_path())
    assert [event["name"] for event in reply.json()["data"]] == ["kept"]


def test_serve_in_thread_answers_blocking_urllib(fake: FakeFathom) -> None:
    """serve_in_thread() serves blocking code and joins its thread on exit."""
    with fake.serve_in_thread() as base_url:
        request = urllib.request.Request(  # noqa: S310 - loopback URL built by the fake
            base_url + events_path(),
            data=json.dumps({"name": "From a thread"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            created = json.loads(response.read())
        assert [event["id"] for event in fake.events(SITE)] == [created["id"]]
    assert not [thread for thread in threading.enumerate() if thread.name == "FakeFathom"]


async def test_serve_takes_a_tls_context(fake: FakeFathom, certificates: Certificates) -> None:
    """serve(ssl=context) serves https://127.0.0.1:<port>/v1 with that context's certificate."""
    async with fake.serve(ssl=certificates.server_context()) as base_url:
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+/v1", base_url)
        connector = aiohttp.TCPConnector(ssl=certificates.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            reply = await Api(session, base_url).call("GET", events_path())
        assert reply.status == 200
        async with aiohttp.ClientSession() as session:  # without the test CA: refused
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await Api(session, base_url).call("GET", events_path())


def test_serve_in_thread_takes_a_tls_context(fake: FakeFathom, certificates: Certificates) -> None:
    """serve_in_thread(ssl=context) serves blocking code over TLS."""
    with fake.serve_in_thread(ssl=certificates.server_context()) as base_url:
        assert base_url.startswith("https://127.0.0.1:")
        request = urllib.request.Request(  # noqa: S310 - loopback URL built by the fake
            base_url + events_path(), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        context = certificates.client_context()
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
            assert json.loads(response.read())["data"] == []


def test_serve_in_thread_stops_despite_a_hung_request(fake: FakeFathom) -> None:
    """Leaving serve_in_thread() does not wait on a request the fake hangs on."""
    fake.inject(Fault.hang())
    with fake.serve_in_thread() as base_url:
        request = urllib.request.Request(base_url + "/token")  # noqa: S310
        with pytest.raises(TimeoutError):
            urllib.request.urlopen(request, timeout=0.2)  # noqa: S310
        started = time.monotonic()
    assert time.monotonic() - started < 2


async def test_serve_shuts_down_promptly_with_a_hung_request(fake: FakeFathom) -> None:
    """Leaving serve() cancels a hung request cleanly and quickly."""
    fake.inject(Fault.hang())
    async with aiohttp.ClientSession() as session:
        async with fake.serve() as base_url:
            api = Api(session, base_url)
            pending = asyncio.ensure_future(api.call("POST", events_path(), body={"name": "x"}))
            while not fake.requests:  # noqa: ASYNC110 - the request log offers no event to await
                await asyncio.sleep(0.01)
            started = time.monotonic()
        assert time.monotonic() - started < 2
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await pending
    assert fake.events(SITE) == []


# -- endpoints ------------------------------------------------------------------


async def test_token_endpoint_describes_the_token(api: Api, fake: FakeFathom) -> None:
    """GET /v1/token returns name, version, abilities and timestamps."""
    fake.add_token(READER, ["read:CDBUGS"])
    body = (await api.call("GET", "/token", token=READER)).json()
    assert body["abilities"] == ["read:CDBUGS"]
    assert {"name", "version", "last_used_at", "expires_at", "created_at", "updated_at"} <= set(
        body
    )


async def test_create_defaults_currency_to_dollar(api: Api, fake: FakeFathom) -> None:
    """Create answers the new event with currency "dollar" and an 8-capital-letter id."""
    reply = await api.call("POST", events_path(), body={"name": "Signed up"})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    event = reply.json()
    assert re.fullmatch(r"[A-Z]{8}", event["id"])
    assert event == {
        "id": event["id"],
        "object": "event",
        "name": "Signed up",
        "currency": "dollar",
        "created_at": event["created_at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", event["created_at"])
    assert fake.events(SITE)[0]["currency"] == "dollar"


async def test_create_stores_given_currency(api: Api, fake: FakeFathom) -> None:
    """Create keeps the currency sent, and ignores unknown body fields."""
    reply = await api.call("POST", events_path(), body={"name": "Paid", "currency": "yen", "x": 1})
    assert reply.json()["currency"] == "yen"
    assert fake.events(SITE)[0]["currency"] == "yen"


async def test_get_and_list_show_null_currency(api: Api, fake: FakeFathom) -> None:
    """List and get return currency null although one is stored."""
    stored = fake.add_event(SITE, "Paid", "euro", event_id="ABCDEFGH")
    event = (await api.call("GET", event_path("ABCDEFGH"))).json()
    assert event == {
        "id": "ABCDEFGH",
        "object": "event",
        "name": "Paid",
        "currency": None,
        "created_at": stored["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
    }
    page = (await api.call("GET", events_path())).json()
    assert page == {
        "object": "list",
        "url": "/v1/sites/CDBUGS/events",
        "has_more": False,
        "data": [event],
    }


async def test_update_changes_only_given_fields(api: Api, fake: FakeFathom) -> None:
    """Update changes the fields sent and answers with the stored currency."""
    fake.add_event(SITE, "Old", "pound", event_id="EV")
    renamed = (await api.call("POST", event_path("EV"), body={"name": "New"})).json()
    assert (renamed["name"], renamed["currency"]) == ("New", "pound")
    recurrenced = (await api.call("POST", event_path("EV"), body={"currency": "won"})).json()
    assert (recurrenced["name"], recurrenced["currency"]) == ("New", "won")
    untouched = await api.call("POST", event_path("EV"))
    assert untouched.status == 200
    assert untouched.json()["name"] == "New"


async def test_delete_removes_the_event(api: Api, fake: FakeFathom) -> None:
    """Delete answers a deleted object; the event is gone afterwards."""
    fake.add_event(SITE, "Doomed", event_id="EV")
    reply = await api.call("DELETE", event_path("EV"))
    assert reply.json() == {"id": "EV", "object": "event", "deleted": True}
    assert fake.events(SITE) == []
    assert (await api.call("GET", event_path("EV"))).status == 404


async def test_wipe_is_gone(api: Api, fake: FakeFathom) -> None:
    """The retired wipe endpoint answers 410 and touches nothing."""
    fake.add_event(SITE, "Kept", event_id="EV")
    reply = await api.call("DELETE", event_path("EV") + "/data")
    assert reply.status == 410
    assert "retired" in reply.json()["error"]
    assert len(fake.events(SITE)) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", events_path("NOPE")),
        ("POST", events_path("NOPE")),
        ("GET", event_path("NOPE")),
        ("POST", event_path("NOPE")),
        ("DELETE", event_path("NOPE")),
        ("GET", "/sites/NOPE"),
        ("GET", "/sites/CDBUGS/goals"),
        ("GET", "/sites/CDBUGS/events/"),
    ],
)
async def test_unknown_things_are_404(api: Api, method: str, path: str) -> None:
    """Unknown sites, events and routes answer 404 {"error": ...}."""
    reply = await api.call(method, path, body={"name": "x"})
    assert reply.status == 404
    assert isinstance(reply.json()["error"], str)


async def test_wrong_method_is_405(api: Api) -> None:
    """A known path with a wrong method answers 405 with Allow."""
    reply = await api.call("PUT", events_path())
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, POST"


async def test_iso_created_at_format() -> None:
    """created_at_format="iso" renders created_at as 2023-11-07T05:31:56Z."""
    fake = FakeFathom(now=lambda: T0, created_at_format="iso")
    fake.add_site(SITE)
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        reply = await Api(session, base_url).call("POST", events_path(), body={"name": "x"})
    assert reply.json()["created_at"] == "2023-11-07T05:31:56Z"


def test_unknown_created_at_format_is_refused() -> None:
    """A created_at_format other than plain or iso is a ValueError."""
    with pytest.raises(ValueError, match="created_at_format"):
        FakeFathom(created_at_format="unix")  # type: ignore[arg-type]


# -- ids with awkward characters --------------------------------------------------


@pytest.mark.parametrize("event_id", ["a/b?c#d..", "..", "café au lait ✓", "100%", "x/../y"])
async def test_percent_encoded_ids_stay_whole(api: Api, fake: FakeFathom, event_id: str) -> None:
    """An id encoded as one path segment is found whole, whatever it contains."""
    fake.add_event(SITE, "Odd", event_id=event_id)
    fake.add_event(SITE, "Decoy", event_id="a")
    path = event_path(event_id)
    assert (await api.call("GET", path)).json()["id"] == event_id
    assert (await api.call("POST", path, body={"name": "Renamed"})).json()["id"] == event_id
    assert (await api.call("DELETE", path)).json()["id"] == event_id
    assert [event["id"] for event in fake.events(SITE)] == ["a"]


async def test_slash_id_example_from_the_brief(api: Api, fake: FakeFathom) -> None:
    """The id a/b?c#d.. is fetched via /v1/sites/S/events/a%2Fb%3Fc%23d.."""
    fake.add_event("S", "Odd", event_id="a/b?c#d..")
    reply = await api.call("GET", "/sites/S/events/a%2Fb%3Fc%23d..")
    assert reply.json()["id"] == "a/b?c#d.."
    assert fake.requests[-1].path == "/v1/sites/S/events/a/b?c#d.."
    assert fake.requests[-1].raw_path == "/v1/sites/S/events/a%2Fb%3Fc%23d.."


# -- pagination -------------------------------------------------------------------


@pytest.fixture(name="ids")
def _ids(fake: FakeFathom) -> list[str]:
    """25 events, one second apart, oldest first."""
    return [
        fake.add_event(SITE, f"Event {n}", created_at=T0 + timedelta(seconds=n))["id"]
        for n in range(25)
    ]


async def test_forward_pages_cover_everything_once(api: Api, ids: list[str]) -> None:
    """starting_after walks forward: 10, 10, 5 events, oldest first, has_more until the end."""
    seen: list[str] = []
    flags = []
    query = {"limit": "10"}
    while True:
        page = (await api.call("GET", events_path(**query))).json()
        seen += [event["id"] for event in page["data"]]
        flags.append(page["has_more"])
        if not page["has_more"]:
            break
        query = {"limit": "10", "starting_after": seen[-1]}
    assert seen == ids
    assert flags == [True, True, False]


async def test_backward_pages_walk_newest_first(api: Api, ids: list[str]) -> None:
    """ending_before walks back newest first, has_more until the oldest."""
    seen: list[str] = []
    flags = []
    cursor = ids[-1]
    while True:
        query = {"limit": "10", "ending_before": cursor}
        page = (await api.call("GET", events_path(**query))).json()
        seen += [event["id"] for event in page["data"]]
        flags.append(page["has_more"])
        if not page["has_more"]:
            break
        cursor = seen[-1]
    assert seen == ids[-2::-1]
    assert flags == [True, True, False]


async def test_default_limit_is_ten(api: Api, ids: list[str]) -> None:
    """Without limit, a page holds the 10 oldest events."""
    page = (await api.call("GET", events_path())).json()
    assert [event["id"] for event in page["data"]] == ids[:10]
    assert page["has_more"] is True


async def test_order_is_created_at_then_insertion(api: Api, fake: FakeFathom) -> None:
    """Events sort by created_at, ties by insertion order."""
    fake.add_event(SITE, "late", event_id="L", created_at=T0 + timedelta(hours=1))
    fake.add_event(SITE, "tie1", event_id="T1", created_at=T0)
    fake.add_event(SITE, "tie2", event_id="T2", created_at=T0)
    fake.add_event(SITE, "early", event_id="E", created_at=T0 - timedelta(hours=1))
    page = (await api.call("GET", events_path())).json()
    assert [event["id"] for event in page["data"]] == ["E", "T1", "T2", "L"]
    assert [event["id"] for event in fake.events(SITE)] == ["E", "T1", "T2", "L"]


@pytest.mark.parametrize(("limit", "count"), [("1", 1), ("100", 25), ("25", 25)])
async def test_limit_in_range(api: Api, ids: list[str], limit: str, count: int) -> None:
    """Limits from 1 to 100 are honoured."""
    page = (await api.call("GET", events_path(limit=limit))).json()
    assert len(page["data"]) == count
    assert page["has_more"] is (count < len(ids))


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
async def test_limit_out_of_range_is_a_validation_error(api: Api, limit: str) -> None:
    """A limit that is not an integer from 1 to 100 answers 400 {"errors": {"limit": [...]}}."""
    reply = await api.call("GET", events_path(limit=limit))
    assert reply.status == 400
    assert list(reply.json()["errors"]) == ["limit"]


async def test_both_cursors_are_refused(api: Api, ids: list[str]) -> None:
    """starting_after and ending_before together answer 400 {"error": ...}."""
    reply = await api.call("GET", events_path(starting_after=ids[0], ending_before=ids[5]))
    assert reply.status == 400
    assert "error" in reply.json()


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
async def test_unknown_cursor_is_refused(api: Api, ids: list[str], cursor: str) -> None:
    """A cursor naming no event of the site answers 400 {"error": ...}."""
    reply = await api.call("GET", events_path(**{cursor: "NOPE"}))
    assert reply.status == 400
    assert cursor in reply.json()["error"]


# -- authentication and scopes ------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Token fake-fathom-token", "Bearer ", "Bearer wrong", TOKEN]
)
async def test_bad_credentials_are_401(api: Api, authorization: str | None) -> None:
    """A missing, malformed or unknown token answers 401 Unauthenticated."""
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = await api.call("GET", events_path(), token=None, headers=headers)
    assert reply.status == 401
    assert reply.json() == {"error": "Unauthenticated."}


READ = ("GET", events_path())
GET = ("GET", event_path("EV"))
CREATE = ("POST", events_path())
UPDATE = ("POST", event_path("EV"))
DELETE = ("DELETE", event_path("EV"))
WIPE = ("DELETE", event_path("EV") + "/data")
ALL = (READ, GET, CREATE, UPDATE, DELETE, WIPE)


@pytest.mark.parametrize(
    ("abilities", "expected"),
    [
        (["*"], (200, 200, 200, 200, 200, 410)),
        (["manage:CDBUGS"], (200, 200, 200, 200, 200, 410)),
        (["all-sites-readonly"], (200, 200, 400, 400, 400, 400)),
        (["read:CDBUGS"], (200, 200, 400, 400, 400, 400)),
        (["read:OTHER", "manage:OTHER"], (404, 404, 404, 404, 404, 404)),
        ([], (404, 404, 404, 404, 404, 404)),
    ],
)
async def test_scopes(
    api: Api, fake: FakeFathom, abilities: list[str], expected: tuple[int, ...]
) -> None:
    """Reads need any access to the site, writes need * or manage:SITE; no access looks like 404."""
    fake.add_token(SCOPED, abilities)
    statuses = []
    fake.add_event(SITE, "Target", event_id="EV")
    for method, path in ALL:  # DELETE comes after everything that needs the event
        reply = await api.call(method, path, token=SCOPED, body={"name": "x"})
        statuses.append(reply.status)
        if reply.status == 400:
            assert "permission" in reply.json()["error"]
    assert tuple(statuses) == expected


# -- validation and error shapes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": ["The name field is required."]}),
        ({"name": ""}, {"name": ["The name field is required."]}),
        ({"name": None}, {"name": ["The name field is required."]}),
        ({"name": 7}, {"name": ["The name field must be a string."]}),
        (
            {"name": "x" * 256},
            {"name": ["The name field must not be greater than 255 characters."]},
        ),
        ({"name": "x", "currency": "bitcoin"}, {"currency": ["The selected currency is invalid."]}),
        (
            {"currency": 7},
            {
                "name": ["The name field is required."],
                "currency": ["The selected currency is invalid."],
            },
        ),
    ],
)
async def test_create_validation(
    api: Api, fake: FakeFathom, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """Invalid create input answers 400 {"errors": {field: [message]}} and stores nothing."""
    reply = await api.call("POST", events_path(), body=body)
    assert reply.status == 400
    assert reply.json() == {"errors": errors}
    assert fake.events(SITE) == []


async def test_name_of_255_characters_is_accepted(api: Api) -> None:
    """A 255-character name is within the limit."""
    reply = await api.call("POST", events_path(), body={"name": "é" * 255})
    assert reply.json()["name"] == "é" * 255


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({"name": "x" * 256}, "name"), ({"currency": "x"}, "currency")],
)
async def test_update_validation(
    api: Api, fake: FakeFathom, body: dict[str, Any], field: str
) -> None:
    """Invalid update input answers 400 {"errors": ...} and changes nothing."""
    fake.add_event(SITE, "Same", event_id="EV")
    reply = await api.call("POST", event_path("EV"), body=body)
    assert reply.status == 400
    assert list(reply.json()["errors"]) == [field]
    assert fake.events(SITE)[0]["name"] == "Same"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"name": ', "application/json"),
        (b'["name"]', "application/json"),
        (b"name=x", "text/plain"),
    ],
)
async def test_body_must_be_a_json_object(api: Api, data: bytes, content_type: str) -> None:
    """Malformed or non-object JSON, or a body neither JSON nor a form, answers 400 {"error"}."""
    reply = await api.call("POST", events_path(), data=data, headers={"Content-Type": content_type})
    assert reply.status == 400
    assert isinstance(reply.json()["error"], str)


@pytest.mark.parametrize("accept", [None, "*/*", "text/html"])
async def test_errors_are_html_unless_json_is_accepted(api: Api, accept: str | None) -> None:
    """Without application/json in Accept, errors come back as an HTML page."""
    headers = {} if accept is None else {"Accept": accept}
    async with api.session.get(
        api.url(events_path("NOPE")),
        headers={"Authorization": f"Bearer {TOKEN}", **headers},
        skip_auto_headers=["Accept"],
    ) as resp:
        text = await resp.text()
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "<html" in text


async def test_json_anywhere_in_accept_gives_json_errors(api: Api) -> None:
    """application/json anywhere in Accept, with parameters, selects JSON errors."""
    reply = await api.call("GET", events_path("NOPE"), accept="text/html, application/json;q=0.5")
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "error" in reply.json()


async def test_success_is_json_whatever_accept_says(api: Api) -> None:
    """A successful answer is JSON even when Accept does not ask for it."""
    reply = await api.call("GET", events_path(), accept="text/html")
    assert reply.status == 200
    assert reply.json()["object"] == "list"


# -- faults -----------------------------------------------------------------------------


async def test_respond_replaces_the_answer_without_acting(api: Api, fake: FakeFathom) -> None:
    """Fault.respond answers its status, headers and JSON body; the create does not happen."""
    fake.inject(Fault.respond(503, json={"error": "Down."}, headers={"X-Why": "test"}))
    reply = await api.call("POST", events_path(), body={"name": "x"})
    assert (reply.status, reply.headers["X-Why"], reply.json()) == (503, "test", {"error": "Down."})
    assert fake.events(SITE) == []


async def test_respond_after_action_acts_first(api: Api, fake: FakeFathom) -> None:
    """Fault.respond(after_action=True) performs the create, then answers the fault."""
    fake.inject(Fault.respond(500, text="oops", after_action=True))
    reply = await api.call("POST", events_path(), body={"name": "x"})
    assert (reply.status, reply.body) == (500, b"oops")
    assert [event["name"] for event in fake.events(SITE)] == ["x"]


@pytest.mark.parametrize(("retry_after", "header"), [("1", "1"), ("120", "120"), (None, None)])
async def test_rate_limited(
    api: Api, fake: FakeFathom, retry_after: str | None, header: str | None
) -> None:
    """Fault.rate_limited answers 429 with Retry-After (unless None) and an error body."""
    fake.inject(Fault.rate_limited(retry_after))
    reply = await api.call("GET", events_path())
    assert reply.status == 429
    assert reply.headers.get("Retry-After") == header
    assert reply.json() == {"error": "Too many requests."}


async def test_html_gateway_page(api: Api, fake: FakeFathom) -> None:
    """Fault.html answers an nginx-style HTML page with the given status."""
    fake.inject(Fault.html(504))
    reply = await api.call("GET", events_path())
    assert reply.status == 504
    assert reply.headers["Content-Type"].startswith("text/html")
    assert b"504 Gateway Timeout" in reply.body
    assert b"nginx" in reply.body


async def test_delay_then_normal_answer(api: Api, fake: FakeFathom) -> None:
    """Fault.delay waits, then answers normally."""
    fake.inject(Fault.delay(0.1))
    started = time.monotonic()
    reply = await api.call("GET", events_path())
    assert time.monotonic() - started >= 0.09
    assert reply.json()["object"] == "list"


async def test_hang_never_answers(api: Api, fake: FakeFathom) -> None:
    """Fault.hang leaves the client waiting until its own timeout."""
    fake.inject(Fault.hang())
    timeout = aiohttp.ClientTimeout(total=0.2)
    with pytest.raises(asyncio.TimeoutError):
        await api.session.get(api.url(events_path()), timeout=timeout)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("after_action", "stored"), [(False, 0), (True, 1)])
async def test_disconnect(api: Api, fake: FakeFathom, *, after_action: bool, stored: int) -> None:
    """Fault.disconnect drops the connection with no answer; after_action=True creates first."""
    fake.inject(Fault.disconnect(after_action=after_action))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", events_path(), body={"name": "x"})
    assert len(fake.events(SITE)) == stored


async def test_aiohttp_resends_an_idempotent_request_after_a_disconnect(
    api: Api, fake: FakeFathom
) -> None:
    """aiohttp itself retries a dropped GET once, so both attempts reach the fake."""
    fake.inject(Fault.disconnect(), method="GET", times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("GET", events_path())
    assert len(fake.requests_for("GET")) == 2


async def test_truncated_json(api: Api, fake: FakeFathom) -> None:
    """Fault.truncated_json performs the request and sends its JSON cut in half."""
    fake.inject(Fault.truncated_json())
    reply = await api.call("POST", events_path(), body={"name": "Half"})
    whole = json.dumps(
        {
            "id": fake.events(SITE)[0]["id"],
            "object": "event",
            "name": "Half",
            "currency": "dollar",
            "created_at": fake.events(SITE)[0]["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
        }
    ).encode()
    assert reply.status == 200
    assert reply.body == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        reply.json()


@pytest.mark.parametrize("fault", [Fault.malformed_json(), Fault.malformed_json("not json")])
async def test_malformed_json(api: Api, fake: FakeFathom, fault: Fault) -> None:
    """Fault.malformed_json answers 200 application/json with a body that does not parse."""
    fake.inject(fault)
    reply = await api.call("GET", events_path())
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == fault.body
    with pytest.raises(json.JSONDecodeError):
        reply.json()


async def test_huge_body(api: Api, fake: FakeFathom) -> None:
    """Fault.huge_body streams exactly that many bytes of JSON-looking text."""
    size = 3 * 1024 * 1024 + 7
    fake.inject(Fault.huge_body(size))
    async with api.session.get(api.url(events_path())) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.content_length == size
        first = await resp.content.readexactly(8)
        total = len(first) + len(await resp.read())
    assert first == b'{"id": "'
    assert total == size


def test_huge_body_is_built_chunk_by_chunk() -> None:
    """The huge body comes out in chunks of at most 64 KiB, adding up to the size."""
    for size in (5, 64 * 1024, 1_000_000):
        chunks = list(huge_chunks(size))
        assert sum(map(len, chunks)) == size
        assert max(map(len, chunks)) <= 64 * 1024
    assert json.loads(b"".join(huge_chunks(1000)))["id"] == "HUGEBODY"


async def test_huge_body_survives_a_client_that_gives_up(api: Api, fake: FakeFathom) -> None:
    """A client closing mid-body leaves the fake serving the next request."""
    fake.inject(Fault.huge_body(50 * 1024 * 1024))
    async with api.session.get(api.url(events_path())) as resp:
        await resp.content.readexactly(1024)
        resp.close()
    assert (await api.call("GET", events_path())).status == 200


async def test_trickle_sends_a_valid_answer_slowly(api: Api, fake: FakeFathom) -> None:
    """Fault.trickle performs the request and sends its answer a few bytes at a time."""
    fake.inject(Fault.trickle(40, 0.02))
    started = time.monotonic()
    reply = await api.call("POST", events_path(), body={"name": "Slow"})
    elapsed = time.monotonic() - started
    assert reply.json()["name"] == "Slow"
    assert elapsed >= (len(reply.body) // 40) * 0.02 * 0.9
    assert len(fake.events(SITE)) == 1


async def test_faults_match_method_and_path(api: Api, fake: FakeFathom) -> None:
    """A fault only hits requests matching its method and decoded-path glob."""
    fake.inject(Fault.respond(418), method="post", path="/v1/sites/*/events")
    assert (await api.call("GET", events_path())).status == 200
    assert (await api.call("POST", "/sites/OTHER/goals", body={})).status == 404
    assert (await api.call("POST", events_path(), body={"name": "x"})).status == 418
    assert fake.pending_faults() == 0


async def test_faults_are_used_in_order_and_counted(api: Api, fake: FakeFathom) -> None:
    """Matching faults are used first in, first out, `times` each; pending_faults counts down."""
    fake.inject(Fault.respond(501), times=2)
    fake.inject(Fault.respond(502))
    assert fake.pending_faults() == 3
    statuses = [(await api.call("GET", "/token")).status for _ in range(4)]
    assert statuses == [501, 501, 502, 200]
    assert fake.pending_faults() == 0
    assert len(fake.requests) == 4


async def test_clear_faults(api: Api, fake: FakeFathom) -> None:
    """clear_faults() drops every pending fault."""
    fake.inject(Fault.respond(500), times=5)
    fake.clear_faults()
    assert fake.pending_faults() == 0
    assert (await api.call("GET", "/token")).status == 200


@pytest.mark.parametrize(
    "build",
    [
        lambda: Fault.respond(42),
        lambda: Fault.respond(200, json={}, text="x"),
        lambda: Fault.huge_body(0),
        lambda: Fault.trickle(0, 0.1),
        lambda: Fault.delay(-1),
    ],
)
def test_bad_fault_arguments_are_refused(build: Callable[[], Fault]) -> None:
    """Fault constructors refuse nonsense with a ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_inject_refuses_zero_times(fake: FakeFathom) -> None:
    """inject(times=0) is a ValueError."""
    with pytest.raises(ValueError, match="times"):
        fake.inject(Fault.hang(), times=0)


# -- the request log ---------------------------------------------------------------------


async def test_requests_are_recorded(api: Api, fake: FakeFathom) -> None:
    """Each request is recorded with method, decoded and raw path, query, headers, body, json."""
    fake.add_event(SITE, "x", event_id="a b")
    await api.call("GET", "/sites/CDBUGS/events?limit=5&limit=7&starting_after=a%20b")
    await api.call("POST", events_path(), body={"name": "y"})
    first, second = fake.requests
    assert (first.method, first.path, first.raw_path) == (
        "GET",
        "/v1/sites/CDBUGS/events",
        "/v1/sites/CDBUGS/events",
    )
    assert first.query == {"limit": "7", "starting_after": "a b"}
    assert first.query_pairs == (("limit", "5"), ("limit", "7"), ("starting_after", "a b"))
    assert (first.body, first.json, first.token) == (b"", None, TOKEN)
    assert first.header("ACCEPT") == "application/json"
    assert (second.method, second.json) == ("POST", {"name": "y"})
    assert json.loads(second.body) == {"name": "y"}


async def test_requests_for_filters(api: Api, fake: FakeFathom) -> None:
    """requests_for filters by method and path glob; reset_requests empties the log."""
    fake.add_event(SITE, "x", event_id="EV")
    await api.call("GET", event_path("EV"))
    await api.call("POST", event_path("EV"), body={"name": "z"})
    await api.call("GET", "/token")
    assert [r.path for r in fake.requests_for("get")] == ["/v1/sites/CDBUGS/events/EV", "/v1/token"]
    assert [r.method for r in fake.requests_for(path="/v1/sites/*/events/*")] == ["GET", "POST"]
    assert len(fake.requests_for("POST", "/v1/token")) == 0
    fake.reset_requests()
    assert fake.requests == []


async def test_faulted_requests_are_recorded(api: Api, fake: FakeFathom) -> None:
    """A request answered by a fault is still in the log."""
    fake.inject(Fault.disconnect())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", events_path(), body={"name": "lost"})
    assert [r.json for r in fake.requests] == [{"name": "lost"}]


async def test_repr_masks_the_token(api: Api, fake: FakeFathom) -> None:
    """A recorded request's repr never shows the bearer token."""
    await api.call("GET", "/token")
    request = fake.requests[0]
    assert isinstance(request, RecordedRequest)
    assert request.token == TOKEN
    assert TOKEN not in repr(request)
    assert "Bearer ***" in repr(request)


def test_recorded_request_without_bearer_has_no_token() -> None:
    """token is None without a Bearer Authorization header."""
    request = RecordedRequest(
        method="GET",
        path="/v1/token",
        raw_path="/v1/token",
        query={},
        query_pairs=(),
        headers={"authorization": "Basic abc"},
        body=b"",
        json=None,
    )
    assert request.token is None
    assert "abc" not in repr(request)


# -- at scale ---------------------------------------------------------------------------


class CountingId(str):
    """An event id that counts how often the fake hashes or compares it."""

    __slots__ = ()
    uses = 0

    def __hash__(self) -> int:
        CountingId.uses += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        CountingId.uses += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        CountingId.uses += 1
        return str.__ne__(self, other)


async def test_event_operations_touch_a_handful_of_stored_ids(api: Api, fake: FakeFathom) -> None:
    """Create, get, update, delete and cursor pages among 2,000 events touch few stored ids."""
    ids = [CountingId(f"E{n:04}") for n in range(2000)]
    for n, event_id in enumerate(ids):
        fake.add_event(SITE, "x", event_id=event_id, created_at=T0 + timedelta(seconds=n))
    middle = ids[1000]
    CountingId.uses = 0
    fake.add_event(SITE, "fresh")  # a new random id, unlike every stored one
    assert (await api.call("GET", event_path(middle))).status == 200
    assert (await api.call("POST", event_path(middle), body={"name": "y"})).status == 200
    after = (await api.call("GET", events_path(limit="3", starting_after=middle))).json()
    before = (await api.call("GET", events_path(limit="3", ending_before=middle))).json()
    assert (await api.call("DELETE", event_path(middle))).status == 200
    assert [e["id"] for e in after["data"] + before["data"]] == ids[1001:1004] + ids[999:996:-1]
    # About 20 (a dict lookup or two per step); one scan of the site takes 1,000 and more.
    assert CountingId.uses < 50


async def test_order_and_ids_hold_at_scale(api: Api) -> None:
    """Thousands of events: ids unique across sites, pages and events() in created_at order."""
    fake = FakeFathom(now=lambda: T0)
    site_ids = fake.seed(30, 100)
    stored = [event for site_id in site_ids for event in fake.events(site_id)]
    assert len({event["id"] for event in stored}) == len(stored) == 3000
    rng = random.Random(7)  # noqa: S311 - shuffling test data
    offsets = [rng.randrange(200) for _ in range(600)]  # many ties, in no order
    added = [
        fake.add_event("MIXED", f"n{n}", created_at=T0 + timedelta(seconds=offset))["id"]
        for n, offset in enumerate(offsets)
    ]
    expected = [added[n] for n in sorted(range(len(added)), key=lambda n: (offsets[n], n))]
    assert [event["id"] for event in fake.events("MIXED")] == expected
    async with fake.serve() as base_url:
        mixed = Api(api.session, base_url)
        forward: list[str] = []
        query = {"limit": "100"}
        while True:
            page = (await mixed.call("GET", events_path("MIXED", **query))).json()
            forward += [event["id"] for event in page["data"]]
            if not page["has_more"]:
                break
            query = {"limit": "100", "starting_after": forward[-1]}
    assert forward == expected


def test_ordered_matches_a_sorted_list() -> None:
    """Ordered's puts, removals and pages agree with a plainly sorted list, at random."""
    rng = random.Random(11)  # noqa: S311 - random operations, reproducible
    collection: Ordered[EventRecord] = Ordered()
    model: dict[str, EventRecord] = {}
    for seq in range(3000):
        roll = rng.random()
        if model and roll < 0.25:
            victim = rng.choice(sorted(model))
            assert collection.remove(victim) == model.pop(victim)
            continue
        # A new record, or a changed one (sometimes moved in time).
        event_id = rng.choice(sorted(model)) if model and roll < 0.45 else f"E{seq}"
        moment = T0 + timedelta(seconds=rng.randrange(50))
        record = EventRecord(event_id, f"n{seq}", "dollar", moment, seq)
        collection.put(record)
        model[event_id] = record
    ordered = sorted(model.values(), key=EventRecord.sort_key)
    assert collection.records() == ordered
    assert collection.remove("NOPE") is None
    cursor = ordered[len(ordered) // 2].id
    assert collection.page(7, cursor, None) == (ordered[len(ordered) // 2 + 1 :][:7], True)
    assert (
        collection.page(7, None, cursor)[0]
        == ordered[len(ordered) // 2 - 7 : len(ordered) // 2][::-1]
    )


# -- seeding and inspection ------------------------------------------------------------


def test_seed_spreads_events_over_sites() -> None:
    """seed() makes the sites with events in created_at order, some sharing a second."""
    fake = FakeFathom()
    site_ids = fake.seed(3, 12, prefix="S")
    assert site_ids == ["S1", "S2", "S3"]
    for site_id in site_ids:
        events = fake.events(site_id)
        assert len(events) == 12
        moments = [event["created_at"] for event in events]
        assert moments == sorted(moments)
        assert len(set(moments)) < len(moments)
        assert len({event["currency"] for event in events}) > 1
    assert len({e["id"] for s in site_ids for e in fake.events(s)}) == 36


def test_add_event_rules() -> None:
    """add_event creates the site, takes naive times as UTC and refuses bad input."""
    fake = FakeFathom()
    record = fake.add_event("NEW", "x", "franc", event_id="E1", created_at=datetime(2020, 1, 2))  # noqa: DTZ001
    assert record == {
        "id": "E1",
        "name": "x",
        "currency": "franc",
        "created_at": datetime(2020, 1, 2, tzinfo=timezone.utc),
    }
    with pytest.raises(ValueError, match="already has"):
        fake.add_event("NEW", "y", event_id="E1")
    with pytest.raises(ValueError, match="currency"):
        fake.add_event("NEW", "y", "bitcoin")
    with pytest.raises(KeyError):
        fake.events("MISSING")


def test_importing_testing_needs_no_pytest() -> None:
    """fathom_events.testing imports with pytest unavailable."""
    code = "import sys; sys.modules['pytest'] = None; import fathom_events.testing"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)  # noqa: S603


def test_fake_imports_nothing_from_the_client() -> None:
    """No module of fathom_events.testing imports fathom_events outside fathom_events.testing."""
    package = Path(__file__).parents[2] / "fathom_events" / "testing"
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("fathom_events"):
                    assert name.startswith("fathom_events.testing"), (module.name, name)


# -- the pytest plugin ---------------------------------------------------------------------


def test_plugin_fixture_from_sync_code(fathom_fake: FakeFathomFixture) -> None:
    """The fathom_fake fixture serves blocking code with the default token."""
    fathom_fake.fake.add_site(SITE)
    request = urllib.request.Request(  # noqa: S310
        fathom_fake.base_url + events_path(),
        headers={"Authorization": f"Bearer {fathom_fake.token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        assert json.loads(response.read())["object"] == "list"


async def test_plugin_fixture_from_async_code(fathom_fake: FakeFathomFixture) -> None:
    """The fathom_fake fixture serves async code on another loop."""
    async with aiohttp.ClientSession() as session:
        reply = await Api(session, fathom_fake.base_url).call(
            "GET", "/token", token=fathom_fake.token
        )
    assert reply.json()["abilities"] == ["*"]


async def test_no_tokens_means_every_request_is_401() -> None:
    """FakeFathom(tokens={}) accepts no token at all, not even the default."""
    fake = FakeFathom(tokens={})
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        reply = await Api(session, base_url).call("GET", "/token")
    assert reply.status == 401


async def test_oversized_body_is_recorded(api: Api, fake: FakeFathom) -> None:
    """A body past aiohttp's size limit is answered 413 and still logged."""
    body = io.BytesIO(b"x" * (1024 * 1024 + 1))
    async with api.session.post(api.url(events_path()), data=body) as resp:
        assert resp.status == 413
    assert [(r.method, r.body) for r in fake.requests] == [("POST", b"")]
