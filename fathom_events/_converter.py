"""The library's private cattrs converter and JSON codec.

Never the global converter: a user's own cattrs hooks must not change how we
read Fathom's answers, and ours must not leak into theirs.

:func:`configure_converter` registers, on the converter it is given:

* ``str`` and ``bool``: strict structure hooks. cattrs would turn ``null``
  into ``"None"`` and ``"false"`` into ``True``; an answer of the wrong shape
  must fail instead.
* ``datetime``: parses ``"YYYY-MM-DD HH:MM:SS"`` (the current reference) and
  ISO 8601 with ``Z`` or an offset (the older reference); a naive value is UTC,
  an aware one is converted to UTC.
* ``Currency | str | None``: a known value becomes the enum member, an unknown
  string is kept as it is, ``null`` is ``None``.
* ``list[Event]``: requires a JSON array.
* :class:`~fathom_events.types.Event` and ``EventPage``: hand-written hooks
  that apply the field hooks above inline, in field order (a page of 100
  events is the hot path of every listing: one call per event instead of
  five). Unknown keys are ignored; the first bad field raises, unwrapped.
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
from typing import Any

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


__all__ = ["CreateEventBody", "UpdateEventBody", "configure_converter", "converter", "json_loads"]


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


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.60}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected true or false, got {type(value).__name__} {value!r:.60}")


_fromisoformat = datetime.fromisoformat
_UTC_SUFFIX = "+00:00"
_PLAIN_LENGTH = len("2020-08-21 15:24:00")


def parse_timestamp(value: object, _: object = None) -> datetime:
    """Read ``created_at`` in either documented form, always as aware UTC."""
    if type(value) is not str:
        raise TypeError(f"expected a timestamp string, got {type(value).__name__} {value!r:.60}")
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
        raise ValueError(f"not a timestamp: {value!r:.60}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC)


_CURRENCIES = {member.value: member for member in Currency}


def _structure_currency(value: object, _: object) -> Currency | str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"expected a currency string or null, got {value!r:.60}")
    return _CURRENCIES.get(value, value)


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
    if type(event_id) is not str:
        _structure_str(event_id, str)
    name = item["name"]
    if type(name) is not str:
        _structure_str(name, str)
    currency = item["currency"]
    if currency is not None:
        currency = _structure_currency(currency, _CURRENCY_FIELD)
    return _build_event(event_id, name, currency, parse_timestamp(item["created_at"]))


def structure_event(value: Any, _: object = None) -> Event:
    """Read one event answer; the first bad field raises."""
    return _read_event(value)


def structure_event_list(value: object, _: object = None) -> list[Event]:  # noqa: C901
    """Read a JSON array of events: ``_read_event`` for each, unrolled into one loop.

    A page of 100 is what every listing reads, so the per-event calls (to read
    the event, parse its timestamp and build it) are written out here; a
    timestamp not in the plain form, and every error, go through the same
    functions as one event does, so the values and messages are the same.
    """
    if type(value) is not list:
        raise TypeError(f"expected a list of events, got {type(value).__name__}")
    if not _EVENT_SLOTS:  # pragma: no cover - see _event_builder
        return [_read_event(item) for item in value]
    new, fromisoformat, suffix = object.__new__, _fromisoformat, _UTC_SUFFIX
    set_id, set_name, set_currency, set_created_at = _EVENT_SLOTS
    events: list[Event] = []
    append = events.append
    for item in value:
        event_id = item["id"]
        if type(event_id) is not str:
            _structure_str(event_id, str)
        name = item["name"]
        if type(name) is not str:
            _structure_str(name, str)
        currency = item["currency"]
        if currency is not None:
            currency = _structure_currency(currency, _CURRENCY_FIELD)
        stamp = item["created_at"]
        created_at = None
        if type(stamp) is str and len(stamp) == _PLAIN_LENGTH and stamp[10] == " ":
            try:
                created_at = fromisoformat(stamp + suffix)
            except ValueError:
                pass
            else:
                if created_at.tzinfo is None:
                    created_at = None
        if created_at is None:
            created_at = parse_timestamp(stamp)
        event = new(Event)
        set_id(event, event_id)
        set_name(event, name)
        set_currency(event, currency)
        set_created_at(event, created_at)
        append(event)
    return events


def structure_event_page(value: Any, _: object = None) -> EventPage:
    """Read a list answer: ``data``, ``has_more`` and ``url``, in that order."""
    data = structure_event_list(value["data"])
    has_more = value["has_more"]
    if type(has_more) is not bool:
        _structure_bool(has_more, bool)
    url = value["url"]
    if type(url) is not str:
        _structure_str(url, str)
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
