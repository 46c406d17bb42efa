"""How FakeFathom reads input, as a Laravel app does: trimmed strings, empty is missing, forms.

Over real HTTP with a plain aiohttp.ClientSession (not our client), and in
memory through `fake.answer()` where the socket's own limits would hide a case.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import TYPE_CHECKING

import aiohttp
import pytest

from fathom_events.testing import FakeFathom
from fathom_events.testing._input import TRIMMED

from .test_fake_server import Api, event_path, events_path, ticking_clock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SITE = "CDBUGS"
FORM = "application/x-www-form-urlencoded"
REQUIRED = {"errors": {"name": ["The name field is required."]}}


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom(now=ticking_clock())
    fake.add_site(SITE)
    return fake


@pytest.fixture(name="api")
async def _api(fake: FakeFathom) -> AsyncIterator[Api]:
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        yield Api(session, base_url)


def stored(fake: FakeFathom) -> list[tuple[str, str]]:
    return [(event["name"], event["currency"]) for event in fake.events(SITE)]


# -- trimmed strings, empty is missing ------------------------------------------------


def test_trimmed_is_pcre_unicode_space_and_laravels_extras() -> None:
    """Str::trim's set: category Z, PCRE's \\h and \\v, NUL, U+FEFF, U+200B and U+200E."""
    category_z = {
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)).startswith("Z")
    }
    pcre_h_and_v = set("\t\n\x0b\x0c\r\x85\u180e")  # beyond category Z
    assert set(TRIMMED) == category_z | pcre_h_and_v | set("\x00\ufeff\u200b\u200e")
    assert len(TRIMMED) == len(set(TRIMMED))


@pytest.mark.parametrize(
    "name",
    [
        "Signed up ",
        "\t Signed up\r\n",
        "\x0b\x0cSigned up\x00",
        "\u200b\ufeffSigned up\u200e",
        "\u3000\u00a0Signed up\u2028\u2029",
        "\x85\u1680Signed up\u180e\u202f\u205f",
        "\u2000\u200aSigned up\u2009",
    ],
)
async def test_create_trims_the_name(api: Api, fake: FakeFathom, name: str) -> None:
    """A name's outer whitespace (as Laravel's Str::trim sees it) is trimmed before it is stored."""
    reply = await api.call("POST", events_path(), body={"name": name})
    assert reply.status == 200
    assert reply.json()["name"] == "Signed up"
    assert stored(fake) == [("Signed up", "dollar")]


@pytest.mark.parametrize("name", ["\x1fSigned  up\x1c", "\u200dSigned up\u200c", "·Signed up·"])
async def test_trimming_keeps_what_php_does_not_trim(api: Api, name: str) -> None:
    """Characters PHP's Unicode \\s does not match stay (Python's strip() takes some)."""
    assert (await api.call("POST", events_path(), body={"name": name})).json()["name"] == name


@pytest.mark.parametrize("name", ["   ", "\u200b", "\t\r\n", "\ufeff \u3000"])
async def test_blank_name_is_missing(api: Api, fake: FakeFathom, name: str) -> None:
    """A create whose name is only whitespace answers 400 'The name field is required.'."""
    reply = await api.call("POST", events_path(), body={"name": name})
    assert (reply.status, reply.json()) == (400, REQUIRED)
    assert stored(fake) == []


async def test_name_length_counts_after_trimming(api: Api, fake: FakeFathom) -> None:
    """255 characters between outer spaces fit: the limit applies to the trimmed name."""
    reply = await api.call("POST", events_path(), body={"name": f"  {'x' * 255}  "})
    assert reply.status == 200
    assert stored(fake) == [("x" * 255, "dollar")]


@pytest.mark.parametrize("currency", [None, "", "  ", "\u200b"])
async def test_blank_currency_on_create_is_dollar(
    api: Api, fake: FakeFathom, currency: str | None
) -> None:
    """A null, empty or blank currency on create is as if none was given: dollar."""
    reply = await api.call("POST", events_path(), body={"name": "Paid", "currency": currency})
    assert (reply.status, reply.json()["currency"]) == (200, "dollar")
    assert stored(fake) == [("Paid", "dollar")]


async def test_currency_is_trimmed(api: Api, fake: FakeFathom) -> None:
    """A currency with outer whitespace is read trimmed."""
    reply = await api.call("POST", events_path(), body={"name": "Paid", "currency": " euro\n"})
    assert reply.json()["currency"] == "euro"


@pytest.mark.parametrize("currency", [None, "", " \t "])
async def test_blank_currency_on_update_changes_nothing(
    api: Api, fake: FakeFathom, currency: str | None
) -> None:
    """A null, empty or blank currency on update leaves the stored currency as it was."""
    fake.add_event(SITE, "Paid", "pound", event_id="EV")
    body = {"name": " Repaid ", "currency": currency}
    reply = await api.call("POST", event_path("EV"), body=body)
    assert (reply.status, reply.json()["currency"]) == (200, "pound")
    assert stored(fake) == [("Repaid", "pound")]


@pytest.mark.parametrize("name", [None, "", "  "])
async def test_blank_name_on_update_is_refused(
    api: Api, fake: FakeFathom, name: str | None
) -> None:
    """An update that sends a null, empty or blank name answers 400 and changes nothing."""
    fake.add_event(SITE, "Same", "pound", event_id="EV")
    reply = await api.call("POST", event_path("EV"), body={"name": name, "currency": "euro"})
    assert (reply.status, reply.json()) == (400, REQUIRED)
    assert stored(fake) == [("Same", "pound")]


async def test_query_values_are_trimmed(api: Api, fake: FakeFathom) -> None:
    """Query values are trimmed too; a blank limit or cursor is as if not given."""
    ids = [fake.add_event(SITE, f"E{n}")["id"] for n in range(12)]

    async def listed(query: str) -> list[str]:
        reply = await api.call("GET", f"{events_path()}?{query}")
        assert reply.status == 200, reply.body
        return [event["id"] for event in reply.json()["data"]]

    assert await listed("limit=+3+") == ids[:3]
    assert await listed(f"limit=2&starting_after=%09{ids[4]}%20") == ids[5:7]
    assert await listed("limit=%20&ending_before=+") == ids[:10]
