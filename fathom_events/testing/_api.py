"""The Events API (and the sites, token and account endpoints) as documented, with no HTTP.

`Api.handle` takes the parts of a request the API looks at (a `Call`) and
returns an `Answer`: a status, a JSON-able body and extra headers. Checks run
in the order a Laravel-style API runs them: route (404/405), token (401, also
once it has expired), the token's rate budget if one is set (429), site
visibility (404), permission (400: writes, listing sites, the account), then
the event itself (404) and the input (400). The retired wipes (an event's, a
site's) answer 410 once all of that passes.

Input is read as Fathom's Laravel application reads it (`_input`): every
query value and body field is trimmed, and one left empty is missing (null).
So a create named "Signed up " stores "Signed up", a blank name is required,
and a null or blank currency is as if not given (create: dollar; update: the
stored one stays). An update that sends a blank name is refused (required).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import attrs

from fathom_events.testing._input import InputError, clean, read_body
from fathom_events.testing._ordered import UnknownCursorError
from fathom_events.testing._state import CURRENCIES, EventRecord, SiteRecord, Store, TokenRecord
from fathom_events.testing._throttle import MESSAGE as THROTTLED

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from fathom_events.testing._input import Field
    from fathom_events.testing._throttle import Throttle

R = TypeVar("R")

CreatedAtFormat = Literal["plain", "iso"]

_FORMATS: Final[dict[str, str]] = {"plain": "%Y-%m-%d %H:%M:%S", "iso": "%Y-%m-%dT%H:%M:%SZ"}
_NAME_MAX: Final = 255
_LIMIT_MIN: Final = 1
_LIMIT_MAX: Final = 100
_LIMIT_DEFAULT: Final = 10
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")

_RETIRED: Final = (
    "This endpoint has been retired and now returns 410 Gone. It is no longer "
    "possible to wipe {what} via the API."
)


@attrs.frozen
class Call:
    """What the API reads from one request. `segments` is None if undecodable.

    `query` holds the query's fields as PHP reads them (`php_fields`), not yet cleaned.
    """

    method: str
    segments: tuple[str, ...] | None
    query: Mapping[str, Field]
    authorization: str | None
    content_type: str
    body: bytes


@attrs.frozen
class Answer:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


class _Refusal(Exception):  # noqa: N818 - an answer, not a failure of the fake
    """Raised inside `handle` to answer early with an error."""

    def __init__(self, status: int, body: dict[str, Any], *headers: tuple[str, str]) -> None:
        super().__init__(status)
        self.answer = Answer(status, body, headers)


def _error(status: int, message: str) -> _Refusal:
    return _Refusal(status, {"error": message})


def _invalid(errors: dict[str, list[str]]) -> _Refusal:
    return _Refusal(400, {"errors": errors})


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of a `Bearer <token>` header, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def format_time(moment: datetime, created_at_format: CreatedAtFormat) -> str:
    return moment.strftime(_FORMATS[created_at_format])


@attrs.frozen
class Api:
    """The API over the fake's state: what each request meets, over HTTP and in memory.

    `throttle`, when set, is each token's rate budget (see `_throttle`).
    """

    store: Store
    created_at_format: CreatedAtFormat = "plain"
    throttle: Throttle | None = None

    def handle(self, call: Call) -> Answer:
        """Perform `call` and return the answer."""
        try:
            return _Handler(self, call).dispatch()
        except _Refusal as refusal:
            return refusal.answer


if TYPE_CHECKING:
    # What a route leads to: the endpoint's work, given the token that asked.
    Endpoint = Callable[[TokenRecord], Answer]


@attrs.define
class _Handler:
    api: Api
    call: Call

    @property
    def store(self) -> Store:
        return self.api.store

    def dispatch(self) -> Answer:
        """Route, authenticate, spend the budget, then run the endpoint, as Laravel orders them.

        Routing comes first (404 for an unknown path, 405 for a wrong method);
        then the auth middleware (401), then throttle (429; Laravel's middleware
        priority puts auth first, so a request that fails it spends nothing).
        """
        endpoint = self._route()
        token, record = self._authenticate()
        throttle = self.api.throttle
        retry_after = None if throttle is None else throttle.spend(token)
        if retry_after is not None:
            raise _Refusal(429, {"error": THROTTLED}, ("Retry-After", str(retry_after)))
        return endpoint(record)

    def _route(self) -> Endpoint:
        segments = self.call.segments
        if segments is None or "" in segments:
            raise _error(404, "Not found.")
        if segments == ("v1", "token"):
            self._allow("GET")
            return self._token
        if segments == ("v1", "account"):
            self._allow("GET")
            return self._account
        if segments == ("v1", "sites"):
            self._allow("GET")
            return self._list_sites
        if segments[:2] != ("v1", "sites"):
            raise _error(404, "Not found.")
        return self._route_site(segments[2], segments[3:])

    def _route_site(self, site_id: str, rest: tuple[str, ...]) -> Endpoint:
        """Route /v1/sites/{site_id}/... by what follows the site id."""
        if not rest:
            self._allow("GET")
            return functools.partial(self._get_site, site_id=site_id)
        if rest == ("data",):
            self._allow("DELETE")
            return functools.partial(self._retired, site_id=site_id, what="a site's data")
        if rest == ("events",):
            if self._allow("GET", "POST") == "GET":
                return functools.partial(self._list, site_id=site_id)
            return functools.partial(self._create, site_id=site_id)
        if len(rest) == 2 and rest[0] == "events":
            verb = self._allow("GET", "POST", "DELETE")
            endpoint = {"GET": self._get, "POST": self._update, "DELETE": self._delete}[verb]
            return functools.partial(endpoint, site_id=site_id, event_id=rest[1])
        if len(rest) == 3 and rest[0] == "events" and rest[2] == "data":
            self._allow("DELETE")
            what = "an event's completion data"
            return functools.partial(self._retired, site_id=site_id, what=what)
        raise _error(404, "Not found.")

    def _allow(self, *allowed: str) -> str:
        if self.call.method not in allowed:
            raise _Refusal(405, {"error": "Method not allowed."}, ("Allow", ", ".join(allowed)))
        return self.call.method

    # -- authentication and scopes ------------------------------------------

    def _authenticate(self) -> tuple[str, TokenRecord]:
        """The bearer token and its record; 401 if it is missing, unknown or expired."""
        token = bearer_token(self.call.authorization)
        record = None if token is None else self.store.token(token)
        if token is None or record is None or record.expired(self.store.now):
            raise _error(401, "Unauthenticated.")
        return token, record

    def _site(self, token: TokenRecord, site_id: str, *, write: bool) -> None:
        """Check the token may see (and, if `write`, manage) the site."""
        if not token.can_read(site_id) or not self.store.has_site(site_id):
            raise _error(404, "Site not found.")
        if write and not token.can_manage(site_id):
            raise _error(400, "This token does not have permission to manage this site.")

    # -- endpoints ------------------------------------------------------------

    def _token(self, record: TokenRecord) -> Answer:
        expires = record.expires_at
        return Answer(
            200,
            {
                "name": record.name,
                "version": record.version,
                "abilities": list(record.abilities),
                "last_used_at": format_time(self.store.now(), "plain"),  # this very request
                "expires_at": None if expires is None else format_time(expires, "plain"),
                "created_at": format_time(record.created_at, "plain"),
                "updated_at": format_time(record.updated_at, "plain"),
            },
        )

    def _account(self, token: TokenRecord) -> Answer:
        if not token.can_read_account:
            raise _error(400, "This token does not have permission to read the account.")
        account = self.store.account()
        return Answer(
            200,
            {"id": account.id, "object": "account", "name": account.name, "email": account.email},
        )

    def _list_sites(self, token: TokenRecord) -> Answer:
        if not token.can_list_sites:
            raise _error(400, "This token does not have permission to list sites.")
        return self._page("/v1/sites", self.store.site_page, "a site", self._site_object)

    def _get_site(self, token: TokenRecord, site_id: str) -> Answer:
        self._site(token, site_id, write=False)
        record = self.store.site(site_id)
        if record is None:  # pragma: no cover - sites are never removed
            raise _error(404, "Site not found.")
        return Answer(200, self._site_object(record))

    def _list(self, token: TokenRecord, site_id: str) -> Answer:
        self._site(token, site_id, write=False)
        return self._page(
            f"/v1/sites/{site_id}/events",
            functools.partial(self.store.page, site_id),
            "an event of this site",
            functools.partial(self._event, with_currency=False),
        )

    def _page(
        self,
        url: str,
        fetch: Callable[[int, str | None, str | None], tuple[list[R], bool]],
        noun: str,
        render: Callable[[R], dict[str, Any]],
    ) -> Answer:
        """A list answer: `fetch(limit, starting_after, ending_before)` read from the query."""
        limit = self._limit()
        after = self._cursor("starting_after")
        before = self._cursor("ending_before")
        if after is not None and before is not None:
            raise _error(400, "Send either starting_after or ending_before, not both.")
        try:
            records, has_more = fetch(limit, after, before)
        except UnknownCursorError as exc:
            raise _error(400, f"The {exc.args[0]} cursor does not match {noun}.") from None
        return Answer(
            200,
            {
                "object": "list",
                "url": url,
                "has_more": has_more,
                "data": [render(record) for record in records],
            },
        )

    def _limit(self) -> int:
        raw = clean(self.call.query.get("limit"))
        if raw is None:
            return _LIMIT_DEFAULT
        if not isinstance(raw, str) or not _INTEGER.fullmatch(raw):
            raise _invalid({"limit": ["The limit field must be an integer."]})
        sign, digits = ("-" if raw.startswith("-") else ""), raw.lstrip("+-").lstrip("0")
        # Past a few digits it is out of range whatever it is (and int() refuses thousands).
        limit = int(sign + (digits or "0")) if len(digits) <= 3 else _LIMIT_MAX + 1
        if not _LIMIT_MIN <= limit <= _LIMIT_MAX:
            raise _invalid(
                {"limit": [f"The limit field must be between {_LIMIT_MIN} and {_LIMIT_MAX}."]}
            )
        return limit

    def _get(self, token: TokenRecord, site_id: str, event_id: str) -> Answer:
        self._site(token, site_id, write=False)
        return Answer(200, self._event(self._existing(site_id, event_id), with_currency=False))

    def _create(self, token: TokenRecord, site_id: str) -> Answer:
        self._site(token, site_id, write=True)
        body = self._body()
        errors = _check_name(body, required=True) | _check_currency(body)
        if errors:
            raise _invalid(errors)
        record = self.store.create(site_id, body["name"], body.get("currency") or "dollar")
        return Answer(200, self._event(record, with_currency=True))

    def _update(self, token: TokenRecord, site_id: str, event_id: str) -> Answer:
        self._site(token, site_id, write=True)
        self._existing(site_id, event_id)
        body = self._body()
        errors = _check_name(body, required=False) | _check_currency(body)
        if errors:
            raise _invalid(errors)
        record = self.store.update(site_id, event_id, body.get("name"), body.get("currency"))
        if record is None:  # deleted between the two steps
            raise _error(404, "Event not found.")
        return Answer(200, self._event(record, with_currency=True))

    def _delete(self, token: TokenRecord, site_id: str, event_id: str) -> Answer:
        self._site(token, site_id, write=True)
        if not self.store.delete(site_id, event_id):
            raise _error(404, "Event not found.")
        return Answer(200, {"id": event_id, "object": "event", "deleted": True})

    def _retired(self, token: TokenRecord, site_id: str, what: str) -> Answer:
        """A retired wipe: 410 Gone, once the token may manage the site."""
        self._site(token, site_id, write=True)
        raise _error(410, _RETIRED.format(what=what))

    # -- helpers ----------------------------------------------------------------

    def _cursor(self, name: str) -> str | None:
        """The query's cursor `name`, cleaned; None when not given (or blank)."""
        value = clean(self.call.query.get(name))
        if value is not None and not isinstance(value, str):
            raise _invalid({name: [f"The {name.replace('_', ' ')} field must be a string."]})
        return value

    def _existing(self, site_id: str, event_id: str) -> EventRecord:
        record = self.store.get(site_id, event_id)
        if record is None:
            raise _error(404, "Event not found.")
        return record

    def _body(self) -> dict[str, Any]:
        """The body's fields (JSON or a form), cleaned."""
        try:
            return read_body(self.call.content_type, self.call.body)
        except InputError as exc:
            raise _error(400, str(exc)) from None

    def _event(self, record: EventRecord, *, with_currency: bool) -> dict[str, Any]:
        return {
            "id": record.id,
            "object": "event",
            "name": record.name,
            "currency": record.currency if with_currency else None,
            "created_at": format_time(record.created_at, self.api.created_at_format),
        }

    def _site_object(self, record: SiteRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "object": "site",
            "name": record.name,
            "sharing": record.sharing,
            "created_at": format_time(record.created_at, self.api.created_at_format),
            "timezone": record.timezone,
        }


def _check_name(body: dict[str, Any], *, required: bool) -> dict[str, list[str]]:
    if "name" not in body and not required:
        return {}
    name = body.get("name")  # cleaned: a blank name is None
    if name is None:
        return {"name": ["The name field is required."]}
    if not isinstance(name, str):
        return {"name": ["The name field must be a string."]}
    if len(name) > _NAME_MAX:
        return {"name": [f"The name field must not be greater than {_NAME_MAX} characters."]}
    return {}


def _check_currency(body: dict[str, Any]) -> dict[str, list[str]]:
    """A null or blank currency is as if not given (create: dollar, update: unchanged)."""
    currency = body.get("currency")
    if currency is not None and currency not in CURRENCIES:
        return {"currency": ["The selected currency is invalid."]}
    return {}
