"""The Events API as the reference describes it, with no HTTP in sight.

`handle` takes the parts of a request the API looks at (a `Call`) and returns
an `Answer`: a status, a JSON-able body and extra headers. Checks run in the
order a Laravel-style API runs them: route (404/405), token (401), site
visibility (404), write permission (400), then the event itself (404) and the
input (400).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from fathom_events.testing._state import (
    CURRENCIES,
    EventRecord,
    Store,
    TokenRecord,
    UnknownCursorError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

CreatedAtFormat = Literal["plain", "iso"]

_FORMATS: Final[dict[str, str]] = {"plain": "%Y-%m-%d %H:%M:%S", "iso": "%Y-%m-%dT%H:%M:%SZ"}
_NAME_MAX: Final = 255
_LIMIT_MIN: Final = 1
_LIMIT_MAX: Final = 100
_LIMIT_DEFAULT: Final = 10
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_READ_ALL: Final = frozenset({"*", "all-sites-readonly"})

RETIRED_MESSAGE: Final = (
    "This endpoint has been retired and now returns 410 Gone. It is no longer "
    "possible to wipe an event's completion data via the API."
)


@attrs.frozen
class Call:
    """What the API reads from one request. `segments` is None if undecodable."""

    method: str
    segments: tuple[str, ...] | None
    query: Mapping[str, str]
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


def handle(store: Store, call: Call, created_at_format: CreatedAtFormat) -> Answer:
    """Perform `call` against `store` and return the answer."""
    try:
        return _Handler(store, call, created_at_format).dispatch()
    except _Refusal as refusal:
        return refusal.answer


@attrs.define
class _Handler:
    store: Store
    call: Call
    created_at_format: CreatedAtFormat

    def dispatch(self) -> Answer:
        segments = self.call.segments
        if segments is None or "" in segments:
            raise _error(404, "Not found.")
        if segments == ("v1", "token"):
            self._allow("GET")
            return self._token()
        if len(segments) < 4 or segments[:2] != ("v1", "sites"):
            raise _error(404, "Not found.")
        site_id, rest = segments[2], segments[3:]
        if rest == ("events",):
            if self._allow("GET", "POST") == "GET":
                return self._list(site_id)
            return self._create(site_id)
        if len(rest) == 2 and rest[0] == "events":
            event_id = rest[1]
            verb = self._allow("GET", "POST", "DELETE")
            if verb == "GET":
                return self._get(site_id, event_id)
            if verb == "POST":
                return self._update(site_id, event_id)
            return self._delete(site_id, event_id)
        if len(rest) == 3 and rest[0] == "events" and rest[2] == "data":
            self._allow("DELETE")
            self._site(site_id, write=True)
            raise _error(410, RETIRED_MESSAGE)
        raise _error(404, "Not found.")

    def _allow(self, *allowed: str) -> str:
        if self.call.method not in allowed:
            raise _Refusal(405, {"error": "Method not allowed."}, ("Allow", ", ".join(allowed)))
        return self.call.method

    # -- authentication and scopes ------------------------------------------

    def _token_record(self) -> TokenRecord:
        token = bearer_token(self.call.authorization)
        record = None if token is None else self.store.token(token)
        if record is None:
            raise _error(401, "Unauthenticated.")
        return record

    def _site(self, site_id: str, *, write: bool) -> None:
        """Check the token may see (and, if `write`, manage) the site."""
        abilities = set(self._token_record().abilities)
        if not abilities & (_READ_ALL | {f"read:{site_id}", f"manage:{site_id}"}):
            raise _error(404, "Site not found.")
        if not self.store.has_site(site_id):
            raise _error(404, "Site not found.")
        if write and not abilities & {"*", f"manage:{site_id}"}:
            raise _error(400, "This token does not have permission to manage this site.")

    # -- endpoints ------------------------------------------------------------

    def _token(self) -> Answer:
        record = self._token_record()
        created = format_time(record.created_at, "plain")
        return Answer(
            200,
            {
                "name": "Fake Fathom token",
                "version": "1",
                "abilities": list(record.abilities),
                "last_used_at": format_time(self.store.now(), "plain"),
                "expires_at": None,
                "created_at": created,
                "updated_at": created,
            },
        )

    def _list(self, site_id: str) -> Answer:
        self._site(site_id, write=False)
        limit = self._limit()
        after = self.call.query.get("starting_after") or None
        before = self.call.query.get("ending_before") or None
        if after is not None and before is not None:
            raise _error(400, "Send either starting_after or ending_before, not both.")
        try:
            records, has_more = self.store.page(site_id, limit, after, before)
        except UnknownCursorError as exc:
            message = f"The {exc.args[0]} cursor does not match an event of this site."
            raise _error(400, message) from None
        return Answer(
            200,
            {
                "object": "list",
                "url": f"/v1/sites/{site_id}/events",
                "has_more": has_more,
                "data": [self._event(record, with_currency=False) for record in records],
            },
        )

    def _limit(self) -> int:
        raw = self.call.query.get("limit", "")
        if raw == "":
            return _LIMIT_DEFAULT
        if not _INTEGER.fullmatch(raw):
            raise _invalid({"limit": ["The limit field must be an integer."]})
        limit = int(raw)
        if not _LIMIT_MIN <= limit <= _LIMIT_MAX:
            raise _invalid(
                {"limit": [f"The limit field must be between {_LIMIT_MIN} and {_LIMIT_MAX}."]}
            )
        return limit

    def _get(self, site_id: str, event_id: str) -> Answer:
        self._site(site_id, write=False)
        return Answer(200, self._event(self._existing(site_id, event_id), with_currency=False))

    def _create(self, site_id: str) -> Answer:
        self._site(site_id, write=True)
        body = self._json_object()
        errors = _check_name(body, required=True) | _check_currency(body)
        if errors:
            raise _invalid(errors)
        record = self.store.create(site_id, body["name"], body.get("currency", "dollar"))
        return Answer(200, self._event(record, with_currency=True))

    def _update(self, site_id: str, event_id: str) -> Answer:
        self._site(site_id, write=True)
        self._existing(site_id, event_id)
        body = self._json_object()
        errors = _check_name(body, required=False) | _check_currency(body)
        if errors:
            raise _invalid(errors)
        record = self.store.update(site_id, event_id, body.get("name"), body.get("currency"))
        if record is None:  # deleted between the two steps
            raise _error(404, "Event not found.")
        return Answer(200, self._event(record, with_currency=True))

    def _delete(self, site_id: str, event_id: str) -> Answer:
        self._site(site_id, write=True)
        if not self.store.delete(site_id, event_id):
            raise _error(404, "Event not found.")
        return Answer(200, {"id": event_id, "object": "event", "deleted": True})

    # -- helpers ----------------------------------------------------------------

    def _existing(self, site_id: str, event_id: str) -> EventRecord:
        record = self.store.get(site_id, event_id)
        if record is None:
            raise _error(404, "Event not found.")
        return record

    def _json_object(self) -> dict[str, Any]:
        raw = self.call.body
        if not raw.strip():
            return {}
        media_type = self.call.content_type.partition(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise _error(400, "Send the request body as JSON, with Content-Type: application/json.")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _error(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise _error(400, "The request body must be a JSON object.")
        return body

    def _event(self, record: EventRecord, *, with_currency: bool) -> dict[str, Any]:
        return {
            "id": record.id,
            "object": "event",
            "name": record.name,
            "currency": record.currency if with_currency else None,
            "created_at": format_time(record.created_at, self.created_at_format),
        }


def _check_name(body: dict[str, Any], *, required: bool) -> dict[str, list[str]]:
    if "name" not in body and not required:
        return {}
    name = body.get("name")
    if name is None or name == "":
        return {"name": ["The name field is required."]}
    if not isinstance(name, str):
        return {"name": ["The name field must be a string."]}
    if len(name) > _NAME_MAX:
        return {"name": [f"The name field must not be greater than {_NAME_MAX} characters."]}
    return {}


def _check_currency(body: dict[str, Any]) -> dict[str, list[str]]:
    if "currency" in body and body["currency"] not in CURRENCIES:
        return {"currency": ["The selected currency is invalid."]}
    return {}
