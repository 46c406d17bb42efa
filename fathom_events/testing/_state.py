"""The fake's in-memory state: tokens, sites and their events.

Every read and write goes through one `threading.Lock`, so a test may inspect
or seed the state from its own thread while the server runs in another.
Records are frozen, so what a reader is handed can never change under it.
"""

from __future__ import annotations

import itertools
import secrets
import string
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

import attrs

from fathom_events.testing._ordered import Ordered

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
_ID_ALPHABET: Final = string.ascii_uppercase
_ID_SPACE: Final = len(_ID_ALPHABET) ** _ID_LENGTH
_READ_ALL: Final = frozenset({"*", "all-sites-readonly"})


def utc_now() -> datetime:
    """Return the current UTC time at the second precision the API shows."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def aware(moment: datetime) -> datetime:
    """Return `moment` in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC at second precision; a naive datetime is taken as UTC."""
    return aware(moment).replace(microsecond=0)


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
class SiteRecord:
    """One stored site. `seq` breaks ties between equal `created_at` values."""

    id: str
    name: str
    sharing: str
    timezone: str
    created_at: datetime
    seq: int

    def sort_key(self) -> tuple[datetime, int]:
        return (self.created_at, self.seq)


@attrs.frozen
class AccountRecord:
    """The account the tokens belong to, as `GET /v1/account` shows it."""

    id: int = 500302232  # the reference's example (an integer, unlike every other id)
    name: str = "Fake Fathom"
    email: str = "fake@example.com"


@attrs.frozen
class TokenRecord:
    """One accepted token: its abilities (as given, in order) and its metadata."""

    abilities: tuple[str, ...]
    name: str
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    granted: frozenset[str] = attrs.field(init=False)

    @granted.default
    def _granted(self) -> frozenset[str]:
        return frozenset(self.abilities)

    @property
    def can_read_account(self) -> bool:
        return "*" in self.granted

    @property
    def can_list_sites(self) -> bool:
        return not self.granted.isdisjoint(_READ_ALL)

    def can_read(self, site_id: str) -> bool:
        return self.can_list_sites or self.can_manage(site_id) or f"read:{site_id}" in self.granted

    def can_manage(self, site_id: str) -> bool:
        return "*" in self.granted or f"manage:{site_id}" in self.granted

    def expired(self, now: Callable[[], datetime]) -> bool:
        """Whether the token has expired; reads the clock only if it can expire."""
        return self.expires_at is not None and self.expires_at <= now()


class Store:
    """Tokens, sites and events, guarded by one lock.

    Events are kept per site in an `Ordered` (by id, and in created_at order);
    `_event_ids` counts every stored id over all sites, so a fresh id is
    picked without looking at any event.
    """

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._tokens: dict[str, TokenRecord] = {}
        self._account = AccountRecord()
        self._sites: Ordered[SiteRecord] = Ordered()
        self._events: dict[str, Ordered[EventRecord]] = {}
        self._event_ids: Counter[str] = Counter()
        self._seq = itertools.count()

    def now(self) -> datetime:
        return as_utc(self._now())

    # -- the account, tokens and sites -------------------------------------

    def set_account(self, account_id: int | None, name: str | None, email: str | None) -> None:
        """Change the fields given (not None) of the account."""
        if account_id is not None and (
            not isinstance(account_id, int) or isinstance(account_id, bool) or account_id < 0
        ):
            raise ValueError(f"account_id must be an integer >= 0; got {account_id!r}")
        for field, value in (("name", name), ("email", email)):
            if value is not None:
                _check_text(field, value)
        with self._lock:
            self._account = attrs.evolve(
                self._account,
                id=self._account.id if account_id is None else account_id,
                name=self._account.name if name is None else name,
                email=self._account.email if email is None else email,
            )

    def account(self) -> AccountRecord:
        with self._lock:
            return self._account

    def add_token(
        self,
        token: str,
        abilities: Iterable[str],
        *,
        name: str,
        version: int,
        created_at: datetime | None,
        updated_at: datetime | None,
        expires_at: datetime | None,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if isinstance(abilities, str):
            raise TypeError("abilities must be a sequence of strings, not one string")
        _check_text("name", name)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ValueError(f"version must be an integer >= 0; got {version!r}")
        created = as_utc(created_at) if created_at is not None else self.now()
        record = TokenRecord(
            abilities=tuple(abilities),
            name=name,
            version=version,
            created_at=created,
            updated_at=as_utc(updated_at) if updated_at is not None else created,
            expires_at=as_utc(expires_at) if expires_at is not None else None,
        )
        with self._lock:
            self._tokens[token] = record

    def token(self, token: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(token)

    def add_site(
        self,
        site_id: str,
        name: str | None,
        sharing: str | None,
        timezone: str | None,
        created_at: datetime | None,
    ) -> None:
        """Create the site, or change the fields given (not None) of an existing one."""
        _check_text("site_id", site_id)
        for field, value in (("name", name), ("sharing", sharing), ("timezone", timezone)):
            if value is not None:
                _check_text(field, value)
        moment = None if created_at is None else as_utc(created_at)
        with self._lock:
            site = self._sites.get(site_id)
            if site is None:
                site = self._new_site(site_id, moment)
            site = attrs.evolve(
                site,
                name=site.name if name is None else name,
                sharing=site.sharing if sharing is None else sharing,
                timezone=site.timezone if timezone is None else timezone,
                created_at=site.created_at if moment is None else moment,
            )
            self._sites.put(site)

    def has_site(self, site_id: str) -> bool:
        with self._lock:
            return site_id in self._sites

    def site(self, site_id: str) -> SiteRecord | None:
        with self._lock:
            return self._sites.get(site_id)

    def site_page(
        self, limit: int, starting_after: str | None, ending_before: str | None
    ) -> tuple[list[SiteRecord], bool]:
        """One page of sites; see `Ordered.page`."""
        with self._lock:
            return self._sites.page(limit, starting_after, ending_before)

    def _new_site(self, site_id: str, created_at: datetime | None) -> SiteRecord:
        """A site with default fields, its events' collection made (call with the lock held)."""
        self._events[site_id] = Ordered()
        return SiteRecord(
            id=site_id,
            name=site_id,
            sharing="none",
            timezone="UTC",
            created_at=self.now() if created_at is None else created_at,
            seq=next(self._seq),
        )

    # -- seeding and inspection -------------------------------------------

    def add_event(
        self,
        site_id: str,
        name: str,
        currency: str,
        event_id: str | None,
        created_at: datetime | None,
    ) -> EventRecord:
        _check_text("site_id", site_id)
        if not isinstance(name, str):
            raise TypeError("name must be a string")
        if currency not in CURRENCIES:
            raise ValueError(f"currency must be one of {', '.join(CURRENCIES)}; got {currency!r}")
        if event_id is not None:
            _check_text("event_id", event_id)
        moment = as_utc(created_at) if created_at is not None else self.now()
        with self._lock:
            if site_id not in self._sites:  # a site made for its first event dates from it
                self._sites.put(self._new_site(site_id, moment))
            if event_id is not None and event_id in self._events[site_id]:
                raise ValueError(f"site {site_id!r} already has an event with id {event_id!r}")
            return self._insert(site_id, event_id or self._new_id(), name, currency, moment)

    def events(self, site_id: str) -> list[EventRecord]:
        with self._lock:
            events = self._events.get(site_id)
            if events is None:
                raise KeyError(f"no site {site_id!r}; add it with add_site() first")
            return events.records()

    # -- the API's actions --------------------------------------------------

    def page(
        self,
        site_id: str,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> tuple[list[EventRecord], bool]:
        """One page of the site's events; see `Ordered.page`."""
        with self._lock:
            return self._events[site_id].page(limit, starting_after, ending_before)

    def get(self, site_id: str, event_id: str) -> EventRecord | None:
        with self._lock:
            return self._events[site_id].get(event_id)

    def create(self, site_id: str, name: str, currency: str) -> EventRecord:
        moment = self.now()
        with self._lock:
            return self._insert(site_id, self._new_id(), name, currency, moment)

    def update(
        self, site_id: str, event_id: str, name: str | None, currency: str | None
    ) -> EventRecord | None:
        with self._lock:
            events = self._events[site_id]
            record = events.get(event_id)
            if record is None:
                return None
            record = attrs.evolve(
                record,
                name=record.name if name is None else name,
                currency=record.currency if currency is None else currency,
            )
            # created_at and seq are unchanged, so the record keeps its place.
            events.put(record)
            return record

    def delete(self, site_id: str, event_id: str) -> bool:
        with self._lock:
            if self._events[site_id].remove(event_id) is None:
                return False
            self._event_ids[event_id] -= 1
            if not self._event_ids[event_id]:
                del self._event_ids[event_id]
            return True

    # -- helpers (call with the lock held) ------------------------------------

    def _insert(
        self, site_id: str, event_id: str, name: str, currency: str, moment: datetime
    ) -> EventRecord:
        record = EventRecord(event_id, name, currency, moment, next(self._seq))
        self._events[site_id].put(record)
        self._event_ids[event_id] += 1
        return record

    def _new_id(self) -> str:
        """An id of 8 random capital letters that no site's event has."""
        while True:
            # One draw for all 8 letters: as uniform as 8 draws, and 5x faster.
            number = secrets.randbelow(_ID_SPACE)
            letters = []
            for _ in range(_ID_LENGTH):
                number, digit = divmod(number, len(_ID_ALPHABET))
                letters.append(_ID_ALPHABET[digit])
            candidate = "".join(letters)
            if candidate not in self._event_ids:
                return candidate


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string; got {value!r}")


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
