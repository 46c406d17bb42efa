"""The library's private cattrs converter and JSON codec.

Never the global converter: a user's own cattrs hooks must not change how we
read Fathom's answers, and ours must not leak into theirs.

:func:`configure_converter` registers, on the converter it is given:

* ``str`` and ``bool``: strict structure hooks. cattrs would turn ``null``
  into ``"None"`` and ``"false"`` into ``True``; an answer of the wrong shape
  must fail instead. A string holding a lone surrogate (``"\\ud800"``) is
  refused: it is not text, and an id holding one could never be sent back.
* ``datetime``: parses ``"YYYY-MM-DD HH:MM:SS"`` (the current reference) and
  ISO 8601 with ``Z`` or an offset (the older reference); a naive value is UTC,
  an aware one is converted to UTC (a value that leaves the calendar once
  converted, such as year 1 with a positive offset, is refused).
* ``Currency | str | None``: a known value becomes the enum member, an unknown
  string is kept as it is, ``null`` (or no ``currency`` key at all, as in the
  older reference) is ``None``.
* ``list[Event]``: requires a JSON array.
* :class:`~fathom_events.types.Event` and ``EventPage``: hand-written hooks
  that apply the field hooks above inline, in field order (a page of 100
  events is the hot path of every listing: one call per event instead of
  five). Unknown keys are ignored; the first bad field raises, unwrapped.
  A page's ``url`` may be missing or not a string (one published example has
  an array): the page is kept and ``url`` is the request's own path.
  :data:`OPTIONAL_FIELDS` and :data:`UNCHECKED_FIELDS` say the same for the
  error path, which names the first bad field.
* ``DeletedEvent``: a generated dict hook without detailed validation (we
  wrap the first error ourselves) that ignores unknown keys.
* The private request bodies: unstructured with fields left at ``None``
  omitted, so an update sends only what the caller gave.

The JSON codec is orjson when it is installed (the ``speedups`` extra) and the
standard library otherwise; both give the same values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .types import Currency, DeletedEvent, Event, EventPage

try:  # pragma: no cover - which branch runs depends on the installed extras
    import orjson

    json_loads: Callable[[bytes | str], Any] = orjson.loads

    def json_dumps(value: Any) -> bytes:
        # Typed through a variable, not a cast: mypy sees orjson's types only where it
        # is installed, and a cast would be redundant there and needed elsewhere.
        dumped: bytes = orjson.dumps(value)
        return dumped

except ImportError:  # pragma: no cover
    json_loads = json.loads

    def json_dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


__all__ = [
    "OPTIONAL_FIELDS",
    "UNCHECKED_FIELDS",
    "CreateEventBody",
    "UpdateEventBody",
    "configure_converter",
    "converter",
    "describe",
    "json_loads",
]


@attrs.frozen
class CreateEventBody:
    """The JSON body of a create: a name, and a currency only when given."""

    name: str
    currency: Currency | None = None


@attrs.frozen
class UpdateEventBody:
    """The JSON body of an update: only the fields the caller gave."""

    name: str | None = None
    currency: Currency | None = None


_CURRENCY_FIELD = Currency | str | None
_UTC = timezone.utc

#: Fields an answer may leave out: the older reference shows events without ``currency``
#: (read as None), and a page without a usable ``url`` keeps the request's path.
OPTIONAL_FIELDS: Final = frozenset({(Event, "currency"), (EventPage, "url")})
#: Fields whose value never makes an answer unreadable (a page's ``url`` was once an array).
UNCHECKED_FIELDS: Final = frozenset({(EventPage, "url")})

_SHOWN_CHARS = 60


def describe(value: object) -> str:
    """A short description of a JSON value for an error message; it never raises.

    Only the start of a string is shown, and no container is ever printed: a
    value nested 100,000 deep or ten megabytes long costs nothing to describe.
    """
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    kind = type(value).__name__
    if isinstance(value, str):
        return f"{kind} {value[:_SHOWN_CHARS]!r}"
    if isinstance(value, (list, dict)):
        return f"{kind} of length {len(value)}"
    if isinstance(value, int) and value.bit_length() > 64:  # its digits could be thousands
        return f"{kind} of {value.bit_length()} bits"
    if isinstance(value, (int, float)):
        return f"{kind} {value!r}"
    return kind


def _is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode text (no lone surrogate), cheaply when ASCII."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _structure_str(value: object, _: object = None) -> str:
    if type(value) is str:
        if _is_text(value):
            return value
        raise ValueError(f"holds a lone surrogate, which is not text: {describe(value)}")
    raise TypeError(f"expected a string, got {describe(value)}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected true or false, got {describe(value)}")


_fromisoformat = datetime.fromisoformat
_UTC_SUFFIX = "+00:00"
_PLAIN_LENGTH = len("2020-08-21 15:24:00")


def parse_timestamp(value: object, _: object = None) -> datetime:
    """Read ``created_at`` in either documented form, always as aware UTC."""
    if type(value) is not str:
        raise TypeError(f"expected a timestamp string, got {describe(value)}")
    if len(value) == _PLAIN_LENGTH and value[10] == " ":
        # The current reference's "YYYY-MM-DD HH:MM:SS", read as UTC in one C call:
        # appending the offset is several times cheaper than ``.replace(tzinfo=...)``
        # afterwards. Anything else of that shape (a zone already given, no timestamp at
        # all) fails here or comes back naive, and is read the general way below.
        try:
            parsed = _fromisoformat(value + _UTC_SUFFIX)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    text = value[:-1] + _UTC_SUFFIX if value.endswith(("Z", "z")) else value
    try:
        parsed = _fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a timestamp: {value[:_SHOWN_CHARS]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=_UTC)
    try:
        return parsed.astimezone(_UTC)
    except OverflowError:  # year 1 or 9999 with an offset: no such time in UTC
        raise ValueError(f"out of range once in UTC: {value[:_SHOWN_CHARS]!r}") from None


_CURRENCIES = {member.value: member for member in Currency}


def _structure_currency(value: object, _: object) -> Currency | str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"expected a currency string or null, got {describe(value)}")
    known = _CURRENCIES.get(value)
    return known if known is not None else _structure_str(value)


def _can_skip_init(cls: type) -> bool:
    """Whether ``cls.__init__`` only stores its arguments (no validator, converter or hook)."""
    return (
        "__slots__" in cls.__dict__
        and not hasattr(cls, "__attrs_pre_init__")
        and not hasattr(cls, "__attrs_post_init__")
        and all(f.validator is None and f.converter is None for f in attrs.fields(cls))
    )


# Event's slot setters, or nothing if its __init__ does more than store (see below).
_EVENT_SLOTS = (
    tuple(Event.__dict__[field.name].__set__ for field in attrs.fields(Event))
    if _can_skip_init(Event)
    else ()
)


def _event_builder() -> Callable[[str, str, Currency | str | None, datetime], Event]:
    """The cheapest way to make an ``Event`` that ``Event(...)`` would make identically.

    ``Event`` is frozen and slotted, and its ``__init__`` only stores the four
    values; setting the slots directly skips that call, which is a third of the
    cost of reading an event. Should ``Event`` ever gain a validator, converter
    or init hook, this falls back to calling it.
    """
    if not _EVENT_SLOTS:  # pragma: no cover - guards a future change to Event
        return Event
    new = object.__new__
    set_id, set_name, set_currency, set_created_at = _EVENT_SLOTS

    def build(id: str, name: str, currency: Currency | str | None, created_at: datetime) -> Event:
        event: Event = new(Event)
        set_id(event, id)
        set_name(event, name)
        set_currency(event, currency)
        set_created_at(event, created_at)
        return event

    return build


_build_event = _event_builder()


def _read_event(item: Any) -> Event:
    # The field hooks of str, str, Currency | str | None and datetime, inlined.
    event_id = item["id"]
    if type(event_id) is not str or not event_id.isascii():
        _structure_str(event_id)
    name = item["name"]
    if type(name) is not str or not name.isascii():
        _structure_str(name)
    currency = item.get("currency")  # the older reference leaves it out
    if currency is not None:
        currency = _structure_currency(currency, _CURRENCY_FIELD)
    return _build_event(event_id, name, currency, parse_timestamp(item["created_at"]))


def structure_event(value: Any, _: object = None) -> Event:
    """Read one event answer; the first bad field raises."""
    return _read_event(value)


def structure_event_list(value: object, _: object = None) -> list[Event]:
    """Read a JSON array of events: ``_read_event`` for each, unrolled into one loop.

    A page of 100 is what every listing reads, so the per-event calls (to read
    the event, parse its timestamp and build it) are written out here, for the
    common case only: any surprise (a wrong type, a missing key, a non-ASCII
    id or name, an unusual timestamp that fails the quick parse) leaves the
    loop, and the whole list is read again by ``_read_event``, which applies
    every rule and raises the precise error. Checks therefore cost nothing
    per field unless they fail.
    """
    if type(value) is not list:
        raise TypeError(f"expected a list of events, got {describe(value)}")
    if not _EVENT_SLOTS:  # pragma: no cover - see _event_builder
        return [_read_event(item) for item in value]
    new, fromisoformat, suffix = object.__new__, _fromisoformat, _UTC_SUFFIX
    set_id, set_name, set_currency, set_created_at = _EVENT_SLOTS
    events: list[Event] = []
    append = events.append
    try:
        for item in value:
            # ``.isascii()`` is the type check too: only a str has it among JSON's values.
            event_id = item["id"]
            if not event_id.isascii():
                event_id.encode()  # a lone surrogate raises here
            name = item["name"]
            if not name.isascii():
                name.encode()
            currency = item.get("currency")
            if currency is not None:
                currency = _structure_currency(currency, _CURRENCY_FIELD)
            stamp = item["created_at"]
            if len(stamp) == _PLAIN_LENGTH and stamp[10] == " ":
                created_at = fromisoformat(stamp + suffix)
            else:
                created_at = parse_timestamp(stamp)
            event = new(Event)
            set_id(event, event_id)
            set_name(event, name)
            set_currency(event, currency)
            set_created_at(event, created_at)
            append(event)
    except (AttributeError, KeyError, TypeError, ValueError):
        # Off the common path: the careful reader gives the same events or the precise error.
        return [_read_event(item) for item in value]
    return events


def _request_path(url: str) -> str:
    """The path of the request's URL (base URL path plus request path), without the query."""
    try:
        return urlsplit(url).path
    except ValueError:  # pragma: no cover - our own URLs always split
        return ""


def structure_event_page(value: Any, _: object = None, request_url: str = "") -> EventPage:
    """Read a list answer: ``data``, ``has_more`` and ``url``, in that order.

    ``url`` is the answer's own when it is a string, otherwise the path of
    ``request_url`` (the URL the page was asked for): the events are never
    lost for it.
    """
    data = structure_event_list(value["data"])
    has_more = value["has_more"]
    if type(has_more) is not bool:
        _structure_bool(has_more, bool)
    url = value.get("url")
    if type(url) is not str:
        url = _request_path(request_url)
    return EventPage(data, has_more, url)


def configure_converter(target: cattrs.Converter) -> None:
    """Register every hook listed in this module's docstring on ``target``."""
    target.register_structure_hook(str, _structure_str)
    target.register_structure_hook(bool, _structure_bool)
    target.register_structure_hook(datetime, parse_timestamp)
    target.register_structure_hook_func(lambda t: t == _CURRENCY_FIELD, _structure_currency)
    attrs.resolve_types(DeletedEvent)
    target.register_structure_hook(DeletedEvent, make_dict_structure_fn(DeletedEvent, target))
    target.register_structure_hook(Event, structure_event)
    target.register_structure_hook_func(lambda t: t == list[Event], structure_event_list)
    target.register_structure_hook(EventPage, structure_event_page)
    for body in (CreateEventBody, UpdateEventBody):
        attrs.resolve_types(body)
        target.register_unstructure_hook(
            body,
            make_dict_unstructure_fn(
                body,
                target,
                _cattrs_omit_if_default=True,
                currency=override(unstruct_hook=lambda c: None if c is None else c.value),
            ),
        )


converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
configure_converter(converter)
