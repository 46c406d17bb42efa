"""The fake's in-memory state: tokens, sites and their events.

Every read and write goes through one `threading.Lock`, so a test may inspect
or seed the state from its own thread while the server runs in another.
Records are frozen, so what a reader is handed can never change under it.
"""

from __future__ import annotations

import bisect
import itertools
import secrets
import string
import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

#: The currencies the reference lists for create and update, in its order.
CURRENCIES: Final = (
    "dollar",
    "pound",
    "euro",
    "yuan",
    "peso",
    "shekel",
    "yen",
    "won",
    "hryvnia",
    "franc",
    "rupee",
    "integer",
    "none",
)

_ID_LENGTH: Final = 8


def utc_now() -> datetime:
    """Return the current UTC time at the second precision the API shows."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC at second precision; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


@attrs.frozen
class EventRecord:
    """One stored event. `seq` breaks ties between equal `created_at` values."""

    id: str
    name: str
    currency: str
    created_at: datetime
    seq: int

    def sort_key(self) -> tuple[datetime, int]:
        return (self.created_at, self.seq)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "currency": self.currency,
            "created_at": self.created_at,
        }


@attrs.frozen
class TokenRecord:
    abilities: tuple[str, ...]
    created_at: datetime


@attrs.define
class _Site:
    name: str
    events: list[EventRecord] = attrs.Factory(list)

    def index_of(self, event_id: str) -> int | None:
        for index, record in enumerate(self.events):
            if record.id == event_id:
                return index
        return None


class UnknownCursorError(LookupError):
    """A pagination cursor names no event of the site."""


class Store:
    """Tokens, sites and events, guarded by one lock."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._tokens: dict[str, TokenRecord] = {}
        self._sites: dict[str, _Site] = {}
        self._seq = itertools.count()

    def now(self) -> datetime:
        return as_utc(self._now())

    # -- tokens and sites -------------------------------------------------

    def add_token(self, token: str, abilities: Iterable[str]) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if isinstance(abilities, str):
            raise TypeError("abilities must be a sequence of strings, not one string")
        record = TokenRecord(tuple(abilities), self.now())
        with self._lock:
            self._tokens[token] = record

    def token(self, token: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(token)

    def add_site(self, site_id: str, name: str | None = None) -> None:
        if not isinstance(site_id, str) or not site_id:
            raise ValueError("site_id must be a non-empty string")
        with self._lock:
            self._ensure_site(site_id, name)

    def has_site(self, site_id: str) -> bool:
        with self._lock:
            return site_id in self._sites

    def _ensure_site(self, site_id: str, name: str | None) -> _Site:
        site = self._sites.get(site_id)
        if site is None:
            site = self._sites[site_id] = _Site(name or site_id)
        elif name is not None:
            site.name = name
        return site

    # -- seeding and inspection -------------------------------------------

    def add_event(
        self,
        site_id: str,
        name: str,
        currency: str,
        event_id: str | None,
        created_at: datetime | None,
    ) -> EventRecord:
        if not isinstance(site_id, str) or not site_id:
            raise ValueError("site_id must be a non-empty string")
        if not isinstance(name, str):
            raise TypeError("name must be a string")
        if currency not in CURRENCIES:
            raise ValueError(f"currency must be one of {', '.join(CURRENCIES)}; got {currency!r}")
        if event_id is not None and (not isinstance(event_id, str) or not event_id):
            raise ValueError("event_id must be a non-empty string")
        moment = as_utc(created_at) if created_at is not None else self.now()
        with self._lock:
            site = self._ensure_site(site_id, None)
            if event_id is not None and site.index_of(event_id) is not None:
                raise ValueError(f"site {site_id!r} already has an event with id {event_id!r}")
            return self._insert(site, event_id or self._new_id(), name, currency, moment)

    def events(self, site_id: str) -> list[EventRecord]:
        with self._lock:
            site = self._sites.get(site_id)
            if site is None:
                raise KeyError(f"no site {site_id!r}; add it with add_site() first")
            return list(site.events)

    # -- the API's actions --------------------------------------------------

    def page(
        self,
        site_id: str,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> tuple[list[EventRecord], bool]:
        """Return one page and whether more exist in the direction of travel.

        Forward pages (no cursor, or `starting_after`) come oldest first;
        backward pages (`ending_before`) walk back from the cursor, newest first.
        """
        with self._lock:
            events = self._sites[site_id].events
            if ending_before is not None:
                end = self._cursor(site_id, ending_before, "ending_before")
                start = max(0, end - limit)
                return events[start:end][::-1], start > 0
            start = 0
            if starting_after is not None:
                start = self._cursor(site_id, starting_after, "starting_after") + 1
            return events[start : start + limit], start + limit < len(events)

    def _cursor(self, site_id: str, event_id: str, name: str) -> int:
        index = self._sites[site_id].index_of(event_id)
        if index is None:
            raise UnknownCursorError(name)
        return index

    def get(self, site_id: str, event_id: str) -> EventRecord | None:
        with self._lock:
            site = self._sites[site_id]
            index = site.index_of(event_id)
            return None if index is None else site.events[index]

    def create(self, site_id: str, name: str, currency: str) -> EventRecord:
        moment = self.now()
        with self._lock:
            return self._insert(self._sites[site_id], self._new_id(), name, currency, moment)

    def update(
        self, site_id: str, event_id: str, name: str | None, currency: str | None
    ) -> EventRecord | None:
        with self._lock:
            site = self._sites[site_id]
            index = site.index_of(event_id)
            if index is None:
                return None
            record = site.events[index]
            record = attrs.evolve(
                record,
                name=record.name if name is None else name,
                currency=record.currency if currency is None else currency,
            )
            # created_at and seq are unchanged, so the record keeps its place.
            site.events[index] = record
            return record

    def delete(self, site_id: str, event_id: str) -> bool:
        with self._lock:
            site = self._sites[site_id]
            index = site.index_of(event_id)
            if index is None:
                return False
            del site.events[index]
            return True

    # -- helpers (call with the lock held) ------------------------------------

    def _insert(
        self, site: _Site, event_id: str, name: str, currency: str, moment: datetime
    ) -> EventRecord:
        record = EventRecord(event_id, name, currency, moment, next(self._seq))
        bisect.insort(site.events, record, key=EventRecord.sort_key)
        return record

    def _new_id(self) -> str:
        taken = {record.id for site in self._sites.values() for record in site.events}
        while True:
            candidate = "".join(secrets.choice(string.ascii_uppercase) for _ in range(_ID_LENGTH))
            if candidate not in taken:
                return candidate


def spread(count: int, start: datetime, names: Sequence[str]) -> list[tuple[str, str, datetime]]:
    """Return `count` (name, currency, created_at) triples for seeding.

    Timestamps climb by a few minutes but every third event shares its
    predecessor's second, so the insertion-order tie-break gets exercised.
    """
    triples = []
    moment = start
    for index in range(count):
        if index % 3 != 2:  # every third event ties with the one before
            moment = moment.replace(microsecond=0) + timedelta(minutes=7 + index % 5)
        name = f"{names[index % len(names)]} #{index + 1}"
        triples.append((name, CURRENCIES[index % len(CURRENCIES)], moment))
    return triples
