"""The transport seam: ``transport=`` on both faces, and ``MemoryTransport`` answering in memory."""

from __future__ import annotations

import ast
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import aiohttp
import anyio.lowlevel
import pytest

import fathom_events
from fathom_events import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    Client,
    Currency,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransportRequest,
)
from fathom_events.testing import FakeFathom, Fault, MemoryTransport, RecordedRequest
from tests.support.helpers import SITE, TOKEN, FakeTime
from tests.support.secrecy import assert_token_free

Reply = tuple[int, Mapping[str, str], bytes]
NO_RETRY = RetryPolicy(max_retries=0)
EVENT = {"id": "E1", "object": "event", "name": "Signed up", "created_at": "2024-01-01 10:00:00"}


def event_body(**fields: object) -> bytes:
    return json.dumps({**EVENT, **fields}).encode()


@pytest.fixture(name="memory")
def _memory(fake: FakeFathom) -> MemoryTransport:
    return MemoryTransport(fake)


@pytest.fixture(name="mem_client")
async def _mem_client(memory: MemoryTransport, fake_time: FakeTime) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        TOKEN, transport=memory, clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        yield client


def answering(
    handler: Callable[[RecordedRequest], Reply | Awaitable[Reply]],
    *,
    retry: RetryPolicy = NO_RETRY,
    **options: object,
) -> AsyncClient:
    """An AsyncClient whose every request ``handler`` answers."""
    return AsyncClient(TOKEN, transport=MemoryTransport(handler), retry=retry, **options)  # type: ignore[arg-type]


# --- the fake, in memory ------------------------------------------------------------------


async def test_every_endpoint_works_against_the_fake_in_memory(
    fake: FakeFathom, mem_client: AsyncClient
) -> None:
    """Create, get, update, list and delete through MemoryTransport(fake) act on the fake."""
    created = await mem_client.events.create(SITE, "Signed up", Currency.EURO)
    assert (await mem_client.events.get(SITE, created.id)).name == "Signed up"
    renamed = await mem_client.events.update(SITE, created.id, name="Joined")
    assert renamed.name == "Joined"
    assert [event.id for event in (await mem_client.events.list(SITE)).data] == [created.id]
    await mem_client.events.delete(SITE, created.id)
    assert fake.events(SITE) == []
    assert [request.method for request in fake.requests] == ["POST", "GET", "POST", "GET", "DELETE"]


async def test_the_fake_hears_the_clients_token_and_headers(
    fake: FakeFathom, mem_client: AsyncClient
) -> None:
    """The recorded request carries the client's token, Accept and a JSON Content-Type."""
    await mem_client.events.create(SITE, "Signed up")
    sent = fake.requests[-1]
    assert sent.token == TOKEN
    assert sent.header("accept") == "application/json"
    assert sent.header("content-type") == "application/json"
    assert sent.path == f"/v1/sites/{SITE}/events"
    assert sent.json == {"name": "Signed up"}


async def test_a_wrong_token_is_refused_by_the_fake(memory: MemoryTransport) -> None:
    """The token given to the client is the one the fake judges: a wrong one is a 401."""
    async with AsyncClient("not-the-token", transport=memory, retry=NO_RETRY) as client:
        with pytest.raises(AuthenticationError):
            await client.events.list(SITE)


async def test_pagination_walks_every_page_in_memory(
    fake: FakeFathom, mem_client: AsyncClient
) -> None:
    """The paginator follows the fake's cursors through the memory transport to the end."""
    ids = [fake.add_event(SITE, f"Event {n}")["id"] for n in range(7)]
    walked = [event.id async for event in mem_client.events.paginate(SITE, page_size=3)]
    assert sorted(walked) == sorted(ids)
    assert len(fake.requests_for("GET")) == 3


async def test_an_unknown_event_is_not_found(mem_client: AsyncClient) -> None:
    """The fake's 404 reaches the client as NotFoundError, as over HTTP."""
    with pytest.raises(NotFoundError):
        await mem_client.events.get(SITE, "NOSUCHID")


async def test_a_rate_limit_fault_is_retried_after_its_retry_after(
    fake: FakeFathom, mem_client: AsyncClient, fake_time: FakeTime
) -> None:
    """A 429 with Retry-After: 2 is waited out (on the injected clock) and retried."""
    fake.inject(Fault.rate_limited("2"))
    await mem_client.events.list(SITE)
    assert fake_time.sleeps == [2.0]
    assert mem_client.retries == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.html(502), ServerError),
        (Fault.malformed_json(), ResponseDecodeError),
        (Fault.truncated_json(), ResponseDecodeError),
        (Fault.disconnect(), APIConnectionError),
    ],
    ids=["html-502", "malformed", "truncated", "disconnect"],
)
async def test_a_fault_on_a_create_is_reported_not_retried(
    fake: FakeFathom, mem_client: AsyncClient, fault: Fault, error: type[Exception]
) -> None:
    """A fault played in memory ends a create as the same fault over HTTP: typed, sent once."""
    fake.inject(fault, method="POST")
    with pytest.raises(error):
        await mem_client.events.create(SITE, "Signed up")
    assert len(fake.requests_for("POST")) == 1


async def test_a_huge_body_fault_is_refused_by_the_size_cap(fake: FakeFathom) -> None:
    """Fault.huge_body over max_response_bytes is ResponseTooLargeError in memory too."""
    fake.inject(Fault.huge_body(4096))
    async with answering(fake.answer, max_response_bytes=1024) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.events.list(SITE)


async def test_a_hang_fault_times_out(fake: FakeFathom, memory: MemoryTransport) -> None:
    """A hung answer is bounded by the client's timeout and ends as APITimeoutError."""
    fake.inject(Fault.hang())
    async with AsyncClient(TOKEN, transport=memory, timeout=0.01, retry=NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.events.list(SITE)


@pytest.mark.parametrize(
    "fault", [Fault.delay(0), Fault.trickle(10, 0)], ids=["delay-0", "trickle-no-pause"]
)
async def test_a_wait_that_fits_the_timeout_answers_whole(
    fake: FakeFathom, mem_client: AsyncClient, fault: Fault
) -> None:
    """A delay or trickle within the timeout ends with the real answer, read whole."""
    event = fake.add_event(SITE, "Signed up")
    fake.inject(fault)
    assert (await mem_client.events.get(SITE, event["id"])).name == "Signed up"
    assert fake.pending_faults() == 0


@pytest.mark.parametrize(
    "slow",
    [Fault.trickle(1, 1.0), "latency"],
    ids=["trickle", "latency"],
)
async def test_a_wait_past_the_timeout_times_out(
    fake: FakeFathom, memory: MemoryTransport, slow: Fault | str
) -> None:
    """A trickle or the fake's latency longer than the timeout ends as APITimeoutError."""
    if isinstance(slow, Fault):
        fake.inject(slow)
    else:
        fake.latency = 1.0
    async with AsyncClient(TOKEN, transport=memory, timeout=0.01, retry=NO_RETRY) as client:
        with pytest.raises(APITimeoutError):
            await client.events.list(SITE)


async def test_a_disconnect_after_the_action_has_acted(
    fake: FakeFathom, mem_client: AsyncClient
) -> None:
    """Fault.disconnect(after_action=True): the create took effect, the caller is told it may."""
    fake.inject(Fault.disconnect(after_action=True), method="POST")
    with pytest.raises(APIConnectionError) as info:
        await mem_client.events.create(SITE, "Signed up")
    assert info.value.may_have_been_applied
    assert [event["name"] for event in fake.events(SITE)] == ["Signed up"]


def test_reprs_name_the_parts(memory: MemoryTransport) -> None:
    """MemoryTransport's repr shows what answers and whether it is closed; the seam names it."""
    assert repr(memory).startswith("MemoryTransport(<FakeFathom")
    assert repr(memory).endswith("closed=False)")
    client = AsyncClient(TOKEN, transport=memory)
    assert repr(client._sender).startswith("Sender(MemoryTransport")


# --- a function's answers -------------------------------------------------------------------


async def test_a_function_answers_and_sees_the_request() -> None:
    """A handler's (status, headers, body) is decoded; it sees method, path, query, headers."""
    seen: list[RecordedRequest] = []

    def handler(request: RecordedRequest) -> Reply:
        seen.append(request)
        return 200, {"Content-Type": "application/json"}, event_body()

    async with answering(handler) as client:
        event = await client.events.get("SITE/1", "E1")
    assert event.id == "E1"
    [request] = seen
    assert (request.method, request.path) == ("GET", "/v1/sites/SITE/1/events/E1")
    assert request.raw_path == "/v1/sites/SITE%2F1/events/E1"
    assert request.token == TOKEN


async def test_an_async_function_answers() -> None:
    """A handler may be a coroutine function; its answer is awaited."""

    async def handler(request: RecordedRequest) -> Reply:
        await anyio.lowlevel.checkpoint()
        return 200, {}, event_body(name=request.method)

    async with answering(handler) as client:
        assert (await client.events.get(SITE, "E1")).name == "GET"


async def test_a_retry_after_header_is_read_in_any_case(fake_time: FakeTime) -> None:
    """A lower-case retry-after from a plain dict is honoured, as aiohttp's headers are."""
    replies = iter([(429, {"retry-after": "3"}, b"{}"), (200, {}, event_body())])
    async with answering(
        lambda _request: next(replies),
        retry=RetryPolicy(),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    ) as client:
        await client.events.get(SITE, "E1")
    assert fake_time.sleeps == [3.0]


async def test_a_long_retry_after_is_a_rate_limit_error() -> None:
    """A 429 asking for more than max_retry_after is RateLimitError with retry_after set."""
    async with answering(lambda _request: (429, {"Retry-After": "3600"}, b"{}")) as client:
        with pytest.raises(RateLimitError) as info:
            await client.events.get(SITE, "E1")
    assert info.value.retry_after == 3600


# --- what a given transport cannot do to the client ------------------------------------------


class Echo(Exception):  # noqa: N818 - a transport's own failure, holding what it was sent
    """A failure that keeps the request it failed on (and so the token)."""

    def __init__(self, request: RecordedRequest) -> None:
        super().__init__(f"could not send {request.headers}")
        self.request = request


def failing(exc: Callable[[RecordedRequest], BaseException]) -> Callable[[RecordedRequest], Reply]:
    def handler(request: RecordedRequest) -> Reply:
        raise exc(request)

    return handler


async def test_a_foreign_failure_is_a_token_free_connection_error() -> None:
    """An exception of the transport's own is APIConnectionError, naming it, holding no token."""
    async with answering(failing(Echo)) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.get(SITE, "E1")
    assert type(info.value) is APIConnectionError
    assert "Echo" in info.value.message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert_token_free(info.value, TOKEN)


async def test_a_foreign_failure_is_retried_on_a_read_not_on_a_create(fake_time: FakeTime) -> None:
    """Taken as a dropped connection: a GET is retried, a create is not and may have applied."""
    calls: list[str] = []

    def handler(request: RecordedRequest) -> Reply:
        calls.append(request.method)
        raise OSError("reset")

    async with answering(
        handler, retry=RetryPolicy(max_retries=2), clock=fake_time.clock, sleep=fake_time.sleep
    ) as client:
        with pytest.raises(APIConnectionError):
            await client.events.get(SITE, "E1")
        with pytest.raises(APIConnectionError) as info:
            await client.events.create(SITE, "Signed up")
    assert calls == ["GET", "GET", "GET", "POST"]
    assert info.value.may_have_been_applied


class Unprintable(Exception):  # noqa: N818 - a transport's own failure
    """A failure whose str raises."""

    def __str__(self) -> str:
        raise RuntimeError("no words")


async def test_a_failure_that_cannot_be_shown_is_named_by_its_class() -> None:
    """An exception whose str raises still becomes APIConnectionError, named by its class."""
    async with answering(failing(lambda _request: Unprintable())) as client:
        with pytest.raises(APIConnectionError, match=r"\(Unprintable\)"):
            await client.events.get(SITE, "E1")


async def test_a_timeout_error_is_an_api_timeout_error() -> None:
    """A transport's TimeoutError becomes APITimeoutError."""
    async with answering(failing(lambda _request: TimeoutError("slow"))) as client:
        with pytest.raises(APITimeoutError, match="timed out"):
            await client.events.get(SITE, "E1")


async def test_a_fathom_error_from_the_transport_passes_as_it_is() -> None:
    """A FathomError the transport raises (here: nothing was sent) reaches the caller unchanged."""
    refused = APIConnectionError("refused", method="GET", url="u")
    refused.request_sent = False
    async with answering(failing(lambda _request: refused)) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.get(SITE, "E1")
    assert info.value is refused


class Refusing:
    """A transport of the caller's own that refuses every request with a FathomError."""

    async def send(
        self, request: TransportRequest, _timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]:
        raise APIConnectionError("refused", method=request.method, url=request.url)

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_a_fathom_error_from_the_transport_passes_frames_free_of_the_token() -> None:
    """A transport's own error passes frames of ours that hold no token (its own: its business)."""
    async with AsyncClient(TOKEN, transport=Refusing(), retry=NO_RETRY) as client:
        with pytest.raises(APIConnectionError, match="refused") as info:
            await client.events.get(SITE, "E1")
    assert_token_free(info.value, TOKEN)


@pytest.mark.parametrize(
    "reply",
    [
        ("200", {}, b"{}"),
        (200, [("Content-Type", "application/json")], b"{}"),
        (200, {}, f"Bearer {TOKEN}"),
        (99, {}, b"{}"),
        (True, {}, b"{}"),
    ],
    ids=["status-str", "headers-list", "body-str", "status-99", "status-bool"],
)
async def test_an_answer_of_the_wrong_shape_is_a_connection_error(reply: object) -> None:
    """An answer that is not (int 100-599, mapping, bytes) is APIConnectionError saying so."""
    async with answering(lambda _request: reply) as client:  # type: ignore[arg-type, return-value]
        with pytest.raises(APIConnectionError, match=r"\(status, headers, body\)") as info:
            await client.events.get(SITE, "E1")
    assert_token_free(info.value, TOKEN)  # nor does a frame keep the answer it refused


async def test_a_handler_returning_no_tuple_is_a_connection_error_naming_it() -> None:
    """MemoryTransport says what a handler must return; the client reports it as a failure."""
    async with answering(lambda _request: b"{}") as client:  # type: ignore[arg-type, return-value]
        with pytest.raises(APIConnectionError, match="handler returns"):
            await client.events.get(SITE, "E1")


async def test_the_size_cap_holds_for_a_given_transport() -> None:
    """An answer longer than max_response_bytes is refused whatever the transport."""
    echo = f"Bearer {TOKEN}".ljust(101).encode()  # nor is what it quotes kept in a frame
    async with answering(lambda _request: (200, {}, echo), max_response_bytes=100) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.events.get(SITE, "E1")
    assert_token_free(info.value, TOKEN)


async def test_an_echoed_token_is_blotted_out_of_an_error() -> None:
    """A server quoting the Authorization header back: the error holds no token."""

    def handler(request: RecordedRequest) -> Reply:
        quoted = request.header("authorization") or ""
        return 400, {"X-Seen": quoted}, json.dumps({"error": f"bad {quoted}"}).encode()

    async with answering(handler) as client:
        with pytest.raises(fathom_events.BadRequestError) as info:
            await client.events.get(SITE, "E1")
    assert_token_free(info.value, TOKEN)


async def test_a_transport_cannot_change_the_next_requests_headers() -> None:
    """The headers a transport is handed are read-only: it cannot drop the token for later."""
    failures: list[Exception] = []

    class Meddler:
        async def send(self, request: TransportRequest, _timeouts: Timeouts, /) -> Reply:
            try:
                del request.headers["Authorization"]  # type: ignore[attr-defined]
            except TypeError as exc:
                failures.append(exc)
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            return 200, {}, event_body()

        async def aclose(self) -> None:
            pass

    async with AsyncClient(TOKEN, transport=Meddler()) as client:
        await client.events.get(SITE, "E1")
        await client.events.get(SITE, "E1")
    assert len(failures) == 2


def test_the_transport_request_repr_hides_the_token() -> None:
    """A TransportRequest's repr shows the header names, never the token."""
    request = TransportRequest("GET", "https://x/v1", {"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in repr(request)
    assert "Authorization" in repr(request)


# --- construction and closing ----------------------------------------------------------------


async def test_transport_and_session_are_exclusive(memory: MemoryTransport) -> None:
    """transport= with session= is InvalidRequestError naming transport; nothing is built."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidRequestError) as info:
            AsyncClient(TOKEN, transport=memory, session=session)
    assert info.value.field == "transport"
    assert "session=" in info.value.rule


@pytest.mark.parametrize("given", [object(), "http://elsewhere", aiohttp.ClientTimeout()])
def test_an_object_without_the_protocol_is_refused(given: object) -> None:
    """transport= without async send and aclose is InvalidRequestError naming what is missing."""
    with pytest.raises(InvalidRequestError, match="send or aclose") as info:
        AsyncClient(TOKEN, transport=given)  # type: ignore[arg-type]
    assert info.value.field == "transport"


def test_memory_transport_refuses_what_cannot_answer() -> None:
    """MemoryTransport takes a FakeFathom or a callable, nothing else."""
    with pytest.raises(TypeError, match="FakeFathom or a handler"):
        MemoryTransport("not a handler")  # type: ignore[arg-type]


class Counted:
    """A transport that answers through another and counts how often it is closed."""

    def __init__(self, inner: MemoryTransport) -> None:
        self.inner = inner
        self.closings = 0

    async def send(self, request: TransportRequest, timeouts: Timeouts, /) -> Reply:
        return await self.inner.send(request, timeouts)

    async def aclose(self) -> None:
        self.closings += 1


async def test_closing_the_client_closes_its_transport_once(memory: MemoryTransport) -> None:
    """aclose closes the given transport once, however often called; a twin's aclose does not."""
    transport = Counted(memory)
    client = AsyncClient(TOKEN, transport=transport)
    await client.events.list(SITE)
    await client.with_options(max_retries=0).aclose()
    closings = [transport.closings]
    await client.aclose()
    await client.aclose()
    closings.append(transport.closings)
    assert closings == [0, 1]
    assert client.closed


async def test_memory_transport_is_marked_closed_by_its_client(memory: MemoryTransport) -> None:
    """MemoryTransport.closed turns True when the client it was given to closes."""
    async with AsyncClient(TOKEN, transport=memory) as client:
        await client.events.list(SITE)
    assert memory.closed


def test_only_the_aiohttp_transport_imports_aiohttp_at_run_time() -> None:
    """Of the client's own modules, only _http/_aiohttp imports aiohttp outside TYPE_CHECKING."""
    package = Path(fathom_events.__file__).parent
    importers = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        # the command line and the test fake serve HTTP themselves: not the client's
        if "aiohttp" in runtime_imports(path)
        and path.relative_to(package).parts[0] not in {"_cli", "testing"}
    )
    assert importers == ["_http/_aiohttp.py"]


def runtime_imports(path: Path) -> set[str]:
    """The top-level packages ``path`` imports, leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for node in ast.walk(block)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


# --- the blocking face -------------------------------------------------------------------------


@pytest.fixture(name="blocking")
def _blocking(memory: MemoryTransport) -> Iterator[Client]:
    with Client(TOKEN, transport=memory, retry=NO_RETRY) as client:
        yield client


def test_the_blocking_client_works_in_memory(fake: FakeFathom, blocking: Client) -> None:
    """Client(transport=MemoryTransport(fake)) creates, lists and deletes on the fake."""
    created = blocking.events.create(SITE, "Signed up")
    assert [event.id for event in blocking.events.paginate(SITE)] == [created.id]
    blocking.events.delete(SITE, created.id)
    assert fake.events(SITE) == []


def test_the_blocking_client_reports_a_fault_typed(fake: FakeFathom, blocking: Client) -> None:
    """A fault played in memory reaches the blocking caller as the same typed error."""
    fake.inject(Fault.disconnect(), method="POST")
    with pytest.raises(APIConnectionError) as info:
        blocking.events.create(SITE, "Signed up")
    assert info.value.may_have_been_applied


def test_closing_the_blocking_client_closes_its_transport(memory: MemoryTransport) -> None:
    """Client.close closes the transport it was given."""
    client = Client(TOKEN, transport=memory)
    client.close()
    assert memory.closed


def test_the_blocking_client_refuses_transport_with_a_bad_partner() -> None:
    """The blocking face checks transport= before starting its thread, as it does every option."""
    with pytest.raises(InvalidRequestError, match="transport"):
        Client(TOKEN, transport=object())  # type: ignore[arg-type]
