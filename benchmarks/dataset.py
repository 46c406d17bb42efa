"""The data every benchmark process agrees on, derived from sizes alone.

The server and the client processes never exchange ids: both compute them
from the same few numbers, so a client can ask for event ``n`` of site ``s``
without a listing first.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import attrs

TOKEN = "bench-token"  # noqa: S105 - the lean server's made-up token
_NAMES = (
    "Signed up to newsletter",
    "Purchased product",
    "Started free trial",
    "Downloaded whitepaper",
    "Clicked pricing",
)
_CURRENCIES = ("dollar", "pound", "euro", "yen", "none")
_START = datetime(2024, 1, 1, 9, 0, 0)  # noqa: DTZ001 - the API's timestamps are naive UTC


@attrs.frozen
class Dataset:
    """``sites`` small sites of ``events_per_site`` events, two big ones, and remote ones.

    The small sites are ``SITE1``..``SITEn`` (W1, W2 and W5 read them); the
    big site ``BIG`` holds ``big_site_events`` events (W3 pages through it),
    ``HUGE`` holds ``huge_site_events`` (the memory check pages through it).
    Creates (W4) go to the empty site ``NEW``, which nothing reads.

    The ``net_sites`` remote sites ``NET1``..``NETn`` (W6's) hold one to three
    pages of events each (:func:`net_site_events`), and the server answers
    every request about them ``net_delay`` seconds late, as a real network
    and a real API would.
    """

    sites: int
    events_per_site: int
    big_site_events: int
    huge_site_events: int
    net_sites: int = 0
    net_delay: float = 0.0

    def sizes(self) -> dict[str, int]:
        """Every site and its number of events."""
        sizes = dict.fromkeys(self.site_ids(), self.events_per_site)
        sizes[BIG_SITE] = self.big_site_events
        sizes[HUGE_SITE] = self.huge_site_events
        sizes[CREATE_SITE] = 0
        sizes.update((site, net_site_events(site)) for site in self.net_site_ids())
        return sizes

    def net_site_ids(self) -> list[str]:
        """The remote sites, in order."""
        return [net_site_id(number) for number in range(1, self.net_sites + 1)]

    def site_ids(self) -> list[str]:
        """The small sites, in order."""
        return [site_id(number) for number in range(1, self.sites + 1)]

    def as_args(self) -> list[str]:
        """The command-line flags that rebuild this dataset in another process."""
        return [
            f"--sites={self.sites}",
            f"--events-per-site={self.events_per_site}",
            f"--big-site-events={self.big_site_events}",
            f"--huge-site-events={self.huge_site_events}",
            f"--net-sites={self.net_sites}",
            f"--net-delay={self.net_delay!r}",
        ]


BIG_SITE = "BIG"
HUGE_SITE = "HUGE"
CREATE_SITE = "NEW"


def site_id(number: int) -> str:
    """The id of small site ``number`` (1-based)."""
    return f"SITE{number}"


NET_PREFIX = "NET"
PAGE_SIZE = 100  # every client lists 100 events a page


def net_site_id(number: int) -> str:
    """The id of remote site ``number`` (1-based)."""
    return f"{NET_PREFIX}{number}"


def net_site_events(site: str) -> int:
    """How many events remote site ``site`` holds: one, two or three pages' worth, in turn."""
    number = int(site.removeprefix(NET_PREFIX))
    pages = 1 + number % 3
    return PAGE_SIZE * (pages - 1) + 40 + (number * 37) % 60


def list_pages(events: int) -> int:
    """List requests a walk through ``events`` events takes (an empty site takes one)."""
    return max(1, -(-events // PAGE_SIZE))


def event_id(site: str, index: int) -> str:
    """The id of a site's ``index``-th event (0-based): unique across sites."""
    return f"{site}-E{index:06d}"


def event_name(index: int) -> str:
    """The name of a site's ``index``-th event."""
    return f"{_NAMES[index % len(_NAMES)]} #{index + 1}"


def created_at(index: int) -> datetime:
    """When a site's ``index``-th event was created (naive UTC, climbing)."""
    return _START + timedelta(minutes=7 * index)


def event_json(site: str, index: int) -> dict[str, object]:
    """An event as a list or get answer has it (``currency`` is null there)."""
    return {
        "id": event_id(site, index),
        "object": "event",
        "name": event_name(index),
        "currency": None,
        "created_at": created_at(index).strftime("%Y-%m-%d %H:%M:%S"),
    }


def created_json(site: str, index: int, name: str, currency: str | None) -> dict[str, object]:
    """A create's answer: the new event, with its currency filled in."""
    body = event_json(site, index)
    body["id"] = f"{site}-N{index:06d}"
    body["name"] = name
    body["currency"] = currency or "dollar"
    return body


def dumps(value: object) -> bytes:
    """JSON as FakeFathom writes it (the standard library's default separators)."""
    return json.dumps(value, ensure_ascii=False).encode()


def create_name(index: int) -> str:
    """The name W4 gives its ``index``-th create."""
    return f"Bench create #{index}"


def create_currency(index: int) -> str:
    """The currency W4 gives its ``index``-th create."""
    return _CURRENCIES[index % len(_CURRENCIES)]


# --- W6: what a sync of a remote site changes --------------------------------------------

NET_CREATES = ("Net launch signup", "Net annual upgrade")
NET_CREATE_CURRENCY = "pound"
NET_UPDATE_INDEX = 1  # this event's currency is set
NET_UPDATE_CURRENCY = "euro"
NET_DELETE_INDEX = 0  # this event is left out of the desired state, so pruned


def net_desired(site: str) -> list[tuple[str, str | None]]:
    """What W6's sync wants ``site`` to hold: (name, currency) pairs.

    Every event it has but one (deleted by the prune), one of them with a
    currency (updated, as the sync sets currencies), and two new ones
    (created): four changes, whatever the site's size.
    """
    wanted: list[tuple[str, str | None]] = [
        (event_name(index), NET_UPDATE_CURRENCY if index == NET_UPDATE_INDEX else None)
        for index in range(net_site_events(site))
        if index != NET_DELETE_INDEX
    ]
    wanted.extend((name, NET_CREATE_CURRENCY) for name in NET_CREATES)
    return wanted


NET_CHANGES_PER_SITE = len(NET_CREATES) + 2  # the creates, one update, one delete
