"""Every published example answer, served over HTTP, reads through the real client on both faces.

The examples live in ``tests/fixtures/published/``, one answer per file, each
opening with a ``source`` line that says where it comes from: Fathom's current
Events reference, its older reference pages and other clients' fixtures (as
gathered in the shared ``fathom-api-facts.md``), and its errors page.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import fathom_events
from fathom_events import APIStatusError, DeletedEvent, Event, EventPage, Site, SitePage, TokenInfo
from tests.support.endpoints import CALLS, PATHS, outcome_async, outcome_blocking
from tests.support.helpers import SITE
from tests.support.hostile import RawRequest, RawServer, http

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "published").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert next(iter(fixture)) == "source", f"{path.name} must open with its source"
    return fixture


def answer(fixture: dict[str, Any]) -> bytes:
    """The fixture as the server sends it: a JSON body pretty-printed as the pages show it."""
    if "body_text" in fixture:
        body = fixture["body_text"].encode()
    else:
        body = json.dumps(fixture["body"], indent=4).encode()
    return http(fixture["status"], body, fixture.get("headers"))


def check(fixture: dict[str, Any], outcome: object) -> None:
    """The outcome is the fixture's expected type, carrying the fixture's values."""
    expected = getattr(fathom_events, fixture["expect"])
    assert isinstance(outcome, expected), f"{fixture['source']}: got {outcome!r}"
    body: Any = fixture.get("body")
    if isinstance(outcome, EventPage):
        assert [event.id for event in outcome.data] == [item["id"] for item in body["data"]]
        for event, item in zip(outcome.data, body["data"], strict=True):
            check_event(event, item)
        assert outcome.has_more is body["has_more"]
        given_url = body["url"]
        assert outcome.url == (
            given_url if isinstance(given_url, str) else f"/v1/sites/{SITE}/events"
        )
    elif isinstance(outcome, Event):
        check_event(outcome, body)
    elif isinstance(outcome, SitePage):
        assert [site.id for site in outcome.data] == [item["id"] for item in body["data"]]
        for site, item in zip(outcome.data, body["data"], strict=True):
            check_site(site, item)
        assert (outcome.has_more, outcome.url) == (body["has_more"], body["url"])
    elif isinstance(outcome, Site):
        check_site(outcome, body)
    elif isinstance(outcome, TokenInfo):
        assert (outcome.name, outcome.version) == (body["name"], body["version"])
        assert outcome.abilities == tuple(body["abilities"])
        for field in ("last_used_at", "expires_at", "created_at", "updated_at"):
            assert same_time(getattr(outcome, field), body[field]), field
    elif isinstance(outcome, DeletedEvent):
        assert outcome == DeletedEvent(body["id"], body["deleted"])
    else:
        assert isinstance(outcome, APIStatusError)
        assert outcome.status == fixture["status"]
        assert outcome.message
        assert len(str(outcome).splitlines()) == 1


def same_time(value: datetime | None, given: str | None) -> bool:
    """A timestamp read as aware UTC holds the published one (or both are None)."""
    if value is None or given is None:
        return value is None and given is None
    return value.utcoffset() == timedelta(0) and value.isoformat()[:19] == given[:19].replace(
        " ", "T"
    )


def check_site(site: Site, item: dict[str, Any]) -> None:
    assert (site.id, site.name) == (item["id"], item["name"])
    assert (site.sharing, site.timezone) == (item.get("sharing"), item.get("timezone"))
    assert same_time(site.created_at, item["created_at"])


def check_event(event: Event, item: dict[str, Any]) -> None:
    assert (event.id, event.name) == (item["id"], item["name"])
    assert event.currency == item.get("currency")
    assert event.created_at.utcoffset() == timedelta(0)
    assert event.created_at.isoformat()[:19] == item["created_at"][:19].replace(" ", "T")


@pytest.mark.parametrize("path", FIXTURES, ids=[path.stem for path in FIXTURES])
async def test_published_example_reads_on_the_async_face(path: Path) -> None:
    """Each published answer reads as its documented value or error through AsyncClient."""
    fixture = load(path)
    server = RawServer(lambda _: answer(fixture))
    async with server.serve() as url:
        check(fixture, await outcome_async(url, fixture["call"]))
    assert_sent_to(server.requests, PATHS[fixture["call"]])


@pytest.mark.parametrize("path", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_published_example_reads_on_the_blocking_face(path: Path) -> None:
    """Each published answer reads as its documented value or error through Client."""
    fixture = load(path)
    server = RawServer(lambda _: answer(fixture))
    with server.serve_in_thread() as url:
        check(fixture, outcome_blocking(url, fixture["call"]))
    assert_sent_to(server.requests, PATHS[fixture["call"]])


def assert_sent_to(requests: list[RawRequest], path: str) -> None:
    assert len(requests) == 1
    assert requests[0].target.startswith(path)


def test_every_kind_of_published_example_is_kept() -> None:
    """The fixtures cover each endpoint, the older shapes and the error pages."""
    fixtures = [load(path) for path in FIXTURES]
    assert {fixture["call"] for fixture in fixtures} == set(CALLS)
    assert {path.stem.split("-")[0] for path in FIXTURES} >= {"current", "older", "error"}
    assert all(fixture["source"] for fixture in fixtures)
