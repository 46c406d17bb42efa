"""AsyncClient over real loopback HTTP against FakeFathom: every endpoint, every error class."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import datetime, timezone

import aiohttp
import pytest

from fathom_events import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    Currency,
    DeletedEvent,
    Event,
    EventPage,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    UnprocessableEntityError,
    __version__,
)
from fathom_events.testing import FakeFathom, Fault

from .helpers import SITE, TOKEN, FakeTime

NO_RETRY = RetryPolicy(max_retries=0)


async def test_every_request_sends_auth_accept_and_user_agent(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """Each request carries the bearer token, Accept: application/json and our User-Agent."""
    await client.events.list(SITE)
    await client.events.create(SITE, "Signed up")
    for request in fake.requests:
        assert request.header("Authorization") == f"Bearer {TOKEN}"
        assert request.header("Accept") == "application/json"
        assert (request.header("User-Agent") or "").startswith(f"fathom-events/{__version__} ")
    assert fake.requests[1].header("Content-Type") == "application/json"


async def test_create_get_update_delete_round_trip(client: AsyncClient, fake: FakeFathom) -> None:
    """Create, get, update and delete reach the server and come back as typed objects."""
    created = await client.events.create(SITE, "Purchased", currency=Currency.EURO)
    assert isinstance(created, Event)
    assert (created.name, created.currency) == ("Purchased", Currency.EURO)
    assert created.created_at.tzinfo == timezone.utc
    assert fake.requests[-1].json == {"name": "Purchased", "currency": "euro"}

    fetched = await client.events.get(SITE, created.id)
    assert (fetched.id, fetched.name, fetched.currency) == (created.id, "Purchased", None)

    renamed = await client.events.update(SITE, created.id, name="Purchased (live)")
    assert renamed.name == "Purchased (live)"
    assert fake.requests[-1].json == {"name": "Purchased (live)"}
    assert fake.events(SITE)[0]["currency"] == "euro"

    gone = await client.events.delete(SITE, created.id)
    assert gone == DeletedEvent(created.id, deleted=True)
    assert fake.events(SITE) == []


async def test_create_without_currency_sends_only_the_name(
    client: AsyncClient, fake: FakeFathom
) -> None:
    """A create with no currency sends just the name; Fathom's default (dollar) comes back."""
    event = await client.events.create(SITE, "Signed up")
    assert fake.requests[-1].json == {"name": "Signed up"}
    assert event.currency is Currency.DOLLAR


async def test_update_currency_only(client: AsyncClient, fake: FakeFathom) -> None:
    """An update of the currency alone sends only the currency and keeps the name."""
    stored = fake.add_event(SITE, "Keep me")
    event = await client.events.update(SITE, stored["id"], currency="yen")
    assert fake.requests[-1].json == {"currency": "yen"}
    assert (event.name, event.currency) == ("Keep me", Currency.YEN)


async def test_list_pages_with_limit_and_cursors(client: AsyncClient, fake: FakeFathom) -> None:
    """List honours limit and both cursors, and reports has_more and url."""
    ids = [fake.add_event(SITE, f"e{i}")["id"] for i in range(5)]
    first = await client.events.list(SITE, limit=2)
    assert isinstance(first, EventPage)
    assert [e.id for e in first.data] == ids[:2]
    assert first.has_more is True
    assert first.url == f"/v1/sites/{SITE}/events"
    after = await client.events.list(SITE, limit=10, starting_after=ids[1])
    assert [e.id for e in after.data] == ids[2:]
    assert after.has_more is False
    before = await client.events.list(SITE, limit=2, ending_before=ids[4])
    assert [e.id for e in before.data] == [ids[3], ids[2]]
    assert fake.requests[-1].query == {"limit": "2", "ending_before": ids[4]}


async def test_default_list_sends_no_query(client: AsyncClient, fake: FakeFathom) -> None:
    """Without arguments list sends no query string and reads every documented field."""
    fake.add_event(SITE, "Only")
    page = await client.events.list(SITE)
    assert fake.requests[-1].query == {}
    assert [e.name for e in page.data] == ["Only"]
    assert page.data[0].currency is None


@pytest.mark.parametrize("event_id", ["a/b?c#d..", "..", ".", "x y%z", "ünï", "a&b=c"])
async def test_awkward_ids_reach_the_server_intact(
    client: AsyncClient, fake: FakeFathom, event_id: str
) -> None:
    """An id holding /, .., ?, # or % is one path segment and names exactly that event."""
    fake.add_event(SITE, "Odd", event_id=event_id)
    event = await client.events.get(SITE, event_id)
    assert event.id == event_id
    assert fake.requests[-1].path == f"/v1/sites/{SITE}/events/{event_id}"
    page = await client.events.list(SITE, starting_after=event_id)
    assert page.data == []
    assert fake.requests[-1].query == {"starting_after": event_id}


async def test_iso_timestamps_parse(fake: FakeFathom) -> None:
    """A server answering the older ISO 8601 created_at form is read as aware UTC."""
    iso = FakeFathom(created_at_format="iso")
    iso.add_event(SITE, "Old", created_at=datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc))
    async with iso.serve() as url, AsyncClient(TOKEN, url) as client:
        page = await client.events.list(SITE)
    assert page.data[0].created_at == datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc)


async def test_invalid_input_sends_nothing(client: AsyncClient, fake: FakeFathom) -> None:
    """Input the API would reject raises InvalidRequestError before any request."""
    cases = [
        client.events.create(SITE, ""),
        client.events.create(SITE, "x" * 256),
        client.events.create(SITE, "ok", currency="bitcoin"),
        client.events.list(SITE, limit=0),
        client.events.list(SITE, starting_after="a", ending_before="b"),
        client.events.update(SITE, "E"),
        client.events.get(SITE, ""),
        client.events.delete("", "E"),
    ]
    for call in cases:
        with pytest.raises(InvalidRequestError):
            await call
    assert fake.requests == []


async def test_wipe_warns_sends_once_and_raises_gone(client: AsyncClient, fake: FakeFathom) -> None:
    """wipe() is deprecated, sends the documented DELETE .../data once, and raises GoneError."""
    stored = fake.add_event(SITE, "Old")
    with pytest.warns(DeprecationWarning, match="delete"), pytest.raises(GoneError) as info:
        await client.events.wipe(SITE, stored["id"])
    assert info.value.status == 410
    assert "retired" in str(info.value)
    assert "delete()" in str(info.value)
    assert [(r.method, r.path) for r in fake.requests] == [
        ("DELETE", f"/v1/sites/{SITE}/events/{stored['id']}/data")
    ]


async def test_unknown_token_is_authentication_error(base_url: str) -> None:
    """A token the API does not know raises AuthenticationError (401)."""
    async with AsyncClient("wrong-token", base_url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.events.list(SITE)
    assert info.value.status == 401
    assert "wrong-token" not in str(info.value)


async def test_scopes_map_to_not_found_and_bad_request(fake: FakeFathom, base_url: str) -> None:
    """No access to a site is a NotFoundError; read-only access to a write is a BadRequestError."""
    fake.add_site("OTHER")
    fake.add_token("reader", [f"read:{SITE}"])
    async with AsyncClient("reader", base_url, retry=NO_RETRY) as client:
        assert (await client.events.list(SITE)).data == []
        with pytest.raises(NotFoundError):
            await client.events.list("OTHER")
        with pytest.raises(BadRequestError):
            await client.events.create(SITE, "Nope")
    assert fake.events(SITE) == []


async def test_missing_event_is_not_found(client: AsyncClient) -> None:
    """An event that does not exist raises NotFoundError with the API's message and the URL."""
    with pytest.raises(NotFoundError) as info:
        await client.events.get(SITE, "MISSING")
    assert info.value.method == "GET"
    assert info.value.url.endswith(f"/v1/sites/{SITE}/events/MISSING")
    assert info.value.message


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (410, GoneError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIStatusError),
    ],
)
async def test_error_statuses_are_typed(
    fake: FakeFathom, base_url: str, status: int, cls: type[APIStatusError]
) -> None:
    """Each error status from the server becomes its typed error with the body's message."""
    fake.inject(
        Fault.respond(status, json={"error": f"boom {status}"}, headers={"Retry-After": "2"})
    )
    async with AsyncClient(TOKEN, base_url, retry=NO_RETRY) as client:
        with pytest.raises(cls) as info:
            await client.events.list(SITE)
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.message == f"boom {status}"
    assert info.value.body == {"error": f"boom {status}"}
    assert info.value.headers["Retry-After"] == "2"
    assert info.value.retry_after == 2.0


async def test_validation_errors_from_the_server(fake: FakeFathom, base_url: str) -> None:
    """A 400 with field errors exposes them in .errors."""
    fake.inject(Fault.respond(400, json={"errors": {"name": ["The name has already been taken."]}}))
    async with AsyncClient(TOKEN, base_url, retry=NO_RETRY) as client:
        with pytest.raises(BadRequestError) as info:
            await client.events.create(SITE, "Dup")
    assert info.value.errors == {"name": ["The name has already been taken."]}


async def test_html_gateway_page_keeps_status(fake: FakeFathom, base_url: str) -> None:
    """An HTML 502 from a gateway is a ServerError with status 502 and a short excerpt."""
    fake.inject(Fault.html(502))
    async with AsyncClient(TOKEN, base_url, retry=NO_RETRY) as client:
        with pytest.raises(ServerError) as info:
            await client.events.get(SITE, "E")
    assert info.value.status == 502
    assert "Bad Gateway" in info.value.message
    assert len(info.value.message) < 300


@pytest.mark.parametrize("fault", [Fault.malformed_json(), Fault.truncated_json()])
async def test_unreadable_success_is_decode_error(
    fake: FakeFathom, base_url: str, fault: Fault
) -> None:
    """A 2xx whose body is not JSON of the documented shape is a ResponseDecodeError."""
    fake.inject(fault)
    async with AsyncClient(TOKEN, base_url, retry=NO_RETRY) as client:
        with pytest.raises((ResponseDecodeError, APIConnectionError)):
            await client.events.list(SITE)


async def test_wrong_shape_is_decode_error_quoting_the_problem(
    fake: FakeFathom, base_url: str
) -> None:
    """A 2xx JSON body missing a documented field names the field."""
    fake.inject(
        Fault.respond(200, json={"id": "A", "object": "event", "name": "n", "currency": None})
    )
    async with AsyncClient(TOKEN, base_url, retry=NO_RETRY) as client:
        with pytest.raises(ResponseDecodeError, match="created_at"):
            await client.events.get(SITE, "A")


async def test_huge_body_is_refused(fake: FakeFathom, base_url: str) -> None:
    """An answer over max_response_bytes raises ResponseTooLargeError instead of being read."""
    fake.inject(Fault.huge_body(3_000_000))
    async with AsyncClient(TOKEN, base_url, retry=NO_RETRY, max_response_bytes=1_000_000) as client:
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
            await client.events.list(SITE)


async def test_connection_refused_is_connection_error() -> None:
    """Nothing listening on the port is an APIConnectionError that says nothing was sent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncClient(TOKEN, f"http://127.0.0.1:{port}/v1", retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.list(SITE)
    assert info.value.request_sent is False


async def test_hang_is_timeout_error(fake: FakeFathom, base_url: str) -> None:
    """A server that never answers raises APITimeoutError once the attempt's timeout passes."""
    fake.inject(Fault.hang())
    async with AsyncClient(TOKEN, base_url, timeout=0.2, retry=NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.events.list(SITE)


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """token=None reads FATHOM_API_TOKEN; no token at all is a clear InvalidRequestError."""
    monkeypatch.setenv("FATHOM_API_TOKEN", "from-env")
    assert AsyncClient()._transport._headers["Authorization"] == "Bearer from-env"
    monkeypatch.delenv("FATHOM_API_TOKEN")
    with pytest.raises(InvalidRequestError, match="FATHOM_API_TOKEN") as info:
        AsyncClient()
    assert info.value.field == "token"


@pytest.mark.parametrize("token", ["", "  ", "a\nb", 42])
def test_malformed_tokens_rejected(token: object) -> None:
    """An empty token, or one that could break the header, is refused at construction."""
    with pytest.raises(InvalidRequestError, match="token"):
        AsyncClient(token)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/v1",
        "ftp://x/v1",
        "not a url",
        "https://u:p@x/v1",
        "https://x/v1?t=1",
    ],
)
def test_unsafe_base_urls_rejected(url: str) -> None:
    """Plain http to a non-loopback host, odd schemes and URLs with credentials are refused."""
    with pytest.raises(InvalidRequestError, match="base_url"):
        AsyncClient(TOKEN, url)


def test_insecure_http_needs_explicit_consent() -> None:
    """allow_insecure_http=True permits http:// to another host; loopback needs no consent."""
    assert AsyncClient(TOKEN, "http://api.example.com/v1/", allow_insecure_http=True).base_url == (
        "http://api.example.com/v1"
    )
    assert AsyncClient(TOKEN, "http://localhost:8080/v1").base_url == "http://localhost:8080/v1"
    assert AsyncClient(TOKEN, "http://[::1]:8080/v1").base_url == "http://[::1]:8080/v1"


async def test_token_never_in_repr_or_errors(fake: FakeFathom, base_url: str) -> None:
    """The token appears in no repr and no error message."""
    secret = "s3cr3t-token-value"
    fake.add_token(secret, ["*"])
    fake.inject(Fault.html(500))
    async with AsyncClient(secret, base_url, retry=NO_RETRY) as client:
        texts = [repr(client), repr(client._transport), repr(client.events)]
        with pytest.raises(ServerError) as info:
            await client.events.list(SITE)
        texts += [str(info.value), repr(info.value), json.dumps(info.value.headers)]
    assert not [t for t in texts if secret in t]


async def test_one_session_for_many_calls(client: AsyncClient) -> None:
    """The client makes one session and reuses it for every request."""
    await client.events.list(SITE)
    session = client._transport._session
    await client.events.list(SITE)
    await client.events.create(SITE, "x")
    assert client._transport._session is session
    assert session is not None
    assert not session.closed


async def test_close_closes_owned_session_and_refuses_calls(base_url: str) -> None:
    """aclose() closes the session we made; later calls raise ClientClosedError."""
    client = AsyncClient(TOKEN, base_url)
    await client.events.list(SITE)
    session = client._transport._session
    await client.aclose()
    assert session is not None
    assert session.closed
    assert client.closed
    with pytest.raises(ClientClosedError):
        await client.events.list(SITE)
    await client.aclose()  # idempotent


async def test_borrowed_session_is_used_and_left_open(base_url: str, fake: FakeFathom) -> None:
    """A session the user passes in is used for requests and never closed by the client."""
    async with aiohttp.ClientSession(headers={"X-Mine": "yes"}) as session:
        async with AsyncClient(TOKEN, base_url, session=session) as client:
            await client.events.list(SITE)
        assert not session.closed
        assert fake.requests[-1].header("X-Mine") == "yes"


async def test_with_options_shares_session_and_overrides(client: AsyncClient) -> None:
    """with_options returns a client sharing the session with the chosen retry and timeout."""
    await client.events.list(SITE)
    twin = client.with_options(max_retries=0, timeout=1.5)
    assert twin.retry_policy.max_retries == 0
    assert client.retry_policy.max_retries == 3
    assert twin._options.timeouts.total == 1.5
    await twin.events.list(SITE)
    assert twin._transport._session is client._transport._session
    await twin.aclose()
    assert not client.closed


async def test_close_during_a_retry_wait_is_client_closed(
    fake: FakeFathom, base_url: str, fake_time: FakeTime
) -> None:
    """A call whose client is closed while it waits to retry raises ClientClosedError."""
    fake.inject(Fault.rate_limited("5"))
    client = AsyncClient(TOKEN, base_url, clock=fake_time.clock, sleep=fake_time.sleep)
    original_sleep = fake_time.sleep

    async def close_while_waiting(seconds: float) -> None:
        await client.aclose()
        await original_sleep(seconds)

    client._gate.sleep = close_while_waiting
    with pytest.raises(ClientClosedError):
        await client.events.list(SITE)
    assert len(fake.requests) == 1


async def test_borrowed_session_gets_our_timeout(fake: FakeFathom, base_url: str) -> None:
    """A session the user passes in still has each attempt bounded by the client's timeout."""
    fake.inject(Fault.hang())
    async with aiohttp.ClientSession() as session:  # aiohttp's own default is 5 minutes
        client = AsyncClient(TOKEN, base_url, timeout=0.2, session=session, retry=NO_RETRY)
        async with client:
            with pytest.raises(APITimeoutError):  # not the guard's TimeoutError
                await asyncio.wait_for(client.events.list(SITE), 5)
