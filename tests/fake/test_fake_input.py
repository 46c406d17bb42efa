"""How FakeFathom reads input, as a Laravel app does: trimmed strings, empty is missing, forms.

Over real HTTP with a plain aiohttp.ClientSession (not our client), and in
memory through `fake.answer()` where the socket's own limits would hide a case.
"""

from __future__ import annotations

import json
import sys
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fathom_events.testing import FakeFathom
from fathom_events.testing._input import TRIMMED, php_fields
from fathom_events.testing._recording import record_sent
from tests.fake.test_fake_server import event_path, events_path, ticking_clock
from tests.support.helpers import TOKEN, Api, Reply

SITE = "CDBUGS"
FORM = "application/x-www-form-urlencoded"
REQUIRED = {"errors": {"name": ["The name field is required."]}}
STRING = "The name field must be a string."


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom(now=ticking_clock())
    fake.add_site(SITE)
    return fake


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


# -- form bodies --------------------------------------------------------------------------

#: The headers Laravel's HTTP client (Guzzle's form_params) sends with `asForm()->post()`.
GUZZLE_FORM_HEADERS = {"Content-Type": FORM, "User-Agent": "GuzzleHttp/7"}


async def form(api: Api, path: str, body: bytes) -> Reply:
    return await api.call("POST", path, data=body, headers=GUZZLE_FORM_HEADERS)


async def test_create_from_a_guzzle_form_params_body(api: Api, fake: FakeFathom) -> None:
    """A create sent as Guzzle's form_params sends it is read like a JSON one, then trimmed."""
    # http_build_query(['name' => ' Signed up ✓ café ~ 100% ', 'currency' => 'euro']):
    # spaces as "+", every byte but letters, digits and "-_." percent-encoded ("~" too).
    body = b"name=+Signed+up+%E2%9C%93+caf%C3%A9+%7E+100%25+&currency=euro"
    reply = await form(api, events_path(), body)
    assert reply.status == 200, reply.body
    assert (reply.json()["name"], reply.json()["currency"]) == ("Signed up ✓ café ~ 100%", "euro")
    assert stored(fake) == [("Signed up ✓ café ~ 100%", "euro")]
    sent = fake.requests[-1]
    assert (sent.header("Content-Type"), sent.body) == (FORM, body)


async def test_update_from_a_form_body(api: Api, fake: FakeFathom) -> None:
    """An update sent as a form changes the fields it names; a blank currency changes nothing."""
    fake.add_event(SITE, "Old", "pound", event_id="EV")
    reply = await form(api, event_path("EV"), b"name=New&currency=")
    assert (reply.status, reply.json()["name"], reply.json()["currency"]) == (200, "New", "pound")
    assert stored(fake) == [("New", "pound")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"name=First&name=Second", ("Second", "dollar")),
        (b"name=x&currency=yen&currency=", ("x", "dollar")),
        (b"name%5B%5D=x&name=Plain", ("Plain", "dollar")),
        (b"+name=Spaced+key", ("Spaced key", "dollar")),
        (b"name=caf\xc3\xa9+raw&=empty&&currency=won", ("café raw", "won")),
        (b"name=x;currency=euro", ("x;currency=euro", "dollar")),
    ],
)
async def test_form_fields_are_read_as_php_reads_them(
    api: Api, fake: FakeFathom, body: bytes, expected: tuple[str, str]
) -> None:
    """The last of a repeated key wins, a key's leading spaces go, only "&" separates."""
    reply = await form(api, events_path(), body)
    assert reply.status == 200, reply.body
    assert stored(fake) == [expected]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (b"name%5B%5D=x", {"name": [STRING]}),
        (b"name[a][b]=x", {"name": [STRING]}),
        (b"name=x&currency%5B%5D=euro", {"currency": ["The selected currency is invalid."]}),
        (b"name", REQUIRED["errors"]),
        (b"name=+&currency=euro", REQUIRED["errors"]),
        (b"name[=x", REQUIRED["errors"]),
    ],
)
async def test_form_fields_php_would_refuse(
    api: Api, fake: FakeFathom, body: bytes, errors: dict[str, list[str]]
) -> None:
    """An array where a string belongs, or a missing or blank name, answers 400 {"errors": ...}."""
    reply = await form(api, events_path(), body)
    assert (reply.status, reply.json()) == (400, {"errors": errors})
    assert stored(fake) == []


def test_php_fields_registers_keys_as_php_does() -> None:
    """Keys are cut at NUL, lose leading spaces, get "_" for " " and "."; key[] entries add up."""
    pairs = [
        ("name[]", "a"),
        (" starting.after", "X"),
        ("a b[c", "1"),
        ("x\0y", "2"),
        ("name[]", "b"),
        ("id", "1"),
        ("id", "2"),
    ]
    assert php_fields(pairs) == {
        "name": ["a", "b"],
        "starting_after": "X",
        "a_b_c": "1",
        "x": "2",
        "id": "2",
    }


async def test_query_keys_are_read_as_php_reads_them(api: Api, fake: FakeFathom) -> None:
    """A query key is read as PHP reads it: "starting.after" is starting_after; an array refused."""
    ids = [fake.add_event(SITE, f"E{n}")["id"] for n in range(4)]
    reply = await api.call("GET", f"{events_path()}?limit=1&starting.after={ids[1]}")
    assert [event["id"] for event in reply.json()["data"]] == [ids[2]]
    for query, field, rule in [
        ("limit[]=2", "limit", "must be an integer"),
        ("ending_before[]=x", "ending_before", "must be a string"),
    ]:
        reply = await api.call("GET", f"{events_path()}?{query}")
        assert reply.status == 400
        assert rule in reply.json()["errors"][field][0]


# -- what the fake refuses to read ----------------------------------------------------------


def deep_json(depth: int) -> bytes:
    return b'{"name": ' * depth + b'"x"' + b"}" * depth


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"[" * 100_000, "not valid JSON"),
        ("application/json", deep_json(50_000), "not valid JSON"),
        ("application/json", b'{"name": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        ("application/json", b'{"name": "\xff"}', "not valid JSON"),
        ("application/json", b'{"name": "\\ud800x"}', "not valid JSON"),
        ("application/json", b'{"name": "x", "\\udfff": 1}', "not valid JSON"),
        (FORM, b"a=1&" * 1000 + b"name=x", "more than 1000 fields"),
        (FORM, b"name=%FF", "not UTF-8"),
        (FORM, b"name=\xff", "not UTF-8"),
        ("text/plain", b"name=x", "as JSON"),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--B--\r\n',
            "as JSON",
        ),
    ],
)
@pytest.mark.parametrize("way", ["http", "memory"])
async def test_unreadable_bodies_are_400(
    api: Api, fake: FakeFathom, *, way: str, content_type: str, body: bytes, message: str
) -> None:
    """A deep, over-long, undecodable or other body answers 400 {"error": ...}, never 500."""
    headers = {"Content-Type": content_type}
    if way == "http":
        reply = await api.call("POST", events_path(), data=body, headers=headers)
        status, answer = reply.status, reply.json()
    else:
        sent = record_sent(
            "POST",
            f"http://fake{'/v1' + events_path()}",
            {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", **headers},
            body,
        )
        status, _, raw = await fake.answer(sent)
        answer = json.loads(raw)
    assert status == 400
    assert message in answer["error"]
    assert stored(fake) == []


async def test_deep_form_keys_are_read_flat(api: Api, fake: FakeFathom) -> None:
    """A form key 10,000 brackets deep is one array field (refused by type), not a deep walk."""
    reply = await form(api, events_path(), b"name" + b"[a]" * 10_000 + b"=x")
    assert (reply.status, reply.json()) == (400, {"errors": {"name": [STRING]}})


@pytest.mark.parametrize("method", ["create", "update"])
async def test_a_lone_surrogate_never_reaches_the_store(
    api: Api, fake: FakeFathom, method: str
) -> None:
    """A name holding a lone surrogate is a 400; the site's listing still answers 200."""
    existing = fake.add_event(SITE, "Kept")
    path = events_path() if method == "create" else event_path(existing["id"])
    data = b'{"name": "\\ud800 sign-up"}'
    reply = await api.call("POST", path, data=data, headers={"Content-Type": "application/json"})
    assert reply.status == 400
    listed = await api.call("GET", events_path())
    assert listed.status == 200
    assert stored(fake) == [("Kept", "dollar")]


# Any character, and lone surrogates often (drawn from all of Unicode they would be rare;
# st.text drops them from any alphabet, so strings are joined from lists of characters).
CHARACTERS = st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff"])


def strings(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(CHARACTERS, max_size=max_size).map("".join)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | strings(20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings(5), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(name="served", scope="module")
def _served() -> Iterator[tuple[FakeFathom, str]]:
    fake = FakeFathom()
    fake.add_event(SITE, "Kept")
    with fake.serve_in_thread() as url:
        yield fake, url


def send(url: str, method: str, path: str, body: bytes | None = None) -> int:
    """The status of one plain HTTP request to the served fake."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + path, data=body, headers=headers, method=method)  # noqa: S310 - the fake on loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "name": strings(20) | JSON_VALUES,
            "currency": strings(8) | JSON_VALUES,
            "x": JSON_VALUES,
        },
    ),
    raw=st.binary(max_size=40),
    query=strings(12) | st.text("9", min_size=4000, max_size=6000),  # past int()'s digits
)
def test_the_fake_never_answers_500(
    served: tuple[FakeFathom, str], fields: dict[str, object], raw: bytes, query: str
) -> None:
    """Whatever JSON, bytes or query a client sends, no answer is a 500, nor is a listing after."""
    fake, url = served
    kept = fake.events(SITE)[0]["id"]
    body = json.dumps(fields).encode()  # ensure_ascii: a lone surrogate travels as \\udXXX
    cursor = urllib.parse.quote(query, safe="", errors="surrogatepass")
    statuses = [
        send(url, "POST", f"/sites/{SITE}/events", body),
        send(url, "POST", f"/sites/{SITE}/events/{kept}", body),
        send(url, "POST", f"/sites/{SITE}/events", raw),
        send(url, "GET", f"/sites/{SITE}/events?starting_after={cursor}&limit={cursor}"),
    ]
    assert 500 not in statuses, statuses
    assert send(url, "GET", f"/sites/{SITE}/events?limit=100") == 200


@pytest.mark.parametrize("limit", ["9" * 5000, "-" + "9" * 5000, "0" * 5000 + "5"])
async def test_a_limit_of_thousands_of_digits_is_refused(api: Api, limit: str) -> None:
    """A limit too long for int() is a 400 like any out-of-range one (a leading-zero 5 is 5)."""
    reply = await api.call("GET", f"{events_path()}?limit={limit}")
    if limit.endswith("5"):
        assert reply.status == 200
    else:
        assert (reply.status, reply.json()) == (
            400,
            {"errors": {"limit": ["The limit field must be between 1 and 100."]}},
        )
