"""Generated answers (status, headers, body) at every endpoint: only a value or a FathomError.

One :class:`RawServer` serves each test; its reply function sends whatever the
current example put in :data:`CURRENT`. Every example gets a fresh client with
retries off and fake time (see ``tests/endpoints.py``), so nothing sleeps and
no example's ``Retry-After`` cools down the next one.

Statuses cover 200..599. 1xx is left out: aiohttp reads a 1xx as an interim
answer and waits for the final one, and when a large body follows (an unknown
1xx such as 105 or 199 with 600 kB) nothing arrives until the attempt timeout,
which would make an example cost real seconds. (It still ends as an
APITimeoutError, a FathomError.) A bogus ``Content-Length`` is harmless: the
server closes the connection after each answer, which ends the body, so the
attempt timeout here is only a safety net.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fathom_events import APIStatusError, FathomError, ResponseDecodeError
from tests.support.endpoints import CALLS, outcome_async, outcome_blocking
from tests.support.hostile import RawServer, http

#: Every error these tests meet is walked for the token once each test ends (see conftest).
pytestmark = pytest.mark.usefixtures("every_error_token_free")

#: The reply the server sends for the example being run.
CURRENT: dict[str, bytes] = {"reply": http(200, b"{}")}
SAFETY_TIMEOUT = 10.0

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- bodies -------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
texts = st.one_of(
    st.sampled_from(["A", "7E2TJKBV", "signed-up-to-newsletter", "café", "", " ", "\x1b[2J"]),
    st.text(max_size=12),
)
stamps = st.one_of(
    st.sampled_from(
        [
            "2020-08-21 15:24:00",
            "2023-11-07T05:31:56Z",
            "2023-11-07T05:31:56.123Z",
            "2023-11-07T07:31:56+02:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2020-02-30 00:00:00",
            "yesterday",
        ]
    ),
    st.text(max_size=30),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's value, a value of any JSON type, or ``...``: the field is left out."""
    return st.one_of(strategy, strategy, json_values, st.just(...))


events = st.fixed_dictionaries(
    {
        "id": maybe(texts),
        "object": maybe(st.just("event")),
        "name": maybe(texts),
        "currency": maybe(st.sampled_from([None, "euro", "dollar", "doubloon"])),
        "created_at": maybe(stamps),
        "deleted": maybe(st.booleans()),
    }
).map(lambda fields: {k: v for k, v in fields.items() if v is not ...})
pages = st.fixed_dictionaries(
    {
        "object": maybe(st.just("list")),
        "url": maybe(st.sampled_from(["/v1/sites/CDBUGS/events", ["/v1/sites/CDBUGS/events"]])),
        "has_more": maybe(st.booleans()),
        "data": maybe(st.lists(st.one_of(events, events, json_values), max_size=5)),
    }
).map(lambda fields: {k: v for k, v in fields.items() if v is not ...})
error_bodies = st.one_of(
    st.fixed_dictionaries({"error": st.one_of(texts, json_values)}),
    st.fixed_dictionaries({"errors": st.dictionaries(st.text(max_size=6), json_values)}),
)
good_ids = st.one_of(st.sampled_from(["ABCDEFGH", "7E2TJKBV", "signed-up"]), st.text(min_size=1))
good_events = st.fixed_dictionaries(
    {
        "id": good_ids,
        "object": st.just("event"),
        "name": st.text(min_size=1, max_size=30),
        "created_at": st.sampled_from(["2020-08-21 15:24:00", "2023-11-07T05:31:56.123Z"]),
    },
    optional={"currency": st.sampled_from([None, "dollar", "yen", "doubloon"]), "site_id": texts},
)
good_bodies = st.one_of(
    good_events,
    good_events.map(lambda event: {**event, "deleted": True}),
    st.fixed_dictionaries(
        {"has_more": st.booleans(), "data": st.lists(good_events, max_size=4)},
        optional={"url": st.sampled_from(["/v1/sites/CDBUGS/events", ["/v1/"], None])},
    ),
)
json_bodies = st.one_of(good_bodies, events, pages, error_bodies, json_values).map(
    lambda value: json.dumps(value).encode()
)


@st.composite
def deep_bodies(draw: st.DrawFn) -> bytes:
    """A value nested up to 100,000 deep, alone or where a field should be."""
    depth = draw(st.sampled_from([10, 500, 990, 1100, 5000, 100_000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    deep = opener * depth + b"0" + closer * depth
    where = draw(st.sampled_from([b"%s", b'{"error": %s}', b'{"id": %s}', b'{"data": [%s]}']))
    return where.replace(b"%s", deep)


@st.composite
def numbers(draw: st.DrawFn) -> bytes:
    """Numbers of any size where ids, names, flags and timestamps should be."""
    number = draw(
        st.one_of(
            st.sampled_from([b"1e400", b"-1e400", b"NaN", b"-Infinity", b"1e-400"]),
            st.integers(1, 6000).map(lambda n: b"9" * n),
        )
    )
    field = draw(st.sampled_from([b"id", b"name", b"created_at", b"has_more", b"error"]))
    return b'{"%s": %s, "data": [], "deleted": true}' % (field, number)


@st.composite
def surrogate_bodies(draw: st.DrawFn) -> bytes:
    """Lone surrogates (escaped or as raw CESU-8 bytes) in ids, names and messages."""
    lone = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"A\\udc80B", b"\xed\xa0\x80"]))
    event = b'{"id": "%s", "name": "%s", "created_at": "2020-08-21 15:24:00", "deleted": true}'
    shapes = [
        event % (lone, b"n"),
        event % (b"A", lone),
        b'{"has_more": true, "data": [' + event % (lone, b"n") + b"]}",
        b'{"error": "' + lone + b'"}',
        b'{"errors": {"' + lone + b'": ["' + lone + b'"]}}',
    ]
    return draw(st.sampled_from(shapes))


bodies = st.one_of(
    json_bodies,
    json_bodies,
    deep_bodies(),
    numbers(),
    surrogate_bodies(),
    st.binary(max_size=64),
)

# --- statuses and headers -----------------------------------------------------------------

statuses = st.one_of(
    st.just(200),
    st.sampled_from([200, 201, 204, 301, 302, 400, 401, 403, 404, 410, 422, 429, 500, 503]),
    st.integers(200, 599),
)
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
retry_after = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "1.5",
            "1e308",
            "inf",
            "nan",
            "9" * 400,
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 +0100",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "Thu, 01 Jan 2099 00:00:00 GMT",
            "",
        ]
    ),
    header_text,
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "application/json; charset=bogus",
        "text/html",
        "",
        "\x01",
    ]
)
# Framing headers that lie break most answers before the reader sees them: rarer.
framing: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.just({}),
    st.just({}),
    st.just({}),
    st.fixed_dictionaries({"Content-Length": st.one_of(st.integers(0, 300).map(str), header_text)}),
    st.fixed_dictionaries(
        {"Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "bogus"])}
    ),
)
headers = st.builds(
    lambda common, lying: {**common, **lying},
    st.fixed_dictionaries(
        {},
        optional={
            "Retry-After": retry_after,
            "Content-Type": content_types,
            "Location": header_text,
            "X-Anything": header_text,
        },
    ),
    framing,
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[str, bytes]:
    """An endpoint and the raw answer the server sends to it."""
    call = draw(st.sampled_from(sorted(CALLS)))
    return call, http(draw(statuses), draw(bodies), draw(headers))


# --- the tests ----------------------------------------------------------------------------


@pytest.fixture(name="served_url", scope="module")
def _served_url() -> Iterator[str]:
    server = RawServer(lambda _: CURRENT["reply"])
    with server.serve_in_thread() as url:
        yield url


def accept(call: str, outcome: object) -> None:
    """A value of the endpoint's type, or a FathomError (the reader's on one line)."""
    event(f"{call}: {type(outcome).__name__}")  # --hypothesis-show-statistics shows the mix
    if isinstance(outcome, (ResponseDecodeError, APIStatusError)):
        assert len(str(outcome).splitlines()) == 1, str(outcome)
    if not isinstance(outcome, FathomError):
        assert isinstance(outcome, CALLS[call][1]), f"{call} gave {outcome!r:.200}"


@SETTINGS
@given(answer=answers())
def test_async_face_gives_only_values_or_fathom_errors(
    served_url: str, answer: tuple[str, bytes]
) -> None:
    """Whatever the server answers, AsyncClient returns a value or raises a FathomError."""
    call, CURRENT["reply"] = answer
    accept(call, asyncio.run(outcome_async(served_url, call, timeout=SAFETY_TIMEOUT)))


@SETTINGS
@given(answer=answers())
def test_blocking_face_gives_only_values_or_fathom_errors(
    served_url: str, answer: tuple[str, bytes]
) -> None:
    """Whatever the server answers, Client returns a value or raises a FathomError."""
    call, CURRENT["reply"] = answer
    accept(call, outcome_blocking(served_url, call, timeout=SAFETY_TIMEOUT))


# The docs' own transport (httpx) meets the same answers: whatever its stack makes of
# them, the client gives a value or a FathomError (tests/support/faces.py). A third of the
# examples: each makes an httpx client, whose TLS context costs ~50 ms to build.
OVER_THE_DOCS_TRANSPORT = settings(SETTINGS, max_examples=100)


@OVER_THE_DOCS_TRANSPORT
@given(answer=answers())
def test_async_face_over_the_docs_transport_gives_only_values_or_fathom_errors(
    served_url: str, answer: tuple[str, bytes]
) -> None:
    """Whatever the server answers, AsyncClient over the docs' transport gives the same."""
    call, CURRENT["reply"] = answer
    outcome = outcome_async(served_url, call, timeout=SAFETY_TIMEOUT, transport="user")
    accept(call, asyncio.run(outcome))


@OVER_THE_DOCS_TRANSPORT
@given(answer=answers())
def test_blocking_face_over_the_docs_transport_gives_only_values_or_fathom_errors(
    served_url: str, answer: tuple[str, bytes]
) -> None:
    """Whatever the server answers, Client over the docs' transport gives the same."""
    call, CURRENT["reply"] = answer
    accept(call, outcome_blocking(served_url, call, timeout=SAFETY_TIMEOUT, transport="user"))
