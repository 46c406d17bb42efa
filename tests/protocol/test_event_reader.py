"""One reader of events: a page reads as its events read one by one, in every accepted shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fathom_events import Currency, Event, EventPage, ResponseDecodeError
from fathom_events import _converter as conv
from fathom_events import _protocol as proto

UTC = timezone.utc
FIELDS = ("id", "name", "currency", "created_at")
KNOWN_CURRENCIES = {member.value for member in Currency}

# --- events in every accepted shape, each with the Event it must read as -----------------

texts = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=10),
    st.text(max_size=10),  # any text: accents, emoji, astral planes; never a lone surrogate
)
# Naive: the zone is drawn apart. Years 1 and 9999 may leave the calendar once in UTC.
moments = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))  # noqa: DTZ001
offsets = st.one_of(
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00"]),
    st.builds(
        lambda sign, minutes: f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
        st.sampled_from("+-"),
        st.integers(0, 23 * 60 + 59),
    ),
)


def _offset(zone: str) -> timedelta:
    if zone in {"", "Z", "z"}:
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    return sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))


@st.composite
def stamps(draw: st.DrawFn) -> tuple[str, datetime]:
    """A ``created_at`` in either documented form (and ISO's variants), and its UTC value."""
    moment = draw(moments)
    digits = draw(st.sampled_from([0, 3, 6]))  # none, milliseconds, microseconds
    unit = 10 ** (6 - digits)
    moment = moment.replace(microsecond=moment.microsecond // unit * unit)
    zone = draw(offsets)
    separator = draw(st.sampled_from([" ", "T"]))
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{separator}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    expected = moment.replace(tzinfo=timezone(_offset(zone))).astimezone(UTC)
    return text + zone, expected


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
extra_fields = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key not in FIELDS), json_values, max_size=3
)
MISSING = object()
currencies = st.one_of(
    st.just(MISSING),  # the older reference leaves it out
    st.none(),
    st.sampled_from(sorted(KNOWN_CURRENCIES)),
    texts.filter(lambda text: text not in KNOWN_CURRENCIES),  # a currency Fathom adds later
)


@st.composite
def good_events(draw: st.DrawFn) -> tuple[dict[str, Any], Event]:
    """An event as Fathom may send it, in any accepted shape, and the Event it reads as."""
    event_id, name, currency = draw(texts), draw(texts), draw(currencies)
    stamp, created_at = draw(stamps())
    item: dict[str, Any] = {**draw(extra_fields), "id": event_id, "name": name}
    if currency is not MISSING:
        item["currency"] = currency
    item["created_at"] = stamp
    if draw(st.booleans()):  # key order is not meaning
        item = dict(reversed(list(item.items())))
    known = None if currency is MISSING else currency
    assert known is None or isinstance(known, str)
    read_as = Currency(known) if known in KNOWN_CURRENCIES else known
    return item, Event(event_id, name, read_as, created_at)


# --- and events that must be refused ----------------------------------------------------

wrong_types = st.one_of(
    json_scalars.filter(lambda value: not isinstance(value, str)),
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=2), json_scalars, max_size=2),
)
bad_stamps = st.sampled_from(
    ["yesterday", "", "2020-02-30 00:00:00", "2020-08-21 25:00:00", "2020-08-21 15:24",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2020-08-21 15:24:00 UTC"]
)  # fmt: skip


@st.composite
def bad_events(draw: st.DrawFn, *, surrogates: bool = True) -> dict[str, Any]:
    """A good event with one field broken: missing, of the wrong type, or an unusable value."""
    item, _ = draw(good_events())
    field = draw(st.sampled_from(FIELDS))
    fault = draw(st.sampled_from(["missing", "type", "value"]))
    if fault == "missing" and field != "currency":  # currency may be left out
        del item[field]
    elif fault == "value" and field == "created_at":
        item[field] = draw(bad_stamps)
    elif fault == "value" and surrogates:
        item[field] = draw(st.sampled_from(["\ud800", "a\udfffb", "\udc00-\ud800"]))
    else:
        # Any non-string, but a currency may be null.
        item[field] = draw(wrong_types.filter(lambda v: field != "currency" or v is not None))
    return item


def outcome(read: Callable[[], object]) -> object:
    """What reading gives: the value, or the error's type and message."""
    try:
        return read()
    except (KeyError, TypeError, ValueError) as error:
        return type(error), str(error)


@settings(max_examples=300, deadline=None)
@given(event=good_events())
def test_every_accepted_shape_reads_as_the_event_it_means(
    event: tuple[dict[str, Any], Event],
) -> None:
    """Any accepted event reads as Event(...) would build it: UTC time, currency known or kept."""
    item, expected = event
    read = conv.read_event(item)
    assert read == expected
    assert type(read.currency) is type(expected.currency)
    assert read.created_at.utcoffset() == timedelta(0)
    assert read.created_at == conv.parse_timestamp(item["created_at"])  # quick way == general


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(
        st.one_of(good_events().map(lambda pair: pair[0]), bad_events(), json_values), max_size=6
    )
)
def test_a_list_reads_as_its_events_read_one_by_one(items: list[object]) -> None:
    """Reading a list gives each event's reading, or the first bad event's very error."""
    one_by_one = outcome(lambda: [conv.structure_event(item) for item in items])
    assert outcome(lambda: conv.structure_event_list(items)) == one_by_one


def decoded(body: object, into: type[Any]) -> object:
    """What decode gives for ``body``: the value, or the ResponseDecodeError's message."""
    answer = proto.Answer(200, {}, json.dumps(body).encode())
    try:
        return proto.decode(answer, into, method="GET", url="https://api.example.test/v1/x")
    except ResponseDecodeError as error:
        return error.message


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(good_events().map(lambda pair: pair[0]), max_size=5),
    bad=st.none() | st.tuples(st.integers(0, 5), bad_events(surrogates=False)),
)
def test_a_page_decodes_as_its_events_decode_one_by_one(
    events: list[dict[str, Any]], bad: tuple[int, dict[str, Any]] | None
) -> None:
    """A page's events are each event's decoding; a bad one gives its own message, at its place."""
    if bad is not None:
        events.insert(min(bad[0], len(events)), bad[1])
    page = decoded({"data": events, "has_more": False, "url": "/v1/x"}, EventPage)
    singles = [decoded(item, Event) for item in events]
    first_bad = next((i for i, one in enumerate(singles) if isinstance(one, str)), None)
    if first_bad is None:
        assert isinstance(page, EventPage)
        assert page.data == singles
        return
    message = singles[first_bad]
    assert isinstance(message, str)
    prefix = "the answer is not a valid Event: $"
    assert message.startswith(prefix)
    at_its_place = f"the answer is not a valid EventPage: $.data[{first_bad}]"
    assert page == at_its_place + message[len(prefix) :]
