"""The public, frozen types the Events API speaks in.

Answers are read leniently (unknown fields are ignored, an unknown currency is
kept as its raw string); what we send is checked strictly before sending.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

__all__ = ["Currency", "DeletedEvent", "Event", "EventPage", "Site", "SitePage", "TokenInfo"]


class Currency(str, enum.Enum):
    """The currency of an event's completion values, as the API names them.

    Members compare equal to their strings: ``Currency.EURO == "euro"``.
    ``NONE`` is the API's own value ``"none"`` (no currency), not Python's None.
    """

    DOLLAR = "dollar"
    POUND = "pound"
    EURO = "euro"
    YUAN = "yuan"
    PESO = "peso"
    SHEKEL = "shekel"
    YEN = "yen"
    WON = "won"
    HRYVNIA = "hryvnia"
    FRANC = "franc"
    RUPEE = "rupee"
    INTEGER = "integer"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Event:
    """An event (a conversion goal) of a site.

    Attributes:
        id: The event's id, opaque: give it back as it is (to ``get``,
            ``update``, ``delete``, or as a cursor).
        name: Its name, as Fathom stores it (without outer whitespace).
        currency: The currency of its completion values: a :class:`Currency`,
            the raw string of one the enum does not know, or ``None``, which
            list and get answers always give (Fathom fills it only in the
            answers to create and update).
        created_at: When it was created, timezone-aware UTC.
    """

    id: str
    name: str
    currency: Currency | str | None
    created_at: datetime


@attrs.frozen
class EventPage:
    """One page of a site's events, in the order the API returned them.

    Attributes:
        data: The page's events.
        has_more: Whether another page exists in the direction of travel.
        url: The API's own path for the list (the request's path when the
            answer gives none).
    """

    data: list[Event]
    has_more: bool
    url: str


@attrs.frozen
class DeletedEvent:
    """The API's answer to a delete.

    Attributes:
        id: The id of the event deleted.
        deleted: True on success (also when the answer was empty: ``204``,
            ``{}`` or ``[]`` mean it is done).
    """

    id: str
    deleted: bool


@attrs.frozen
class Site:
    """A site of the account, as ``GET /v1/sites`` and ``GET /v1/sites/{id}`` answer it.

    Attributes:
        id: The site's id (the one in its tracking snippet), opaque.
        name: Its name.
        sharing: ``"none"``, ``"private"`` or ``"public"`` in the reference;
            any other string is kept as it is, and a missing one is ``None``.
        created_at: When it was created, timezone-aware UTC.
        timezone: Its time zone, an IANA name such as ``"America/New_York"``
            (newer in the API: ``None`` when the answer has none).
    """

    id: str
    name: str
    sharing: str | None
    created_at: datetime
    timezone: str | None


@attrs.frozen
class SitePage:
    """One page of the account's sites, in the order the API returned them.

    Attributes:
        data: The page's sites.
        has_more: Whether another page exists in the direction of travel.
        url: The API's own path for the list (the request's path when the
            answer gives none).
    """

    data: list[Site]
    has_more: bool
    url: str


_ADMIN = "*"
_READ_ALL = "all-sites-readonly"


@attrs.frozen
class TokenInfo:
    """What ``GET /v1/token`` says of the token making the request (never the secret).

    Each timestamp is timezone-aware UTC, or ``None`` when the answer gives none.

    Attributes:
        name: The name the token was given when it was made, or ``None``.
        version: Its version, kept as given (an int, or a string), or ``None``.
        abilities: What it may do, as the API gave them, in order: ``"*"``
            (admin), ``"all-sites-readonly"``, ``"read:SITE"`` and
            ``"manage:SITE"``. An ability this library does not know is kept
            and never grants anything.
        last_used_at: When it was last used.
        expires_at: When it stops working (``None``: it does not expire).
        created_at: When it was made.
        updated_at: When it was last changed.
    """

    name: str | None
    version: int | str | None
    abilities: tuple[str, ...]
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def can_list_sites(self) -> bool:
        """Whether the token may list the account's sites (``*`` or ``all-sites-readonly``)."""
        return _ADMIN in self.abilities or _READ_ALL in self.abilities

    def can_read(self, site_id: str) -> bool:
        """Whether the token may list and get the events of ``site_id`` (manage implies read)."""
        return (
            self.can_list_sites or f"read:{site_id}" in self.abilities or self.can_manage(site_id)
        )

    def can_manage(self, site_id: str) -> bool:
        """Whether the token may create, update and delete the events of ``site_id``."""
        return _ADMIN in self.abilities or f"manage:{site_id}" in self.abilities
