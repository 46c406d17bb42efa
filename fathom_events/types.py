"""The public, frozen types the Events API speaks in.

Answers are read leniently (unknown fields are ignored, an unknown currency is
kept as its raw string); what we send is checked strictly before sending.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

__all__ = ["Currency", "DeletedEvent", "Event", "EventPage"]


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

    ``currency`` is ``None`` on list and get answers: Fathom fills it only in
    the answers to create and update. A currency the :class:`Currency` enum
    does not know is kept as the raw string rather than failing the answer.
    ``created_at`` is timezone-aware UTC.
    """

    id: str
    name: str
    currency: Currency | str | None
    created_at: datetime


@attrs.frozen
class EventPage:
    """One page of a site's events, in the order the API returned them.

    ``has_more`` says whether another page exists in the direction of travel;
    ``url`` is the API's own path for the list.
    """

    data: list[Event]
    has_more: bool
    url: str


@attrs.frozen
class DeletedEvent:
    """The API's answer to a delete: the id, and ``deleted`` (true on success)."""

    id: str
    deleted: bool
