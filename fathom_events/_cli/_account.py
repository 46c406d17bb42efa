"""The commands about the account rather than its events: ``sites`` and ``token``.

Each is a coroutine ``(args, out) -> exit code`` run under ``asyncio.run``
with one :class:`AsyncClient`, as the other API commands. The token itself is
never shown: ``token`` prints what ``GET /v1/token`` says about it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from fathom_events import TooManySitesError

from ._commands import connect, listing_sites
from ._output import Output, duration, tally

if TYPE_CHECKING:
    from fathom_events import Site, TokenInfo

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "ability_words",
    "expiry_warning",
    "site_json",
    "sites",
    "token",
    "token_json",
]

#: ``token`` warns when the token expires within this many days (or has expired).
EXPIRY_WARNING_DAYS = 14

_SITE_COLUMNS = ["id", "name", "sharing", "timezone", "created_at"]


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def site_json(site: Site) -> dict[str, str | None]:
    """A site as JSON: id, name, sharing and timezone (None when the API gave none), created_at."""
    return {
        "id": site.id,
        "name": site.name,
        "sharing": site.sharing,
        "timezone": site.timezone,
        "created_at": _when(site.created_at),
    }


async def sites(args: argparse.Namespace, out: Output) -> int:
    """Every site the token can list, oldest first, each once; 1 past ``--max-sites``."""
    async with connect(args) as client:
        try:
            with listing_sites(out):
                found = await client.sites.every(max_sites=args.max_sites)
        except TooManySitesError as error:
            out.problem(
                f"sites: the account lists more than {error.limit:,} sites; listing stopped"
                " there (--max-sites N reads more)"
            )
            return 1
    shown = [site_json(site) for site in found]
    if out.json_mode:
        out.json(shown)
    elif shown:
        out.table(_SITE_COLUMNS, [[row[c] or "" for c in _SITE_COLUMNS] for row in shown])
    else:
        out.note("the token can list no sites")
    return 0


def ability_words(ability: str) -> str:
    """What one ability allows, in words; one this command does not know, as it is."""
    if ability == "*":
        return "manage every site"
    if ability == "all-sites-readonly":
        return "read every site"
    kind, colon, site_id = ability.partition(":")
    if colon and site_id and kind in ("read", "manage"):
        return f"{kind} site {site_id}"
    return ability


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def expiry_warning(expires_at: datetime | None, now: datetime) -> str | None:
    """The warning when the token expires within :data:`EXPIRY_WARNING_DAYS` of ``now``, or has."""
    if expires_at is None:
        return None
    left = _utc(expires_at) - _utc(now)
    when = expires_at.isoformat()
    if left <= timedelta(0):
        return f"the token expired on {when}; make a new one"
    if left > timedelta(days=EXPIRY_WARNING_DAYS):
        return None
    if left >= timedelta(days=1):  # to the nearest day: 47 h 59 min is "2 days"
        within = tally(round(left / timedelta(days=1)), "day")
    else:
        within = duration(left.total_seconds())
    return f"the token expires in {within}, on {when}; make a new one before then"


def token_json(info: TokenInfo, now: datetime) -> dict[str, object]:
    """What the token is and may do as JSON; never the token itself."""
    abilities: Sequence[str] = info.abilities
    return {
        "name": info.name,
        "version": info.version,
        "abilities": list(abilities),
        "allows": [ability_words(ability) for ability in abilities],
        "can_list_sites": info.can_list_sites,
        "last_used_at": _when(info.last_used_at),
        "expires_at": _when(info.expires_at),
        "created_at": _when(info.created_at),
        "updated_at": _when(info.updated_at),
        "expiry_warning": expiry_warning(info.expires_at, now),
    }


def _token_rows(document: dict[str, object]) -> list[list[str]]:
    def text(value: object, missing: str = "") -> str:
        return missing if value is None else str(value)

    allows = document["allows"]
    assert isinstance(allows, list)  # noqa: S101 - built just above
    rows = [["name", text(document["name"])], ["version", text(document["version"])]]
    rows += [["may", str(words)] for words in allows] or [["may", "nothing"]]
    rows += [
        ["expires_at", text(document["expires_at"], "never")],
        ["last_used_at", text(document["last_used_at"], "never")],
        ["created_at", text(document["created_at"])],
        ["updated_at", text(document["updated_at"])],
    ]
    return rows


async def token(args: argparse.Namespace, out: Output) -> int:
    """What ``GET /v1/token`` says about the token, and a warning when it expires soon."""
    async with connect(args) as client:
        info = await client.token()
    now = datetime.now(timezone.utc)
    document = token_json(info, now)
    if out.json_mode:
        out.json(document)
    else:
        out.table(["field", "value"], _token_rows(document))
    warning = document["expiry_warning"]
    if warning is not None:
        out.problem(f"warning: {warning}")
    return 0
