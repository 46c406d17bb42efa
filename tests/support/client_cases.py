"""The client cases that hold on both faces, run by test_client_async.py and test_client_sync.py.

Each case is an async function of a :class:`~tests.support.faces.Served` face (the
harness: tests/support/faces.py). The async face awaits ``AsyncClient``'s methods in
the test's own event loop. The blocking face makes, calls and closes a ``Client`` in
worker threads, as plain code would (no event loop of its own), and awaits each call
there; its methods are the async client's, so one case reads the same on both faces.
Each face runs the table over the built-in transport and over the docs' own
(``cases_over("user")``).
"""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone

import pytest
from _pytest.mark import ParameterSet

from fathom_events import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncEvents,
    AuthenticationError,
    BadRequestError,
    Currency,
    DeletedEvent,
    Event,
    EventPage,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    UnprocessableEntityError,
    __version__,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import Served, ThreadedEvents
from tests.support.helpers import SITE, TOKEN

NO_RETRY = RetryPolicy(max_retries=0)


# -- the cases -----------------------------------------------------------------------


async def every_request_sends_auth_accept_and_user_agent(face: Served) -> None:
    """Each request carries the bearer token, Accept: application/json and our User-Agent."""
    fake = face.fake
    async with face.client() as client:
        await client.events.list(SITE)
        await client.events.create(SITE, "Signed up")
    assert len(fake.requests) == 2
    for request in fake.requests:
        assert request.header("Authorization") == f"Bearer {TOKEN}"
        assert request.header("Accept") == "application/json"
        assert (request.header("User-Agent") or "").startswith(f"fathom-events/{__version__} ")
    assert fake.requests[1].header("Content-Type") == "application/json"


async def create_get_update_delete_round_trip(face: Served) -> None:
    """Create, get, update and delete reach the server and come back as typed objects."""
    fake = face.fake
    async with face.client() as client:
        created = await client.events.create(SITE, "Purchased", currency=Currency.EURO)
        assert isinstance(created, Event)
        assert (created.name, created.currency) == ("Purchased", Currency.EURO)
        assert created.created_at.tzinfo == timezone.utc
        assert fake.requests[-1].json == {"name": "Purchased", "currency": "euro"}

        fetched = await client.events.get(SITE, created.id)
        assert (fetched.id, fetched.name, fetched.currency) == (created.id, "Purchased", None)

        renamed = await client.events.update(SITE, created.id, name="Purchased (live)")
        assert renamed.name == "Purchased (live)"
        assert fake.requests[-1].json == {"name": "Purchased (live)"}
        assert fake.events(SITE)[0]["currency"] == "euro"

        gone = await client.events.delete(SITE, created.id)
        assert gone == DeletedEvent(created.id, deleted=True)
        assert fake.events(SITE) == []


async def delete_answered_without_an_id_is_done(face: Served, fault: Fault) -> None:
    """A 2xx delete answer without an id (no body, 204, {}, [], null) is the event deleted."""
    fake = face.fake
    stored = fake.add_event(SITE, "Gone soon")
    fake.inject(fault, method="DELETE")
    async with face.client() as client:
        gone = await client.events.delete(SITE, stored["id"])
    assert gone == DeletedEvent(stored["id"], deleted=True)
    assert fake.events(SITE) == []
    assert len(fake.requests) == 1


async def delete_answer_with_an_id_is_read(face: Served) -> None:
    """A delete answer with an id is read as it is; a missing `deleted` is true."""
    face.fake.inject(Fault.respond(200, json={"id": "OTHER", "object": "event"}))
    face.fake.inject(Fault.respond(200, json={"id": "A", "deleted": False}))
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        assert await client.events.delete(SITE, "A") == DeletedEvent("OTHER", deleted=True)
        assert await client.events.delete(SITE, "A") == DeletedEvent("A", deleted=False)


async def unreadable_delete_answer_is_decode_error(face: Served, fault: Fault, quoted: str) -> None:
    """A 2xx delete answer that is not JSON, or JSON of no object, list or null, is refused."""
    face.fake.inject(fault)
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        with pytest.raises(ResponseDecodeError, match=quoted) as info:
            await client.events.delete(SITE, "A")
    assert info.value.status == 200
    assert info.value.method == "DELETE"


async def create_without_currency_sends_only_the_name(face: Served) -> None:
    """A create with no currency sends just the name; Fathom's default (dollar) comes back."""
    async with face.client() as client:
        event = await client.events.create(SITE, "Signed up")
    assert face.fake.requests[-1].json == {"name": "Signed up"}
    assert event.currency is Currency.DOLLAR


async def update_currency_only(face: Served) -> None:
    """An update of the currency alone sends only the currency and keeps the name."""
    stored = face.fake.add_event(SITE, "Keep me")
    async with face.client() as client:
        event = await client.events.update(SITE, stored["id"], currency="yen")
    assert face.fake.requests[-1].json == {"currency": "yen"}
    assert (event.name, event.currency) == ("Keep me", Currency.YEN)


async def list_pages_with_limit_and_cursors(face: Served) -> None:
    """List honours limit and both cursors, and reports has_more and url."""
    fake = face.fake
    ids = [fake.add_event(SITE, f"e{i}")["id"] for i in range(5)]
    async with face.client() as client:
        first = await client.events.list(SITE, limit=2)
        assert isinstance(first, EventPage)
        assert [e.id for e in first.data] == ids[:2]
        assert first.has_more is True
        assert first.url == f"/v1/sites/{SITE}/events"
        after = await client.events.list(SITE, limit=10, starting_after=ids[1])
        assert [e.id for e in after.data] == ids[2:]
        assert after.has_more is False
        before = await client.events.list(SITE, limit=2, ending_before=ids[4])
    assert [e.id for e in before.data] == [ids[3], ids[2]]
    assert fake.requests[-1].query == {"limit": "2", "ending_before": ids[4]}


async def default_list_sends_no_query(face: Served) -> None:
    """Without arguments list sends no query string and reads every documented field."""
    face.fake.add_event(SITE, "Only")
    async with face.client() as client:
        page = await client.events.list(SITE)
    assert face.fake.requests[-1].query == {}
    assert [e.name for e in page.data] == ["Only"]
    assert page.data[0].currency is None


async def awkward_ids_reach_the_server_intact(face: Served, event_id: str) -> None:
    """An id holding /, .., ?, # or % is one path segment and names exactly that event."""
    fake = face.fake
    fake.add_event(SITE, "Odd", event_id=event_id)
    async with face.client() as client:
        event = await client.events.get(SITE, event_id)
        assert event.id == event_id
        assert fake.requests[-1].path == f"/v1/sites/{SITE}/events/{event_id}"
        page = await client.events.list(SITE, starting_after=event_id)
    assert page.data == []
    assert fake.requests[-1].query == {"starting_after": event_id}


async def iso_timestamps_parse(face: Served) -> None:
    """A server answering the older ISO 8601 created_at form is read as aware UTC."""
    iso = FakeFathom(created_at_format="iso")
    iso.add_event(SITE, "Old", created_at=datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc))
    async with face.serve(iso) as url, face.open(TOKEN, url) as client:
        page = await client.events.list(SITE)
    assert page.data[0].created_at == datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)


BadCall = Callable[[AsyncEvents | ThreadedEvents], Awaitable[object]]
BAD_CALLS: list[BadCall] = [
    lambda events: events.create(SITE, ""),
    lambda events: events.create(SITE, "x" * 256),
    lambda events: events.create(SITE, "ok", currency="bitcoin"),
    lambda events: events.list(SITE, limit=0),
    lambda events: events.list(SITE, starting_after="a", ending_before="b"),
    lambda events: events.update(SITE, "E"),
    lambda events: events.get(SITE, ""),
    lambda events: events.delete("", "E"),
]


async def invalid_input_sends_nothing(face: Served) -> None:
    """Input the API would reject raises InvalidRequestError before any request."""
    async with face.client() as client:
        for call in BAD_CALLS:
            with pytest.raises(InvalidRequestError):
                await call(client.events)
    assert face.fake.requests == []


async def wipe_warns_sends_once_and_raises_gone(face: Served) -> None:
    """wipe() is deprecated, sends the documented DELETE .../data once, and raises GoneError."""
    fake = face.fake
    stored = fake.add_event(SITE, "Old")
    async with face.client() as client:
        with pytest.warns(DeprecationWarning, match="delete"), pytest.raises(GoneError) as info:
            await client.events.wipe(SITE, stored["id"])
    assert info.value.status == 410
    assert "retired" in str(info.value)
    assert "delete()" in str(info.value)
    assert [(r.method, r.path) for r in fake.requests] == [
        ("DELETE", f"/v1/sites/{SITE}/events/{stored['id']}/data")
    ]


async def unknown_token_is_authentication_error(face: Served) -> None:
    """A token the API does not know raises AuthenticationError (401)."""
    async with face.open("wrong-token", face.url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.events.list(SITE)
    assert info.value.status == 401
    assert "wrong-token" not in str(info.value)


async def scopes_map_to_not_found_and_bad_request(face: Served) -> None:
    """No access to a site is a NotFoundError; read-only access to a write is a BadRequestError."""
    fake = face.fake
    fake.add_site("OTHER")
    fake.add_token("reader", [f"read:{SITE}"])
    async with face.open("reader", face.url, retry=NO_RETRY) as client:
        assert (await client.events.list(SITE)).data == []
        with pytest.raises(NotFoundError):
            await client.events.list("OTHER")
        with pytest.raises(BadRequestError):
            await client.events.create(SITE, "Nope")
    assert fake.events(SITE) == []


async def missing_event_is_not_found(face: Served) -> None:
    """An event that does not exist raises NotFoundError with the API's message and the URL."""
    async with face.client() as client:
        with pytest.raises(NotFoundError) as info:
            await client.events.get(SITE, "MISSING")
    assert info.value.method == "GET"
    assert info.value.url.endswith(f"/v1/sites/{SITE}/events/MISSING")
    assert info.value.message


async def error_statuses_are_typed(face: Served, status: int, cls: type[APIStatusError]) -> None:
    """Each error status from the server becomes its typed error with the body's message."""
    face.fake.inject(
        Fault.respond(status, json={"error": f"boom {status}"}, headers={"Retry-After": "2"})
    )
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        with pytest.raises(cls) as info:
            await client.events.list(SITE)
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.message == f"boom {status}"
    assert info.value.body == {"error": f"boom {status}"}
    assert info.value.headers["Retry-After"] == "2"
    assert info.value.retry_after == 2.0


async def validation_errors_from_the_server(face: Served) -> None:
    """A 400 or a 422 with field errors exposes them in .errors."""
    taken = {"name": ["The name has already been taken."]}
    face.fake.inject(Fault.respond(400, json={"errors": taken}))
    face.fake.inject(Fault.respond(422, json={"errors": taken}))
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        with pytest.raises(BadRequestError) as bad:
            await client.events.create(SITE, "Dup")
        with pytest.raises(UnprocessableEntityError) as unprocessable:
            await client.events.create(SITE, "Dup")
    assert bad.value.errors == unprocessable.value.errors == taken


async def html_gateway_page_keeps_status(face: Served) -> None:
    """An HTML 502 from a gateway is a ServerError with status 502 and a short excerpt."""
    face.fake.inject(Fault.html(502))
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        with pytest.raises(ServerError) as info:
            await client.events.get(SITE, "E")
    assert info.value.status == 502
    assert "Bad Gateway" in info.value.message
    assert len(info.value.message) < 300


async def unreadable_success_is_decode_error(face: Served, fault: Fault) -> None:
    """A 2xx whose body is not JSON of the documented shape is a ResponseDecodeError (or drop)."""
    face.fake.inject(fault)
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        with pytest.raises((ResponseDecodeError, APIConnectionError)):
            await client.events.list(SITE)


async def wrong_shape_is_decode_error_quoting_the_problem(face: Served) -> None:
    """A 2xx JSON body missing a documented field names the field."""
    no_created_at = {"id": "A", "object": "event", "name": "n", "currency": None}
    face.fake.inject(Fault.respond(200, json=no_created_at))
    async with face.open(TOKEN, face.url, retry=NO_RETRY) as client:
        with pytest.raises(ResponseDecodeError, match="created_at"):
            await client.events.get(SITE, "A")


async def huge_body_is_refused(face: Served) -> None:
    """An answer over max_response_bytes raises ResponseTooLargeError instead of being read."""
    face.fake.inject(Fault.huge_body(3_000_000))
    async with face.open(TOKEN, face.url, retry=NO_RETRY, max_response_bytes=1_000_000) as client:
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
            await client.events.list(SITE)


async def connection_refused_is_connection_error(face: Served) -> None:
    """Nothing listening on the port is an APIConnectionError that says nothing was sent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with face.open(TOKEN, f"http://127.0.0.1:{port}/v1", retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.list(SITE)
    assert info.value.request_sent is False


async def hang_is_timeout_error(face: Served) -> None:
    """A server that never answers raises APITimeoutError once the attempt's timeout passes."""
    face.fake.inject(Fault.hang())
    async with face.open(TOKEN, face.url, timeout=0.2, retry=NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.events.list(SITE)


async def insecure_http_needs_explicit_consent(face: Served) -> None:
    """allow_insecure_http=True permits http:// to another host; loopback needs no consent."""
    async with face.open(TOKEN, "http://api.example.com/v1/", allow_insecure_http=True) as client:
        assert client.base_url == "http://api.example.com/v1"
    for loopback in ("http://localhost:8080/v1", "http://[::1]:8080/v1"):
        async with face.open(TOKEN, loopback) as client:
            assert client.base_url == loopback


async def token_never_in_repr_or_errors(face: Served) -> None:
    """The token appears in no repr and no error message, open or closed."""
    secret = "s3cr3t-token-value"
    face.fake.add_token(secret, ["*"])
    face.fake.inject(Fault.html(500))
    async with face.open(secret, face.url, retry=NO_RETRY) as client:
        texts = client.reprs()
        with pytest.raises(ServerError) as info:
            await client.events.list(SITE)
        texts += [str(info.value), repr(info.value), json.dumps(info.value.headers)]
    texts += client.reprs()
    assert not [t for t in texts if secret in t]
    assert "closed=True" in client.reprs()[0]


# -- the table -----------------------------------------------------------------------

Case = Callable[[Served], Awaitable[None]]
AWKWARD_IDS = ["a/b?c#d..", "..", ".", "x y%z", "ünï", "a&b=c"]
ERROR_STATUSES: list[tuple[int, type[APIStatusError]]] = [
    (400, BadRequestError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (410, GoneError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, ServerError),
    (503, ServerError),
    (418, APIStatusError),
]
#: 2xx answers to a delete that say only that it succeeded (the event is deleted first).
DELETED_WITHOUT_ID = {
    "empty-body": Fault.respond(200, after_action=True),
    "204": Fault.respond(204, after_action=True),
    "empty-object": Fault.respond(200, json={}, after_action=True),
    "deleted-true": Fault.respond(200, json={"deleted": True}, after_action=True),
    "empty-list": Fault.respond(200, json=[], after_action=True),
    "null": Fault.respond(200, text="null", content_type="application/json", after_action=True),
    "blank-line": Fault.respond(200, text="\r\n", after_action=True),
}
#: 2xx answers to a delete that cannot be read, and what the error says of each.
UNREADABLE_DELETES = {
    "html": (Fault.respond(200, text="<html>OK</html>"), "not valid JSON"),
    "number": (Fault.respond(200, json=5), "expected a JSON object, a list or null, got 5"),
    "string": (Fault.respond(200, json="gone"), "got 'gone'"),
    "true": (Fault.respond(200, json=True), "got True"),
    "bad-id": (Fault.respond(200, json={"id": 5, "deleted": True}), r"\$\.id"),
    "bad-flag": (Fault.respond(200, json={"id": "A", "deleted": "yes"}), r"\$\.deleted"),
}
UNREADABLE = {"malformed_json": Fault.malformed_json(), "truncated_json": Fault.truncated_json()}


def _table() -> Iterator[ParameterSet]:
    plain: list[Case] = [
        every_request_sends_auth_accept_and_user_agent,
        create_get_update_delete_round_trip,
        create_without_currency_sends_only_the_name,
        delete_answer_with_an_id_is_read,
        update_currency_only,
        list_pages_with_limit_and_cursors,
        default_list_sends_no_query,
        iso_timestamps_parse,
        invalid_input_sends_nothing,
        wipe_warns_sends_once_and_raises_gone,
        unknown_token_is_authentication_error,
        scopes_map_to_not_found_and_bad_request,
        missing_event_is_not_found,
        validation_errors_from_the_server,
        html_gateway_page_keeps_status,
        wrong_shape_is_decode_error_quoting_the_problem,
        huge_body_is_refused,
        connection_refused_is_connection_error,
        hang_is_timeout_error,
        insecure_http_needs_explicit_consent,
        token_never_in_repr_or_errors,
    ]
    for case in plain:
        yield pytest.param(case, id=case.__name__)
    name = awkward_ids_reach_the_server_intact.__name__
    for event_id in AWKWARD_IDS:
        yield pytest.param(
            functools.partial(awkward_ids_reach_the_server_intact, event_id=event_id),
            id=f"{name}[{event_id}]",
        )
    name = error_statuses_are_typed.__name__
    for status, cls in ERROR_STATUSES:
        yield pytest.param(
            functools.partial(error_statuses_are_typed, status=status, cls=cls),
            id=f"{name}[{status}-{cls.__name__}]",
        )
    name = delete_answered_without_an_id_is_done.__name__
    for answer, fault in DELETED_WITHOUT_ID.items():
        yield pytest.param(
            functools.partial(delete_answered_without_an_id_is_done, fault=fault),
            id=f"{name}[{answer}]",
        )
    name = unreadable_delete_answer_is_decode_error.__name__
    for answer, (fault, quoted) in UNREADABLE_DELETES.items():
        yield pytest.param(
            functools.partial(unreadable_delete_answer_is_decode_error, fault=fault, quoted=quoted),
            id=f"{name}[{answer}]",
        )
    name = unreadable_success_is_decode_error.__name__
    for fault_name, fault in UNREADABLE.items():
        yield pytest.param(
            functools.partial(unreadable_success_is_decode_error, fault=fault),
            id=f"{name}[{fault_name}]",
        )


#: Every case, once: each face's test file runs all of them.
CASES = list(_table())
