"""The answer reader: every published shape reads, and any other body is a typed error."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fathom_events import (
    APIStatusError,
    Currency,
    DeletedEvent,
    Event,
    EventPage,
    ResponseDecodeError,
)
from fathom_events import _converter as conv
from fathom_events import _protocol as proto

UTC = timezone.utc
REQUEST_URL = "http://127.0.0.1:8123/v1/sites/CDBUGS/events?limit=100&starting_after=X"
GOOD = {"id": "A", "name": "n", "currency": None, "created_at": "2020-08-21 15:24:00"}

#: The JSON codecs the reader may run on: the stdlib always, orjson where it is installed.
BACKENDS: dict[str, Callable[[bytes], Any]] = {"json": json.loads}
try:
    import orjson
except ImportError:  # pragma: no cover - the speedups are optional; CI runs without them
    pass
else:  # pragma: no cover
    BACKENDS["orjson"] = orjson.loads


@pytest.fixture(name="backend", params=sorted(BACKENDS), autouse=True)
def _backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on each installed JSON codec."""
    monkeypatch.setattr(proto, "json_loads", BACKENDS[request.param])
    return str(request.param)


def read(body: object, into: type[Any], url: str = REQUEST_URL) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return proto.decode(proto.Answer(200, {}, raw), into, method="GET", url=url)


def page(*events: object, **fields: object) -> dict[str, object]:
    return {"object": "list", "url": "/v1/sites/CDBUGS/events", "has_more": False,
            "data": list(events), **fields}  # fmt: skip


def outcome_of(body: bytes, into: type[Any]) -> object:
    """The value read, or the ResponseDecodeError raised (anything else escapes)."""
    try:
        return read(body, into)
    except ResponseDecodeError as error:
        return error


def refused(body: object, into: type[Any]) -> ResponseDecodeError:
    with pytest.raises(ResponseDecodeError) as info:
        read(body, into)
    message = str(info.value)
    assert "\n" not in message
    assert "\r" not in message
    return info.value


# --- published shapes --------------------------------------------------------------------


def test_an_event_without_currency_reads_as_none() -> None:
    """An event with no currency key (older references) reads with currency None."""
    bare = {"id": "A", "name": "n", "created_at": "2020-08-21 15:24:00"}
    assert read(bare, Event) == Event("A", "n", None, datetime(2020, 8, 21, 15, 24, tzinfo=UTC))
    listed = read(page(GOOD, bare, {**bare, "id": "B"}), EventPage)
    assert [(e.id, e.currency) for e in listed.data] == [("A", None), ("A", None), ("B", None)]


@pytest.mark.parametrize(
    "url",
    [["/v1/sites/CDBUGS/events"], None, 5, {"path": "/"}, True],
    ids=["array", "null", "number", "object", "bool"],
)
def test_a_page_whose_url_is_not_a_string_keeps_its_events(url: object) -> None:
    """A list whose url is not a string still yields its events; url is the request's path."""
    listed = read(page(GOOD, {**GOOD, "id": "B"}, url=url), EventPage)
    assert [e.id for e in listed.data] == ["A", "B"]
    assert listed.url == "/v1/sites/CDBUGS/events"
    assert proto.locate_problem(page(GOOD, url=url), EventPage) == ""


def test_a_page_without_url_gets_the_request_path() -> None:
    """A list with no url key reads; url is the base URL's path plus the request path."""
    body = page(GOOD)
    del body["url"]
    assert read(body, EventPage).url == "/v1/sites/CDBUGS/events"
    elsewhere = read(body, EventPage, url="https://proxy.example/fathom/v1/sites/a%2Fb/events")
    assert elsewhere.url == "/fathom/v1/sites/a%2Fb/events"


def test_a_string_url_is_kept_as_given() -> None:
    """A page's own url string is what EventPage.url holds, whatever the request was."""
    assert read(page(GOOD, url="/v1/elsewhere"), EventPage).url == "/v1/elsewhere"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"created_at": "2023-11-07T05:31:56Z"}, datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ({"created_at": "2023-11-07T05:31:56.123Z"},
         datetime(2023, 11, 7, 5, 31, 56, 123000, UTC)),
        ({"created_at": "2023-11-07T05:31:56.123456Z"},
         datetime(2023, 11, 7, 5, 31, 56, 123456, UTC)),
        ({"created_at": "2023-11-07T07:31:56+02:00"}, datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ({"created_at": "2023-11-06T23:31:56-06:00"}, datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ({"created_at": "2023-11-07T05:31:56+00:00"}, datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ({"created_at": "2023-11-07 05:31:56"}, datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ({"created_at": "2023-11-07T05:31:56"}, datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ({"id": "signed-up-to-newsletter"}, datetime(2020, 8, 21, 15, 24, tzinfo=UTC)),
        ({"id": "7E2TJKBV", "site_id": "CDBUGS"}, datetime(2020, 8, 21, 15, 24, tzinfo=UTC)),
        ({"object": "event", "site_id": 42, "extra": [1, {"x": None}]},
         datetime(2020, 8, 21, 15, 24, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_every_published_event_shape_reads(fields: dict[str, object], expected: datetime) -> None:
    """ISO created_at (Z, milliseconds, offsets), slug and mixed-case ids, extra fields read."""
    event = {**GOOD, **fields}
    for got in (read(event, Event), read(page(GOOD, event), EventPage).data[1]):
        assert got.id == event["id"]
        assert got.created_at == expected
        assert got.created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"has_more": False, "url": "/"}, "$.data: missing"),
        ({"data": [GOOD], "url": "/"}, "$.has_more: missing"),
        ({"data": None, "has_more": False}, "$.data:"),
        ({"data": [GOOD], "has_more": None}, "$.has_more:"),
        (page(GOOD, GOOD, GOOD, {"name": "n", "created_at": "2020-08-21 15:24:00"}),
         "$.data[3].id: missing"),
        (page(GOOD, GOOD, GOOD, {"id": "D", "created_at": "2020-08-21 15:24:00"}),
         "$.data[3].name: missing"),
        (page(GOOD, GOOD, GOOD, {"id": "D", "name": "n", "currency": None}),
         "$.data[3].created_at: missing"),
        (page(GOOD, GOOD, GOOD, {"id": "D", "name": "n"}), "$.data[3].created_at: missing"),
    ],
)  # fmt: skip
def test_what_cannot_be_used_is_a_decode_error_naming_the_path(body: object, path: str) -> None:
    """No data, no has_more, or an event without id, name or created_at names the path."""
    assert path in refused(body, EventPage).message


# --- hostile bodies: only typed errors ---------------------------------------------------


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


DEPTHS = [500, 900, 990, 1100, 100_000]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("into", [Event, EventPage, DeletedEvent])
def test_deep_nesting_is_a_decode_error(depth: int, into: type[Any]) -> None:
    """A deeply nested body, or a deep value in any field, is a ResponseDecodeError."""
    deep = nested(depth).decode()
    bodies = [
        nested(depth).decode(),
        f'{{"x": {deep}}}',
        f'{{"id": {deep}, "name": "n", "created_at": "2020-08-21 15:24:00"}}',
        f'{{"id": "A", "name": "n", "created_at": {deep}}}',
        f'{{"id": "A", "name": "n", "currency": {deep}, "created_at": "2020-08-21 15:24:00"}}',
        f'{{"has_more": false, "data": {deep}}}',
        f'{{"has_more": false, "data": [{deep}]}}',
        f'{{"has_more": {deep}, "data": []}}',
        f'{{"has_more": false, "data": [], "url": {deep}}}',
    ]
    for body in bodies:
        result = outcome_of(body.encode(), into)
        assert isinstance(result, (into, ResponseDecodeError))
        assert "\n" not in str(result)


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:30:00+23:59",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999-23:59",
        "2020-02-30 00:00:00",
        "2020-08-21 25:24:00",
        "15:24:00",
        "2020-08-21T",
        "",
        "Z",
        "2020-08-21 15:24:00Z+01:00",
        "2020-08-21T15:24:00+99:00",
        "\ud800" * 19,
        "2020-08-21 15:24:0\ud800",
        "\uff12\uff10\uff12\uff10-08-21 15:24:00",  # full-width digits
        "2020-08-21 15:24:00" + "0" * 100_000,
    ],
)
def test_bad_timestamps_are_decode_errors(stamp: str) -> None:
    """A timestamp out of range after its offset, or malformed, names created_at."""
    event = {**GOOD, "created_at": stamp}
    # orjson refuses a lone surrogate anywhere as invalid JSON; the stdlib reader names the field.
    with pytest.raises(ResponseDecodeError, match=r"\$\.created_at|not valid JSON"):
        read(event, Event)
    with pytest.raises(ResponseDecodeError, match=r"\$\.data\[1\]\.created_at|not valid JSON"):
        read(page(GOOD, event), EventPage)


@pytest.mark.parametrize(
    "number",
    [b"9" * 5000, b"-" + b"9" * 5000, b"9" * 4000, b"1e400", b"-1e400", b"1" + b"0" * 400,
     b"NaN", b"Infinity", b"1e-400", b"18446744073709551616"],
)  # fmt: skip
def test_numbers_of_any_size_are_decode_errors_not_crashes(number: bytes) -> None:
    """A number of any size in any field ends as a ResponseDecodeError."""
    for field in ("id", "name", "currency", "created_at"):
        body = json.dumps({**GOOD, field: "?"}).encode().replace(b'"?"', number)
        refused(body, Event)
        refused(b'{"has_more": false, "data": [' + body + b"]}", EventPage)
    refused(b'{"id": "A", "deleted": ' + number + b"}", DeletedEvent)
    refused(b'{"has_more": ' + number + b', "data": []}', EventPage)


@pytest.mark.parametrize(
    "body",
    [b'{"id": "\xff", "name": "n", "created_at": "2020-08-21 15:24:00"}',
     b'{"id": "A", "name": "\xc3", "created_at": "2020-08-21 15:24:00"}',
     b"\xff\xfe\x00\x00", b"\x80", b'{"has_more": false, "data": [], "url": "\xfe"}'],
)  # fmt: skip
def test_invalid_utf8_is_a_decode_error(body: bytes) -> None:
    """A body that is not valid UTF-8 is a ResponseDecodeError."""
    refused(body, Event)
    refused(body, EventPage)


SURROGATE_EVENTS = [
    (b'{"id": "\\ud800", "name": "n", "created_at": "2020-08-21 15:24:00"}', "id"),
    (b'{"id": "A\\udfffB", "name": "n", "created_at": "2020-08-21 15:24:00"}', "id"),
    (b'{"id": "A", "name": "caf\\u00e9 \\udc80", "created_at": "2020-08-21 15:24:00"}', "name"),
    (b'{"id": "A", "name": "\xed\xa0\x80", "created_at": "2020-08-21 15:24:00"}', "name"),
]


@pytest.mark.parametrize(("event", "field"), SURROGATE_EVENTS)
def test_a_lone_surrogate_in_an_id_or_name_is_refused_naming_the_field(
    event: bytes, field: str
) -> None:
    """An id or name holding a lone surrogate never leaves the reader: the field is named."""
    for body, into, path in (
        (event, Event, f"$.{field}"),
        (b'{"has_more": true, "data": [' + event + b"]}", EventPage, f"$.data[0].{field}"),
        (
            b'{"has_more": true, "data": [{"id": "Z", "name": "z", "created_at": '
            b'"2020-08-21 15:24:00"}, ' + event + b"]}",
            EventPage,
            f"$.data[1].{field}",
        ),
    ):
        message = refused(body, into).message
        # orjson refuses the whole body as JSON; the stdlib reader names the field.
        assert path in message or "not valid JSON" in message


def test_a_lone_surrogate_in_a_deleted_id_is_refused() -> None:
    """A delete answer whose id holds a lone surrogate is a ResponseDecodeError."""
    refused(b'{"id": "\\ud800", "deleted": true}', DeletedEvent)


def test_a_valid_surrogate_pair_is_kept() -> None:
    """An escaped surrogate pair is one real character and reads as such."""
    body = b'{"id": "A", "name": "\\ud83d\\ude00", "created_at": "2020-08-21 15:24:00"}'
    assert read(body, Event).name == "\U0001f600"


@pytest.mark.parametrize(
    "body", [b"[]", b"[1]", b"5", b'"text"', b"null", b"true", b"", b"   ", b"\x00"]
)
@pytest.mark.parametrize("into", [Event, EventPage, DeletedEvent])
def test_non_object_json_is_a_decode_error(body: bytes, into: type[Any]) -> None:
    """A body that is not a JSON object is a ResponseDecodeError."""
    refused(body, into)


# --- error answers ------------------------------------------------------------------------

ERROR_BODIES = [
    nested(100_000),
    nested(990),
    b'{"error": ' + nested(100_000) + b"}",
    b'{"error": ' + nested(900) + b"}",
    b'{"errors": {"name": ' + nested(100_000) + b"}}",
    b'{"errors": {"name": ' + nested(900) + b"}}",
    b'{"errors": {"name": [' + nested(900) + b"]}}",
    b'{"errors": {"name": [' + b"9" * 4000 + b"]}}",
    b'{"errors": {"name": [' + b"9" * 5000 + b"]}}",
    b'{"errors": {"name": [1e400, NaN, null, true, {"a": 1}]}}',
    b'{"error": "\\ud800 broke\\nover\\rlines\\tand\\u2028more"}',
    b'{"errors": {"na\\udc00me": ["bad\\nvalue \\ud800"]}}',
    b'{"errors": [1, 2]}',
    b'{"error": 5, "errors": "x"}',
    b'{"error": "' + b"x" * 100_000 + b'"}',
    b'{"errors": {' + b",".join(b'"f%d": ["m"]' % i for i in range(5000)) + b"}}",
    b"\xff\xfe\xed\xa0\x80",
    b"<html>\n<body>\r\n502\tBad Gateway</body></html>",
    b"",
]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 429, 500, 502, 418])
@pytest.mark.parametrize("body", ERROR_BODIES, ids=range(len(ERROR_BODIES)))
def test_error_for_never_raises_and_keeps_messages_on_one_line(status: int, body: bytes) -> None:
    """error_for turns any body into its typed error, with a short one-line message."""
    error = proto.error_for(
        proto.Answer(status, {"Retry-After": "1e308"}, body),
        method="GET",
        url="u",
        operation=proto.Operation.LIST,
        now=0,
    )
    assert isinstance(error, APIStatusError)
    assert error.status == status
    for text in (error.message, str(error)):
        assert text.isprintable()
        text.encode("utf-8")  # no lone surrogate: it can be printed and logged
        assert len(text) < 2000


# --- the readers agree --------------------------------------------------------------------

texts = st.one_of(
    st.sampled_from(["A", "7E2TJKBV", "signed-up", "café", "\ud800", "a\udfffb", ""]),
    st.text(max_size=6),
)
stamps = st.one_of(
    st.sampled_from(
        ["2020-08-21 15:24:00", "2023-11-07T05:31:56Z", "2023-11-07T05:31:56.250Z",
         "2023-11-07T07:31:56+02:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
         "2020-02-30 00:00:00", "2020-08-21 15:24:00+01:00", "2020-08-21 15:24", "yesterday"]
    ),
    st.text(max_size=25),
)  # fmt: skip
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4)
)
values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
MISSING = object()
currencies = st.one_of(st.none(), st.sampled_from([*Currency, "doubloon", "\ud800"]), values)
events = st.fixed_dictionaries(
    {
        "id": st.one_of(texts, values, st.just(MISSING)),
        "name": st.one_of(texts, values, st.just(MISSING)),
        "currency": st.one_of(currencies, st.just(MISSING)),
        "created_at": st.one_of(stamps, values, st.just(MISSING)),
        "site_id": st.one_of(values, st.just(MISSING)),
    }
).map(lambda fields: {k: v for k, v in fields.items() if v is not MISSING})
items = st.one_of(events, events, events, values)


def outcome(read_one: Callable[[], object]) -> object:
    try:
        return read_one()
    except (KeyError, TypeError, ValueError) as error:
        return type(error)


@settings(max_examples=300, deadline=None)
@given(item=items)
def test_the_three_readers_agree(item: object) -> None:
    """One event, a page of events, and the problem finder accept and refuse alike."""
    alone = outcome(lambda: conv.structure_event(item))
    first = outcome(lambda: conv.structure_event_list([item, GOOD])[0])
    later = outcome(lambda: conv.structure_event_list([GOOD, GOOD, item])[2])
    problem = proto.locate_problem(item, Event)
    if isinstance(alone, Event):
        assert first == later == alone
        assert alone.created_at.utcoffset() == timedelta(0)
        assert problem == ""
    else:
        assert not isinstance(first, Event)
        assert not isinstance(later, Event)
        assert problem.startswith("$")
        assert "\n" not in problem


@settings(max_examples=200, deadline=None)
@given(data=values, into=st.sampled_from([Event, EventPage, DeletedEvent]))
def test_locate_problem_never_raises(data: object, into: type[Any]) -> None:
    """locate_problem describes any JSON value for any answer type without raising."""
    assert isinstance(proto.locate_problem(data, into), str)
