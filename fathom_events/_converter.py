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
* :class:`~fathom_events.types.Event` and ``EventPage``: hand-written hooks.
  One function, :func:`read_event`, reads every event (alone, or each of a
  page's): it applies the field hooks above inline, in field order, after a
  quick test of the common case (a page of 100 events is the hot path of
  every listing). Unknown keys are ignored; the first bad field raises,
  unwrapped.
  A page's ``url`` may be missing or not a string (one published example has
  an array): the page is kept and ``url`` is the request's own path.
  :data:`OPTIONAL_FIELDS` and :data:`UNCHECKED_FIELDS` say the same for the
  error path, which names the first bad field.
* :class:`~fathom_events.types.Site`, ``SitePage`` and ``TokenInfo``: hand-written
  hooks, as tolerant as the event reader. A site's ``sharing`` and
  ``timezone`` may be missing (``None``) and any string is kept; a sites page
  without a usable ``url`` keeps the request's path. The token's
  ``abilities`` must be an array of strings (the one field the client acts
  on); its ``name`` may be missing, ``version`` is an int or a string, and
  each timestamp may be missing or ``null`` (``None``) or in either form.
* ``str | None``, ``int | str | None``, ``datetime | None`` and ``list[str]``:
  strict hooks for those fields (so that the error path names a bad one).
* ``DeletedEvent``: a hand-written hook, :func:`structure_deleted`: ``id`` is
  required, a missing ``deleted`` is true, unknown keys are ignored. (A
  delete's answer without an ``id`` at all is not read here: ``_protocol``
  reads it as the event the request named, deleted.)
* The private request bodies: unstructured with fields left at ``None``
  omitted, so an update sends only what the caller gave.

The JSON codec is orjson when it is installed (the ``speedups`` extra) and the
standard library otherwise; both give the same values.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from ._checks import SHOWN_CHARS, shown
from .types import Currency, DeletedEvent, Event, EventPage, Site, SitePage, TokenInfo

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
#: (read as None), a page without a usable ``url`` keeps the request's path, and a
#: delete answer without ``deleted`` is read as deleted.
OPTIONAL_FIELDS: Final = frozenset(
    {
        (Event, "currency"),
        (EventPage, "url"),
        (SitePage, "url"),
        (Site, "sharing"),
        (Site, "timezone"),
        (DeletedEvent, "deleted"),
        *(
            (TokenInfo, field.name)
            for field in attrs.fields(TokenInfo)
            if field.name != "abilities"
        ),
    }
)
#: Fields whose value never makes an answer unreadable (a page's ``url`` was once an array).
UNCHECKED_FIELDS: Final = frozenset({(EventPage, "url"), (SitePage, "url")})


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
        raise ValueError(f"holds a lone surrogate, which is not text: {shown(value)}")
    raise TypeError(f"expected a string, got {shown(value)}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected true or false, got {shown(value)}")


_fromisoformat = datetime.fromisoformat
_UTC_SUFFIX = "+00:00"
_PLAIN_LENGTH = len("2020-08-21 15:24:00")


def parse_timestamp(value: object, _: object = None) -> datetime:
    """Read ``created_at`` in either documented form, always as aware UTC.

    The general way; the event reader first tries the common form quickly.
    """
    if type(value) is not str:
        raise TypeError(f"expected a timestamp string, got {shown(value)}")
    text = value[:-1] + _UTC_SUFFIX if value.endswith(("Z", "z")) else value
    parsed = None
    # A "Z" is UTC only at the end (replaced above); Python 3.10's fromisoformat would skip
    # one before an offset ("15:24:00Z+01:00") where 3.11 refuses it.
    if "Z" not in text and "z" not in text:
        with contextlib.suppress(ValueError):
            parsed = _fromisoformat(text)
    if parsed is None:
        raise ValueError(f"not a timestamp: {value[:SHOWN_CHARS]!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=_UTC)
    try:
        return parsed.astimezone(_UTC)
    except OverflowError:  # year 1 or 9999 with an offset: no such time in UTC
        raise ValueError(f"out of range once in UTC: {value[:SHOWN_CHARS]!r}") from None


_CURRENCIES = {member.value: member for member in Currency}


def _structure_currency(value: object, _: object = None) -> Currency | str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"expected a currency string or null, got {shown(value)}")
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


def _slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """The ``__set__`` of each field's slot, in field order: ``cls`` built without ``__init__``."""
    if not _can_skip_init(cls):  # pragma: no cover - fails at import, in every test run
        raise TypeError(f"{cls.__name__}.__init__ does more than store: read_event must call it")
    return tuple(cls.__dict__[field.name].__set__ for field in attrs.fields(cls))


_new = object.__new__
_set_id, _set_name, _set_currency, _set_created_at = _slot_setters(Event)


def read_event(item: Any) -> Event:
    """Read one event: ``id``, ``name``, ``currency``, ``created_at``; the first bad one raises.

    The one reader of events: a ``get`` or ``create`` answer and each event
    of a page are read here. Each field takes a quick test of the common case
    (ASCII text, the current reference's timestamp) and otherwise its field
    hook, which accepts the value or raises the precise error. Unknown keys
    are ignored; a missing ``currency`` (the older reference) is ``None``.

    ``Event`` is frozen and slotted, and its ``__init__`` only stores the four
    values; setting the slots directly skips that call (a page of 100 events
    reads in 58 us this way, about 78 us through ``Event(...)``; what that is
    worth on the workloads is in benchmarks/README.md, "Speed tricks, measured").
    ``tests/package/test_pinned_internals.py`` pins what this relies on, and should
    ``Event`` gain a validator, converter or init hook, this module refuses
    to import.
    """
    event_id = item["id"]
    try:  # .isascii() is the type test too: among JSON's values only a str has it
        if not event_id.isascii():
            _structure_str(event_id)
    except AttributeError:
        _structure_str(event_id)  # not a string: raises
    name = item["name"]
    try:
        if not name.isascii():
            _structure_str(name)
    except AttributeError:
        _structure_str(name)
    currency = item.get("currency")
    if currency is not None:
        currency = _structure_currency(currency)
    stamp = item["created_at"]
    # "YYYY-MM-DD HH:MM:SS" read as UTC in one C call: appending the offset is several
    # times cheaper than ``.replace(tzinfo=...)`` afterwards. Any other value (another
    # form, a zone already given, not a string) fails the quick test or the parse here,
    # and is read, or refused, the general way.
    created_at = None
    try:
        if len(stamp) == _PLAIN_LENGTH and stamp[10] == " ":
            created_at = _fromisoformat(stamp + _UTC_SUFFIX)
    except (LookupError, TypeError, ValueError):
        pass
    if created_at is None:
        created_at = parse_timestamp(stamp)
    # Kept, it pays: W3 +speedups 0.96x -> 0.91x of raw aiohttp with Event(...) instead.
    event: Event = _new(Event)
    _set_id(event, event_id)
    _set_name(event, name)
    _set_currency(event, currency)
    _set_created_at(event, created_at)
    return event


def structure_event(value: Any, _: object = None) -> Event:
    """The converter's hook for ``Event``: :func:`read_event`."""
    return read_event(value)


def structure_event_list(value: object, _: object = None) -> list[Event]:
    """Read a JSON array of events with :func:`read_event`; the first bad event raises."""
    if type(value) is not list:
        raise TypeError(f"expected a list of events, got {shown(value)}")
    return [read_event(item) for item in value]


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


def _optional_str(value: object, _: object = None) -> str | None:
    return None if value is None else _structure_str(value)


def _optional_timestamp(value: object, _: object = None) -> datetime | None:
    return None if value is None else parse_timestamp(value)


def _structure_version(value: object, _: object = None) -> int | str | None:
    if value is None or type(value) is int:
        return value
    if type(value) is str:
        return _structure_str(value)
    raise TypeError(f"expected an int, a string or null, got {shown(value)}")


def _structure_str_list(value: object, _: object = None) -> list[str]:
    if type(value) is not list:
        raise TypeError(f"expected a list of strings, got {shown(value)}")
    return [_structure_str(item) for item in value]


def read_site(item: Any) -> Site:
    """Read one site; unknown keys are ignored, a missing ``sharing``/``timezone`` is None."""
    return Site(
        _structure_str(item["id"]),
        _structure_str(item["name"]),
        _optional_str(item.get("sharing")),
        parse_timestamp(item["created_at"]),
        _optional_str(item.get("timezone")),
    )


def structure_site(value: Any, _: object = None) -> Site:
    """The converter's hook for ``Site``: :func:`read_site`."""
    return read_site(value)


def structure_site_list(value: object, _: object = None) -> list[Site]:
    """Read a JSON array of sites; the first bad site raises."""
    if type(value) is not list:
        raise TypeError(f"expected a list of sites, got {shown(value)}")
    return [read_site(item) for item in value]


def structure_site_page(value: Any, _: object = None, request_url: str = "") -> SitePage:
    """Read a sites list answer as :func:`structure_event_page` reads an events list."""
    data = structure_site_list(value["data"])
    has_more = _structure_bool(value["has_more"], bool)
    url = value.get("url")
    if type(url) is not str:
        url = _request_path(request_url)
    return SitePage(data, has_more, url)


def structure_token(value: Any, _: object = None) -> TokenInfo:
    """Read a ``/token`` answer; only ``abilities`` is required."""
    return TokenInfo(
        _optional_str(value.get("name")),
        _structure_version(value.get("version")),
        tuple(_structure_str_list(value["abilities"])),
        _optional_timestamp(value.get("last_used_at")),
        _optional_timestamp(value.get("expires_at")),
        _optional_timestamp(value.get("created_at")),
        _optional_timestamp(value.get("updated_at")),
    )


def structure_deleted(value: Any, _: object = None) -> DeletedEvent:
    """Read a delete answer that names its event: ``id``, and ``deleted`` (true if missing)."""
    return DeletedEvent(
        _structure_str(value["id"]), _structure_bool(value.get("deleted", True), bool)
    )


def configure_converter(target: cattrs.Converter) -> None:
    """Register every hook listed in this module's docstring on ``target``."""
    target.register_structure_hook(str, _structure_str)
    target.register_structure_hook(bool, _structure_bool)
    target.register_structure_hook(datetime, parse_timestamp)
    target.register_structure_hook_func(lambda t: t == _CURRENCY_FIELD, _structure_currency)
    target.register_structure_hook(DeletedEvent, structure_deleted)
    target.register_structure_hook(Event, structure_event)
    target.register_structure_hook_func(lambda t: t == list[Event], structure_event_list)
    target.register_structure_hook(EventPage, structure_event_page)
    for answer in (Site, SitePage, TokenInfo):
        attrs.resolve_types(answer)
    target.register_structure_hook(Site, structure_site)
    target.register_structure_hook_func(lambda t: t == list[Site], structure_site_list)
    target.register_structure_hook(SitePage, structure_site_page)
    target.register_structure_hook(TokenInfo, structure_token)
    target.register_structure_hook_func(lambda t: t == str | None, _optional_str)
    target.register_structure_hook_func(lambda t: t == int | str | None, _structure_version)
    target.register_structure_hook_func(lambda t: t == datetime | None, _optional_timestamp)
    target.register_structure_hook_func(
        lambda t: t in (list[str], tuple[str, ...]), _structure_str_list
    )
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
