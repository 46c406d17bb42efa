"""Bad connection settings and unencodable text are refused up front, naming the field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from fathom_events import (
    AsyncClient,
    Client,
    EventSpec,
    InvalidRequestError,
    RateLimit,
    RetryPolicy,
)
from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, TOKEN, authorization_sent

BAD_BASE_URLS = [
    "http://127.0.0.1:99999/v1",  # port out of range
    "http://127.0.0.1:abc/v1",  # port not a number
    "http://127.0.0.1:-1/v1",
    "https://api.usefathom.com\\v1",  # a backslash: parsers disagree on where the path starts
    "https://api.usefathom.com\\@evil.example/v1",
    " https://api.usefathom.com/v1",
    "https://api.usefathom.com/v1 ",
    "https://api.usefathom.com/v1\n",
    "https://api.use fathom.com/v1",
    "https://api.usefathom.com/v\t1",
    "https://api.usefathom.com/v\x001",
    "https://api.usefathom.com/v\x7f1",
    "https://api.usefathom.com/v\ud8001",
    "https:///v1",
    "https://:443/v1",
]


@pytest.mark.parametrize("url", BAD_BASE_URLS)
@pytest.mark.parametrize("make", [AsyncClient, Client], ids=["async", "blocking"])
def test_bad_base_url_is_refused_at_construction(
    url: str, make: Callable[..., AsyncClient | Client]
) -> None:
    """A base URL with a bad port, a backslash, whitespace or a control character: base_url."""
    with pytest.raises(InvalidRequestError) as info:
        make(TOKEN, url)
    assert info.value.field == "base_url"


BAD_TOKENS = [
    "tok en",  # whitespace inside would change what the header says
    "tok\ten",
    "tok\x7fen",
    "tok\x1b[2Jen",
    "tok\x00en",
    "tök",  # HTTP headers carry bytes; a non-ASCII token would be re-encoded, i.e. altered
    "tok\ud800en",  # a lone surrogate cannot be encoded at all
    "tok\u00a0en",  # a no-break space
]


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("make", [AsyncClient, Client], ids=["async", "blocking"])
def test_token_must_be_printable_ascii(
    token: str, make: Callable[..., AsyncClient | Client]
) -> None:
    """A token holding whitespace, a control or a non-ASCII character is refused, unshown."""
    with pytest.raises(InvalidRequestError) as info:
        make(token, "http://127.0.0.1:1/v1")
    assert info.value.field == "token"
    assert token not in str(info.value)
    assert token not in repr(info.value)


async def test_a_good_token_is_sent_unaltered() -> None:
    """Every printable ASCII character is allowed in a token and kept as given."""
    token = "".join(chr(c) for c in range(0x21, 0x7F))
    assert await authorization_sent(token) == f"Bearer {token}"


LONE = "bad\ud800id"


def _calls(
    client: AsyncClient,
) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    events = client.events
    return [
        ("site_id", lambda: events.list(LONE)),
        ("starting_after", lambda: events.list(SITE, starting_after=LONE)),
        ("ending_before", lambda: events.list(SITE, ending_before=LONE)),
        ("event_id", lambda: events.get(SITE, LONE)),
        ("name", lambda: events.create(SITE, LONE)),
        ("name", lambda: events.update(SITE, "ABCDEFGH", name=LONE)),
        ("event_id", lambda: events.delete(SITE, LONE)),
        ("site_ids", lambda: events.pull([SITE, LONE])),
        ("desired", lambda: events.plan({LONE: []})),
    ]


async def test_lone_surrogates_are_refused_before_sending(
    fake: FakeFathom, client: AsyncClient
) -> None:
    """A name or id that cannot be encoded as UTF-8 is InvalidRequestError; nothing is sent."""
    for field, call in _calls(client):
        with pytest.raises(InvalidRequestError) as info:
            await call()
        assert info.value.field == field
        assert "Unicode" in info.value.rule
    assert fake.requests == []


def test_lone_surrogates_are_refused_by_the_blocking_client(
    fake: FakeFathom, sync_client: Client
) -> None:
    """The blocking twin refuses the same text with the same error, sending nothing."""
    with pytest.raises(InvalidRequestError, match="site_id"):
        sync_client.events.list(LONE)
    with pytest.raises(InvalidRequestError, match="name"):
        sync_client.events.create(SITE, LONE)
    assert fake.requests == []


def test_event_spec_refuses_a_lone_surrogate() -> None:
    """A sync spec's name must be encodable too, checked when the spec is made."""
    with pytest.raises(InvalidRequestError, match="name"):
        EventSpec(LONE)


def test_valid_non_ascii_text_is_accepted() -> None:
    """Any valid Unicode (accents, CJK, emoji) is a fine name; only broken text is refused."""
    assert EventSpec("Café 注册 🎉").name == "Café 注册 🎉"


HUGE = 10**5000  # its repr raises ValueError (more than 4,300 digits)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: AsyncClient(TOKEN, "http://127.0.0.1:1/v1", timeout=HUGE), "timeout"),
        (lambda: AsyncClient(TOKEN, "http://127.0.0.1:1/v1", max_in_flight=-HUGE), "max_in_flight"),
        (
            lambda: AsyncClient(TOKEN, "http://127.0.0.1:1/v1", max_response_bytes=-HUGE),
            "max_response_bytes",
        ),
        (lambda: RetryPolicy(max_retries=-HUGE), "max_retries"),
        (lambda: RetryPolicy(backoff_base=-HUGE), "backoff_base"),
        (lambda: RateLimit(-HUGE), "requests"),
        (lambda: EventSpec("x", currency=HUGE), "currency"),  # type: ignore[arg-type]
    ],
)
def test_a_value_too_big_to_print_is_still_a_clear_error(
    make: Callable[[], object], field: str
) -> None:
    """An argument whose repr would raise (a 5,000-digit int) still gets InvalidRequestError."""
    with pytest.raises(InvalidRequestError) as info:
        make()
    assert info.value.field == field
    assert "bits" in info.value.rule


async def test_bulk_arguments_too_big_to_print(client: AsyncClient) -> None:
    """Bulk work's own checks describe unprintable values too."""
    with pytest.raises(InvalidRequestError, match="concurrency"):
        await client.events.pull([SITE], concurrency=-HUGE)
    with pytest.raises(InvalidRequestError, match="max_events_per_site"):
        await client.events.pull([SITE], max_events_per_site=-HUGE)
    with pytest.raises(InvalidRequestError, match="desired"):
        await client.events.plan({SITE: [HUGE]})  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: RetryPolicy(jitter="half"), "jitter"),  # type: ignore[arg-type] # on purpose
        (lambda: RetryPolicy(deadline=float("inf")), "deadline"),
        (lambda: RetryPolicy(deadline=10**400), "deadline"),
        (lambda: AsyncClient(TOKEN, "http://127.0.0.1:1/v1", timeout=float("inf")), "timeout"),
        (
            lambda: AsyncClient(TOKEN, "http://127.0.0.1:1/v1", connect_timeout=10**400),
            "connect_timeout",
        ),
    ],
)
def test_numbers_must_be_finite_numbers(make: Callable[[], object], field: str) -> None:
    """A setting that is not a number, or not a finite one, is refused naming the field."""
    with pytest.raises(InvalidRequestError) as info:
        make()
    assert info.value.field == field
