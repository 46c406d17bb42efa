"""The Fathom Events API as data, with no I/O.

This room knows how to build each request (path, query, JSON body, after
checking the caller's input) and how to read each answer (a typed object, or a
typed error). It imports neither aiohttp nor anyio, so it is tested with plain
tables.
"""

from __future__ import annotations

import enum
import logging
import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final, Generic, TypeVar, cast
from urllib.parse import quote, unquote

import attrs

from ._checks import one_line, shown
from ._converter import (
    OPTIONAL_FIELDS,
    UNCHECKED_FIELDS,
    CreateEventBody,
    UpdateEventBody,
    converter,
    json_dumps,
    json_loads,
    structure_event_page,
    structure_site_page,
)
from .exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    ResponseDecodeError,
    ServerError,
    UnprocessableEntityError,
)
from .types import Currency, DeletedEvent, EventPage, SitePage

T = TypeVar("T")
logger = logging.getLogger("fathom_events")

MAX_NAME_LENGTH: Final = 255
MAX_PAGE_SIZE: Final = 100
EXCERPT_CHARS: Final = 200
#: The longest ``Retry-After`` taken at its word, in seconds. Fathom's limits are per
#: hour, so an honest wait is never longer; a longer one (``1e308``, a date in 2099) is
#: treated as malformed, so that no header can hold a client back for good.
MAX_RETRY_AFTER: Final = 3600.0
#: An error body nested deeper than this is kept as text in ``.body``: Fathom's own are
#: three deep, and one near the parser's limit could not be printed or pickled.
MAX_BODY_DEPTH: Final = 32


class Operation(enum.Enum):
    """What a request does, which decides whether repeating it is safe."""

    LIST = "list"
    GET = "get"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    WIPE = "wipe"


@attrs.frozen
class Request:
    """One HTTP request, ready to send: ``path`` is already percent-encoded."""

    operation: Operation
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @property
    def name(self) -> str:
        """What the call is, as ``resource.operation``: ``events.create``, ``sites.list``.

        Read from the path (``/token``, ``/sites[/S]``, ``/sites/S/events[/...]``)
        when somebody watches the call, so that building a request costs nothing more.
        """
        parts = self.path.split("/")
        return f"{parts[3] if len(parts) > 3 else parts[1]}.{self.operation.value}"

    @property
    def site_id(self) -> str | None:
        """The site the request is about, as the caller gave it (None for the token, the list)."""
        parts = self.path.split("/", 3)
        if len(parts) < 3 or parts[1] != "sites":
            return None
        site = parts[2]
        return unquote(site) if "%" in site else site

    def target(self) -> str:
        """The path and query string, relative to the base URL."""
        if not self.query:
            return self.path
        return self.path + "?" + "&".join([f"{k}={_query_value(v)}" for k, v in self.query])


@attrs.frozen
class Answer:
    """What came back: status, headers (case-insensitive lookups are the caller's) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


# --- input checks -------------------------------------------------------------------------


def check_text(field: str, value: str) -> str:
    """Text we send must be valid Unicode: a lone surrogate cannot be encoded as UTF-8."""
    if not value.isascii():  # ASCII, the common case, is always valid
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidRequestError(
                field,
                f"must be valid Unicode text; it holds a lone surrogate at position {exc.start}",
            ) from None
    return value


def check_id(field: str, value: object) -> str:
    """An id is a non-empty string of valid Unicode; any character is allowed (it is encoded)."""
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidRequestError(field, "must not be empty")
    return check_text(field, value)


#: What Fathom (a Laravel application, whose TrimStrings middleware trims every request
#: string) takes off both ends of a name: Unicode whitespace (PCRE's, which still counts
#: U+180E), and NUL, U+FEFF, U+200B and U+200E. Python's whitespace is a few characters
#: wider (U+001C..U+001F), which only makes us stricter in what we send. (A test checks
#: this literal against ``str.isspace`` and FakeFathom's trimming.)
OUTER_SPACE: Final = (
    "\x00\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\u200b\u200e"
)


def name_key(name: str) -> str:
    """``name`` as Fathom stores it, with no outer whitespace: how names are compared."""
    return name.strip(OUTER_SPACE)


def check_name(field: str, value: object) -> str:
    """A name is valid Unicode text of 1 to 255 characters, with no outer whitespace.

    Fathom trims what it is sent, so a name with leading or trailing whitespace
    would be stored other than it was given (and never match it again): it is
    refused rather than trimmed, since nothing the caller gave is altered.
    """
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, got {type(value).__name__}")
    check_text(field, value)
    stored = name_key(value)
    if not stored:
        raise InvalidRequestError(field, "must not be empty or only whitespace")
    if stored != value:
        raise InvalidRequestError(
            field,
            f"must not begin or end with whitespace (Fathom trims it, so it would be stored"
            f" as {shown(stored)}); got {shown(value)}",
        )
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidRequestError(
            field, f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
        )
    return value


_CURRENCY_VALUES = ", ".join(c.value for c in Currency)


def check_currency(field: str, value: object) -> Currency:
    """A currency is a :class:`Currency` member or one of its string values."""
    if isinstance(value, Currency):
        return value
    if isinstance(value, str):
        try:
            return Currency(value)
        except ValueError:
            pass
    raise InvalidRequestError(field, f"must be one of {_CURRENCY_VALUES}; got {shown(value)}")


def check_limit(value: object, field: str = "limit") -> int:
    """A page size is an int from 1 to 100 (not a bool, not a float)."""
    if type(value) is not int:
        raise InvalidRequestError(field, f"must be an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidRequestError(field, f"must be between 1 and {MAX_PAGE_SIZE}, got {value}")
    return value


# --- request builders ---------------------------------------------------------------------


_NEEDS_NO_ENCODING = re.compile(r"[A-Za-z0-9_~-]+").fullmatch


def _segment(value: str) -> str:
    # Every reserved character is encoded, so an id is always one segment; "." and ".."
    # are encoded too because URL normalisation would otherwise climb a level.
    if _NEEDS_NO_ENCODING(value):  # the common case (Fathom's own ids), without quote()
        return value
    if value in {".", ".."}:
        return value.replace(".", "%2E")
    return quote(value, safe="")


def _query_value(value: str) -> str:
    # As quote(value, safe="") gives it, without the call for the common case: an id, a number.
    return value if _NEEDS_NO_ENCODING(value) else quote(value, safe="")


def _events_path(site_id: object) -> str:
    return f"/sites/{_segment(check_id('site_id', site_id))}/events"


def _event_path(site_id: object, event_id: object) -> str:
    return f"{_events_path(site_id)}/{_segment(check_id('event_id', event_id))}"


def build_list(
    site_id: object,
    limit: object = None,
    starting_after: object = None,
    ending_before: object = None,
) -> Request:
    """GET one page of a site's events."""
    return _page_request(_events_path(site_id), limit, starting_after, ending_before)


def build_list_sites(
    limit: object = None, starting_after: object = None, ending_before: object = None
) -> Request:
    """GET one page of the account's sites (the cursors are site ids)."""
    return _page_request("/sites", limit, starting_after, ending_before)


def build_get_site(site_id: object) -> Request:
    """GET one site."""
    return Request(Operation.GET, "GET", f"/sites/{_segment(check_id('site_id', site_id))}")


TOKEN_REQUEST: Final = Request(Operation.GET, "GET", "/token")


def _page_request(
    path: str, limit: object, starting_after: object, ending_before: object
) -> Request:
    """GET one page of a list at ``path``, after checking the page size and cursors."""
    query: list[tuple[str, str]] = []
    if limit is not None:
        query.append(("limit", str(check_limit(limit))))
    if starting_after is not None and ending_before is not None:
        raise InvalidRequestError(
            "starting_after", "cannot be combined with ending_before: give one cursor or neither"
        )
    if starting_after is not None:
        query.append(("starting_after", check_id("starting_after", starting_after)))
    if ending_before is not None:
        query.append(("ending_before", check_id("ending_before", ending_before)))
    return Request(Operation.LIST, "GET", path, tuple(query))


def build_get(site_id: object, event_id: object) -> Request:
    """GET one event."""
    return Request(Operation.GET, "GET", _event_path(site_id, event_id))


def build_create(site_id: object, name: object, currency: object = None) -> Request:
    """POST a new event; the currency is sent only when given (the API defaults to dollar)."""
    path = _events_path(site_id)
    body = CreateEventBody(
        name=check_name("name", name),
        currency=None if currency is None else check_currency("currency", currency),
    )
    return Request(Operation.CREATE, "POST", path, body=json_dumps(converter.unstructure(body)))


def build_update(
    site_id: object, event_id: object, name: object = None, currency: object = None
) -> Request:
    """POST the fields to change, and only those."""
    path = _event_path(site_id, event_id)
    if name is None and currency is None:
        raise InvalidRequestError("name", "an update needs a name or a currency to change")
    body = UpdateEventBody(
        name=None if name is None else check_name("name", name),
        currency=None if currency is None else check_currency("currency", currency),
    )
    return Request(Operation.UPDATE, "POST", path, body=json_dumps(converter.unstructure(body)))


def build_delete(site_id: object, event_id: object) -> Request:
    """DELETE one event."""
    return Request(Operation.DELETE, "DELETE", _event_path(site_id, event_id))


def build_wipe(site_id: object, event_id: object) -> Request:
    """DELETE an event's data: the retired endpoint, which answers 410."""
    path = _event_path(site_id, event_id) + "/data"
    return Request(Operation.WIPE, "DELETE", path)


# --- reading answers ----------------------------------------------------------------------


def excerpt(body: bytes) -> str:
    """A short, printable piece of a body for an error message."""
    return one_line(body[: EXCERPT_CHARS * 4].decode("utf-8", "replace"), EXCERPT_CHARS)


#: What reading a parsed answer may raise: a wrong type, key or value. RecursionError and
#: OverflowError are here so that no answer, however built, escapes as anything but a
#: ResponseDecodeError.
_READ_ERRORS = (AttributeError, KeyError, TypeError, ValueError, OverflowError, RecursionError)


def locate_problem(data: object, into: type[Any], path: str = "$") -> str:
    """Name the first field of ``data`` that is not the documented shape, with its path.

    Only called once decoding has failed, so it may take its time. It never
    raises, whatever ``data`` holds; it returns ``""`` if it finds no fault.
    """
    if not isinstance(data, dict):
        return f"{path}: expected an object, got {shown(data)}"
    for field in attrs.fields(into):
        if (into, field.name) in UNCHECKED_FIELDS:
            continue
        where = f"{path}.{field.name}"
        if field.name not in data:
            if (into, field.name) in OPTIONAL_FIELDS:
                continue
            return f"{where}: missing"
        value = data[field.name]
        item_type: Any = getattr(field.type, "__args__", (None,))[0]
        if isinstance(value, list) and isinstance(item_type, type) and attrs.has(item_type):
            for index, item in enumerate(value):
                problem = locate_problem(item, item_type, f"{where}[{index}]")
                if problem:
                    return problem
            continue
        try:
            converter.structure(value, field.type)
        except _READ_ERRORS as exc:
            return f"{where}: {exc}"
    return ""


def _structure(data: object, into: type[T], url: str) -> T:
    if into is EventPage:  # a page without a usable url keeps the request's path
        return cast("T", structure_event_page(data, into, url))
    if into is SitePage:
        return cast("T", structure_site_page(data, into, url))
    return converter.structure(data, into)


@attrs.frozen
class Lenient(Generic[T]):
    """What a 2xx answer is read as when its type alone does not say it (a delete's).

    A JSON object holding ``key`` is read as ``into``, its shape checked. Any
    other JSON object, a JSON list, ``null``, or no body at all (none, or only
    whitespace) says only that the request succeeded, and stands for
    ``otherwise``. A body that is not JSON, or is JSON of another kind (a
    number, a string, true or false), is a :class:`ResponseDecodeError`.
    """

    into: type[T]
    key: str
    otherwise: T


def deleted_answer(event_id: str) -> Lenient[DeletedEvent]:
    """How a delete's 2xx answer is read: ``{id, object, deleted}`` as it says, or else
    the event the request named, ``event_id``, deleted.

    The reference documents the first; an API may as well answer a delete
    with ``204 No Content``, ``{}`` or ``[]``, and the event is gone all the same.
    """
    return Lenient(DeletedEvent, "id", DeletedEvent(event_id, deleted=True))


_JSON_WHITESPACE = b" \t\r\n"


def decode(answer: Answer, into: type[T] | Lenient[T], *, method: str, url: str) -> T:
    """Read a 2xx answer as ``into``, or raise :class:`ResponseDecodeError` naming the fault.

    ``into`` is the answer's type, or a :class:`Lenient` reading of it.
    ``url`` is the request's URL: a list answer without a usable ``url`` of
    its own takes that URL's path. Nothing but a value or that error comes out.
    """
    lenient: Lenient[T] | None = None
    if isinstance(into, Lenient):
        lenient, into = into, into.into
        if not answer.body.strip(_JSON_WHITESPACE):
            return lenient.otherwise
    try:
        data = json_loads(answer.body)
    except RecursionError:
        problem = f"the answer is nested too deeply to read: {excerpt(answer.body)!r}"
    except ValueError as exc:
        problem = f"the answer is not valid JSON ({one_line(str(exc))}): {excerpt(answer.body)!r}"
    else:
        if lenient is not None and not (isinstance(data, dict) and lenient.key in data):
            if data is None or isinstance(data, (dict, list)):
                return lenient.otherwise
            problem = f"expected a JSON object, a list or null, got {shown(data)}"
        elif not isinstance(data, dict):
            problem = f"expected a JSON object, got {shown(data)}"
        else:
            try:
                return _structure(data, into, url)
            except _READ_ERRORS as exc:
                problem = locate_problem(data, into) or f"{type(exc).__name__}: {exc}"
        problem = f"the answer is not a valid {into.__name__}: {one_line(problem)}"
        # Not left among the locals a traceback shows: a hostile answer may nest a value
        # nearly as deep as the parser goes, deeper than repr can follow.
        del data
    raise ResponseDecodeError(
        problem, method=method, url=url, status=answer.status, body=excerpt(answer.body)
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else shown(value)


def _field_errors(value: object) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for key, messages in value.items():
        if isinstance(messages, list):
            errors[str(key)] = [_text(m) for m in messages]
        else:
            errors[str(key)] = [_text(messages)]
    return errors


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: GoneError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_WIPE_RETIRED = (
    "the wipe endpoint has been retired by Fathom and answers 410 Gone; an event's completion"
    " data can no longer be wiped through the API. To remove an event, use delete()"
)


def error_for(
    answer: Answer, *, method: str, url: str, operation: Operation, now: float
) -> APIStatusError:
    """Turn an error answer into its typed exception, reading the message from the body.

    It never raises, whatever the body; the message is one printable line.
    """
    body: Any
    errors: dict[str, list[str]] = {}
    try:
        body = json_loads(answer.body) if answer.body else None
    except (ValueError, RecursionError):
        body = None
    if _nested_deeper_than(body, MAX_BODY_DEPTH):
        body = None  # kept as text below: too deep to print or pickle safely
    if isinstance(body, dict) and ("error" in body or "errors" in body):
        errors = _field_errors(body.get("errors"))
        if isinstance(body.get("error"), str):
            message = one_line(body["error"])
        else:
            message = one_line("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
            message = message or "error"
    else:
        body = answer.body.decode("utf-8", "replace") if body is None else body
        message = f"HTTP {answer.status}: {excerpt(answer.body) or '(empty body)'}"
    if answer.status == 410 and operation is Operation.WIPE:
        message = _WIPE_RETIRED
    cls = _STATUS_ERRORS.get(answer.status)
    if cls is None:
        cls = ServerError if answer.status >= 500 else APIStatusError
    common: dict[str, Any] = {
        "status": answer.status,
        "body": body,
        "headers": answer.headers,
        "method": method,
        "url": url,
        "retry_after": parse_retry_after(_header(answer.headers, "retry-after"), now=now),
    }
    if issubclass(cls, (BadRequestError, UnprocessableEntityError)):
        return cls(message, errors=errors, **common)
    if 300 <= answer.status < 400:
        return _redirect_error(answer, common)
    return cls(message, **common)


def _nested_deeper_than(value: object, limit: int) -> bool:
    """Whether a parsed JSON value nests lists and objects more than ``limit`` deep."""
    level: list[object] = [value]
    for _ in range(limit + 1):
        level = [
            child
            for item in level
            if isinstance(item, (list, dict))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return True


def _redirect_error(answer: Answer, common: dict[str, Any]) -> RedirectError:
    # Never followed: the token would go wherever the Location points, and a create
    # could run twice. Fathom does not redirect, so base_url is most likely wrong.
    location = _header(answer.headers, "location")
    where = "no Location" if location is None else f"Location: {one_line(location, EXCERPT_CHARS)}"
    message = (
        f"the API answered with a redirect ({where}), which is not followed:"
        " check that base_url points at the API itself"
    )
    return RedirectError(message, location=location, **common)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    ``now`` is the current Unix time, so the date form is testable. Unreadable,
    negative or non-finite values give ``None``; a date in the past gives 0. A
    wait longer than :data:`MAX_RETRY_AFTER` is malformed too: it is logged and
    gives ``None`` (the caller's normal backoff applies).
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds > MAX_RETRY_AFTER:
        logger.warning(
            "ignoring Retry-After %r: longer than %.0fs, which no honest limit asks for",
            text[:40],
            MAX_RETRY_AFTER,
        )
        return None
    return seconds
