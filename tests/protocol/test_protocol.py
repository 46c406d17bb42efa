"""Tables for the no-I/O protocol layer: building requests, reading answers, mapping errors."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from fathom_events import (
    APIStatusError,
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
    ServerError,
    UnprocessableEntityError,
)
from fathom_events import _protocol as proto

UTC = timezone.utc


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> proto.Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return proto.Answer(status, headers or {}, raw)


def read(status: int, body: object, into: type[object], **headers: str) -> object:
    return proto.decode(answer(status, body, headers), into, method="GET", url="https://x/v1")


@pytest.mark.parametrize(
    ("site", "event", "expected"),
    [
        ("CDBUGS", "ABC", "/sites/CDBUGS/events/ABC"),
        ("a/b", "c", "/sites/a%2Fb/events/c"),
        ("S", "..", "/sites/S/events/%2E%2E"),
        ("S", ".", "/sites/S/events/%2E"),
        ("S", "x?y#z", "/sites/S/events/x%3Fy%23z"),
        ("S", "a b%", "/sites/S/events/a%20b%25"),
        ("S", "é", "/sites/S/events/%C3%A9"),
        ("S", "...", "/sites/S/events/..."),
    ],
)
def test_ids_are_single_encoded_segments(site: str, event: str, expected: str) -> None:
    """Every id becomes exactly one percent-encoded path segment."""
    assert proto.build_get(site, event).path == expected


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: proto.build_get("", "E"), "site_id"),
        (lambda: proto.build_get("S", ""), "event_id"),
        (lambda: proto.build_get(None, "E"), "site_id"),
        (lambda: proto.build_delete("S", 5), "event_id"),
        (lambda: proto.build_create("S", ""), "name"),
        (lambda: proto.build_create("S", "   "), "name"),
        (lambda: proto.build_create("S", "x" * 256), "name"),
        (lambda: proto.build_create("S", 7), "name"),
        (lambda: proto.build_create("S", "ok", currency="bitcoin"), "currency"),
        (lambda: proto.build_create("S", "ok", currency="Dollar"), "currency"),
        (lambda: proto.build_create("S", "ok", currency=3), "currency"),
        (lambda: proto.build_update("S", "E"), "name"),
        (lambda: proto.build_update("S", "E", name=""), "name"),
        (lambda: proto.build_update("S", "E", currency="gold"), "currency"),
        (lambda: proto.build_list("S", limit=0), "limit"),
        (lambda: proto.build_list("S", limit=101), "limit"),
        (lambda: proto.build_list("S", limit=True), "limit"),
        (lambda: proto.build_list("S", limit=10.0), "limit"),
        (lambda: proto.build_list("S", limit="10"), "limit"),
        (lambda: proto.build_list("S", starting_after="a", ending_before="b"), "starting_after"),
        (lambda: proto.build_list("S", starting_after=""), "starting_after"),
        (lambda: proto.build_list("S", ending_before=""), "ending_before"),
    ],
)
def test_bad_input_names_the_field(build: object, field: str) -> None:
    """Bad input raises InvalidRequestError (a ValueError) naming the field at fault."""
    with pytest.raises(InvalidRequestError) as info:
        build()  # type: ignore[operator]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, ValueError)


def test_limit_and_cursors_go_in_the_query_encoded() -> None:
    """List sends limit and the cursor as query parameters, percent-encoded."""
    request = proto.build_list("S", limit=100, starting_after="a&b=c")
    assert request.method == "GET"
    assert request.target() == "/sites/S/events?limit=100&starting_after=a%26b%3Dc"
    assert proto.build_list("S").target() == "/sites/S/events"
    assert proto.build_list("S", ending_before="Z").query == (("ending_before", "Z"),)


def test_create_sends_name_and_only_a_given_currency() -> None:
    """Create's JSON body carries the name, and the currency only when given."""
    assert json.loads(proto.build_create("S", "Signed up").body or b"") == {"name": "Signed up"}
    body = proto.build_create("S", "Paid", currency=Currency.EURO).body
    assert json.loads(body or b"") == {"name": "Paid", "currency": "euro"}
    assert json.loads(proto.build_create("S", "P", "yen").body or b"") == {
        "name": "P",
        "currency": "yen",
    }
    assert proto.build_create("S", "x" * 255).method == "POST"


def test_update_sends_only_the_fields_given() -> None:
    """Update's body has exactly the fields the caller gave."""
    assert json.loads(proto.build_update("S", "E", name="N").body or b"") == {"name": "N"}
    assert json.loads(proto.build_update("S", "E", currency="none").body or b"") == {
        "currency": "none"
    }
    both = proto.build_update("S", "E", name="N", currency=Currency.POUND)
    assert both.path == "/sites/S/events/E"
    assert json.loads(both.body or b"") == {"name": "N", "currency": "pound"}


def test_delete_and_wipe_paths() -> None:
    """Delete targets the event; wipe targets its retired /data sub-resource."""
    assert (proto.build_delete("S", "E").method, proto.build_delete("S", "E").path) == (
        "DELETE",
        "/sites/S/events/E",
    )
    assert proto.build_wipe("S", "a/b").path == "/sites/S/events/a%2Fb/data"


@pytest.mark.parametrize(
    ("request_", "name", "site_id"),
    [
        (proto.build_list("S/1"), "events.list", "S/1"),
        (proto.build_list(".."), "events.list", ".."),
        (proto.build_get("a%2Fb é", "E"), "events.get", "a%2Fb é"),
        (proto.build_get("S", "E"), "events.get", "S"),
        (proto.build_create("S", "Signed up"), "events.create", "S"),
        (proto.build_update("S", "E", name="N"), "events.update", "S"),
        (proto.build_delete("S", "E"), "events.delete", "S"),
        (proto.build_wipe("S", "E"), "events.wipe", "S"),
        (proto.build_list_sites(), "sites.list", None),
        (proto.build_get_site("S"), "sites.get", "S"),
        (proto.TOKEN_REQUEST, "token.get", None),
    ],
)
def test_each_request_says_what_it_is_about(
    request_: proto.Request, name: str, site_id: str | None
) -> None:
    """A request names its call (resource.operation) and the site it is about, as given:
    the id comes back whatever its characters."""
    assert (request_.name, request_.site_id) == (name, site_id)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-08-21 15:24:00", datetime(2020, 8, 21, 15, 24, tzinfo=UTC)),
        ("2023-11-07T05:31:56Z", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T07:31:56+02:00", datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T05:31:56.250Z", datetime(2023, 11, 7, 5, 31, 56, 250000, tzinfo=UTC)),
    ],
)
def test_created_at_is_aware_utc_in_both_forms(text: str, expected: datetime) -> None:
    """created_at parses from the plain and the ISO form into aware UTC."""
    event = read(200, {"id": "A", "name": "n", "currency": None, "created_at": text}, Event)
    assert isinstance(event, Event)
    assert event.created_at == expected
    assert event.created_at.tzinfo == UTC


def test_answers_tolerate_unknown_fields_and_currencies() -> None:
    """Unknown fields are ignored; null currency is None; an unknown currency stays a string."""
    body = {
        "id": "signed-up",
        "object": "event",
        "site_id": "S",
        "name": "n",
        "currency": "doubloon",
        "created_at": "2020-08-21 15:24:00",
    }
    event = read(200, body, Event)
    assert event == Event("signed-up", "n", "doubloon", datetime(2020, 8, 21, 15, 24, tzinfo=UTC))
    known = read(200, {**body, "currency": "euro"}, Event)
    assert isinstance(known, Event)
    assert known.currency == "euro"  # a Currency is its string, too
    assert known.currency is Currency.EURO
    assert read(200, {**body, "currency": None}, Event).currency is None  # type: ignore[attr-defined]


def test_page_and_deleted_decode() -> None:
    """A list answer becomes an EventPage; a delete answer a DeletedEvent."""
    event = {
        "id": "A",
        "object": "event",
        "name": "n",
        "currency": None,
        "created_at": "2020-08-21 15:24:00",
    }
    page = read(
        200,
        {"object": "list", "url": "/v1/sites/S/events", "has_more": True, "data": [event]},
        EventPage,
    )
    assert isinstance(page, EventPage)
    assert page.has_more is True
    assert [e.id for e in page.data] == ["A"]
    assert page.url == "/v1/sites/S/events"
    assert read(200, {"id": "A", "object": "event", "deleted": True}, DeletedEvent) == DeletedEvent(
        "A", True
    )


SENT = DeletedEvent("SENT", deleted=True)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (204, b"", SENT),
        (200, b"", SENT),
        (200, b" \r\n", SENT),
        (200, b"null", SENT),
        (200, b"{}", SENT),
        (200, b'{"deleted": true, "object": "event"}', SENT),
        (200, b'{"deleted": false}', SENT),
        (200, b"[]", SENT),
        (202, b'[{"id": "X"}]', SENT),
        (200, b'{"id": "A", "object": "event", "deleted": true}', DeletedEvent("A", True)),
        (200, b'{"id": "A"}', DeletedEvent("A", True)),
        (200, b'{"id": "A", "deleted": false}', DeletedEvent("A", False)),
    ],
)
def test_a_delete_answer_without_an_id_is_the_sent_event_deleted(
    status: int, body: bytes, expected: DeletedEvent
) -> None:
    """A delete's 2xx answer without an id is the id sent, deleted; one with an id is read."""
    deleted = proto.deleted_answer("SENT")
    assert proto.decode(answer(status, body), deleted, method="DELETE", url="u") == expected


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        (b"OK", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON|nested too deeply"),
        (b"0", "expected a JSON object, a list or null, got 0"),
        (b'"deleted"', "expected a JSON object, a list or null, got 'deleted'"),
        (b"false", "expected a JSON object, a list or null, got False"),
        (b'{"id": null}', r"DeletedEvent: \$\.id: expected a string, got None"),
        (b'{"id": "A", "deleted": 1}', r"\$\.deleted: expected true or false, got 1"),
    ],
)
def test_an_unreadable_delete_answer_is_a_decode_error(body: bytes, quoted: str) -> None:
    """A delete's 2xx answer that is not JSON, or not an object, a list or null, is refused."""
    deleted = proto.deleted_answer("SENT")
    with pytest.raises(ResponseDecodeError, match=quoted) as info:
        proto.decode(answer(200, body), deleted, method="DELETE", url="u")
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("body", "into", "quoted"),
    [
        (b"not json", Event, "not valid JSON"),
        (b'{"id": "A", "na', Event, "not valid JSON"),
        (b"[]", Event, "expected a JSON object"),
        ({"id": "A", "name": "n", "currency": None}, Event, "created_at"),
        (
            {"id": None, "name": "n", "currency": None, "created_at": "2020-08-21 15:24:00"},
            Event,
            "expected a string",
        ),
        (
            {"id": "A", "name": "n", "currency": None, "created_at": "yesterday"},
            Event,
            "not a timestamp",
        ),
        (
            {"id": "A", "name": "n", "currency": 5, "created_at": "2020-08-21 15:24:00"},
            Event,
            "currency",
        ),
        ({"data": {}, "has_more": False, "url": "/"}, EventPage, "expected a list"),
        ({"data": [], "has_more": "false", "url": "/"}, EventPage, "expected true or false"),
        ({"id": "A", "deleted": 1}, DeletedEvent, "expected true or false"),
    ],
)
def test_wrong_shapes_are_decode_errors(body: object, into: type[object], quoted: str) -> None:
    """A 2xx body not of the documented shape is a ResponseDecodeError saying what was wrong."""
    with pytest.raises(ResponseDecodeError) as info:
        read(200, body, into)
    assert quoted in str(info.value)
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (410, GoneError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, APIStatusError),
    ],
)
def test_status_maps_to_error_class(status: int, cls: type[APIStatusError]) -> None:
    """Each status becomes its typed error carrying status, message, body, headers and request."""
    error = proto.error_for(
        answer(status, {"error": "Nope."}, {"X-Id": "1"}),
        method="GET",
        url="https://x/v1/sites/S/events",
        operation=proto.Operation.GET,
        now=0,
    )
    assert type(error) is cls
    assert (error.status, error.message, error.body) == (status, "Nope.", {"error": "Nope."})
    assert error.headers == {"X-Id": "1"}
    assert (error.method, error.url) == ("GET", "https://x/v1/sites/S/events")
    assert "Nope." in str(error)
    assert str(status) in str(error)


@pytest.mark.parametrize(
    ("status", "cls"), [(400, BadRequestError), (422, UnprocessableEntityError)]
)
def test_validation_errors_fill_errors_and_message(
    status: int, cls: type[BadRequestError | UnprocessableEntityError]
) -> None:
    """A 400 or 422 with field errors exposes them as .errors and names them in the message."""
    body = {"errors": {"name": ["The name field is required."], "currency": "Bad."}}
    error = proto.error_for(
        answer(status, body), method="POST", url="u", operation=proto.Operation.CREATE, now=0
    )
    assert type(error) is cls
    assert error.errors == {"name": ["The name field is required."], "currency": ["Bad."]}
    assert "name: The name field is required." in error.message
    plain = proto.error_for(
        answer(status, {"error": "No."}),
        method="POST",
        url="u",
        operation=proto.Operation.CREATE,
        now=0,
    )
    assert isinstance(plain, cls)
    assert plain.errors == {}


def test_html_error_keeps_status_and_excerpt() -> None:
    """A non-JSON error body (a gateway's HTML page) keeps the real status and a short excerpt."""
    page = (
        b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 5000 + b"</body></html>"
    )
    error = proto.error_for(
        proto.Answer(502, {}, page), method="GET", url="u", operation=proto.Operation.GET, now=0
    )
    assert isinstance(error, ServerError)
    assert error.status == 502
    assert "502 Bad Gateway" in error.message
    assert len(error.message) < 300


def test_wipe_410_points_at_delete() -> None:
    """The wipe endpoint's 410 becomes a GoneError saying it is retired and naming delete()."""
    error = proto.error_for(
        answer(410, {"error": "Gone"}),
        method="DELETE",
        url="u",
        operation=proto.Operation.WIPE,
        now=0,
    )
    assert isinstance(error, GoneError)
    assert "retired" in error.message
    assert "delete()" in error.message


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After reads as seconds or an HTTP date; nonsense is None, the past is 0."""
    assert proto.parse_retry_after(value, now=NOW) == expected


def test_rate_limit_error_carries_retry_after() -> None:
    """A 429's Retry-After header (any case) lands in .retry_after."""
    error = proto.error_for(
        answer(429, {"error": "Too many"}, {"retry-after": "7"}),
        method="GET",
        url="u",
        operation=proto.Operation.LIST,
        now=NOW,
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0


def test_decode_errors_name_the_field_path() -> None:
    """A wrong field deep in a page is named by its path in the error."""
    good = {"id": "A", "name": "n", "currency": None, "created_at": "2020-08-21 15:24:00"}
    body = {"data": [good, {**good, "id": 123}], "has_more": False, "url": "/"}
    with pytest.raises(ResponseDecodeError, match=r"\$\.data\[1\]\.id: expected a string"):
        read(200, body, EventPage)
    with pytest.raises(ResponseDecodeError, match=r"\$\.data\[0\]: expected an object"):
        read(200, {"data": [5], "has_more": False, "url": "/"}, EventPage)


def test_page_reads_every_timestamp_form() -> None:
    """Events of one page may mix the plain and the ISO created_at forms."""
    plain = {"id": "A", "name": "n", "currency": "euro", "created_at": "2020-08-21 15:24:00"}
    iso = {**plain, "id": "B", "currency": "doubloon", "created_at": "2023-11-07T05:31:56Z"}
    offset = {**plain, "id": "C", "currency": None, "created_at": "2023-11-07T07:31:56+02:00"}
    page = read(200, {"data": [plain, iso, offset], "has_more": False, "url": "/"}, EventPage)
    assert isinstance(page, EventPage)
    assert [e.created_at for e in page.data] == [
        datetime(2020, 8, 21, 15, 24, tzinfo=UTC),
        datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC),
        datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC),
    ]
    assert [e.currency for e in page.data] == [Currency.EURO, "doubloon", None]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"name": None}, "$.data[1].name"),
        ({"currency": 7}, "$.data[1].currency"),
        ({"created_at": "2020-13-45 99:99:99"}, "$.data[1].created_at"),
        ({"created_at": 20200821}, "$.data[1].created_at"),
    ],
)
def test_bad_field_inside_a_page_is_named(change: dict[str, object], path: str) -> None:
    """A wrong field in the second event of a page is reported by its path."""
    good = {"id": "A", "name": "n", "currency": None, "created_at": "2020-08-21 15:24:00"}
    body = {"data": [good, {**good, **change}], "has_more": False, "url": "/"}
    with pytest.raises(ResponseDecodeError, match=re.escape(path)):
        read(200, body, EventPage)
