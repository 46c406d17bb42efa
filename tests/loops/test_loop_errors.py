"""Where the AsyncClient cannot work, it says so with a FathomError that names what works.

The refusal under trio runs over aiohttp and over the docs' own transport; the other
tests are about aiohttp sessions (made in another loop, lent, traced): aiohttp only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import aiohttp
import anyio
import pytest
import trio

from fathom_events import (
    AsyncClient,
    AsyncTransport,
    Client,
    FathomError,
    RateLimit,
    RetryPolicy,
    UnsupportedEventLoopError,
)
from fathom_events.testing import FakeFathom
from tests.support.faces import TRANSPORTS, user_transport
from tests.support.helpers import SITE, TOKEN
from tests.support.secrecy import assert_token_free


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_under_trio_every_entry_point_says_to_use_asyncio_or_a_thread(
    fake: FakeFathom, thread_url: str, transport: str
) -> None:
    """Under trio the async client raises UnsupportedEventLoopError, and what it names works."""
    made: list[AsyncTransport] = []

    def given() -> AsyncTransport | None:
        if transport == "aiohttp":
            return None
        made.append(user_transport())
        return made[-1]

    try:
        refused_under_trio(fake, thread_url, given)
    finally:
        for each in made:  # closed where it was used, should the test end early
            anyio.run(each.aclose, backend="trio")


def refused_under_trio(
    fake: FakeFathom, thread_url: str, given: Callable[[], AsyncTransport | None]
) -> None:
    """Every entry point refused under trio; the blocking client, from a thread, works."""
    # A rate limit of one request: the second call has to wait in the client's gate.
    client = AsyncClient(TOKEN, thread_url, rate_limit=RateLimit(1, 60), transport=given())
    errors: list[UnsupportedEventLoopError] = []

    async def main() -> list[str]:
        with pytest.raises(UnsupportedEventLoopError) as listing:
            await client.events.list(SITE)
        with pytest.raises(UnsupportedEventLoopError) as waiting:
            await client.events.get(SITE, "ABC")
        with pytest.raises(UnsupportedEventLoopError) as entering:
            async with AsyncClient(TOKEN, thread_url, transport=given()):
                pass
        with pytest.raises(UnsupportedEventLoopError) as pulling:
            await client.events.pull([SITE])
        with pytest.raises(UnsupportedEventLoopError) as walking:
            async for _ in client.events.paginate(SITE):
                pass
        errors.extend([listing.value, waiting.value, entering.value, pulling.value, walking.value])
        await client.aclose()
        # What the message recommends: the blocking client, from a worker thread.
        with Client(TOKEN, thread_url, transport=given()) as blocking:
            page = await trio.to_thread.run_sync(blocking.events.list, SITE)
        return [event.name for event in page.data]

    fake.add_event(SITE, "Signed up")
    assert anyio.run(main, backend="trio") == ["Signed up"]
    assert len(fake.requests) == 1  # only the blocking client's
    for error in errors:
        assert isinstance(error, FathomError)
        assert "asyncio" in str(error)
        assert "trio.to_thread.run_sync" in str(error)
        assert error.may_have_been_applied is False


def test_under_trio_no_frame_of_a_refusal_holds_another_loops_session(thread_url: str) -> None:
    """Refused under trio, a client with a session in an asyncio loop keeps it off the traceback."""
    client = AsyncClient(TOKEN, thread_url)
    loop = asyncio.new_event_loop()
    errors: list[UnsupportedEventLoopError] = []

    async def main() -> None:
        with pytest.raises(UnsupportedEventLoopError) as entering:
            async with client:
                pass
        with pytest.raises(UnsupportedEventLoopError) as pulling:
            await client.events.pull([SITE])
        errors.extend([entering.value, pulling.value])

    try:
        loop.run_until_complete(client.events.list(SITE))  # its session, our token in its headers
        anyio.run(main, backend="trio")
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    for error in errors:
        assert_token_free(error, TOKEN)


async def test_a_borrowed_session_awaited_from_another_loop_is_refused_before_sending(
    fake: FakeFathom, thread_url: str
) -> None:
    """A session= made in one loop, awaited from another, is refused with what to do instead."""
    async with aiohttp.ClientSession() as session:
        client = AsyncClient(TOKEN, thread_url, session=session)

        def in_another_loop() -> None:
            asyncio.run(client.events.create(SITE, "Signed up"))

        with pytest.raises(UnsupportedEventLoopError, match="without session=") as refused:
            await asyncio.to_thread(in_another_loop)
        assert refused.value.may_have_been_applied is False
        assert fake.requests == []
        await client.events.create(SITE, "Signed up")  # in its own loop it works
        await client.aclose()
        assert not session.closed


@pytest.fixture(name="foreign_future")
def _foreign_future() -> Iterator[asyncio.Future[None]]:
    """A future of an event loop other than the test's."""
    other = asyncio.new_event_loop()
    yield other.create_future()
    other.close()


@pytest.mark.parametrize(("write", "applied"), [(True, True), (False, False)])
async def test_a_send_cut_by_a_loop_mix_up_is_a_fathom_error(
    fake: FakeFathom,
    base_url: str,
    foreign_future: asyncio.Future[None],
    write: bool,
    applied: bool,
) -> None:
    """A request broken off by another loop's object is a FathomError; a write may have landed."""

    async def mixed_up(*_: object) -> None:
        await foreign_future  # a hook that waits on another loop's future: a RuntimeError

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(mixed_up)  # after the request went out and was answered
    policy = RetryPolicy(max_retries=2)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        AsyncClient(TOKEN, base_url, session=session, retry=policy) as client,
    ):
        call = client.events.create(SITE, "Signed up") if write else client.events.list(SITE)
        with pytest.raises(UnsupportedEventLoopError) as cut:
            await call
    error = cut.value
    assert type(error) is UnsupportedEventLoopError
    assert error.may_have_been_applied is applied
    assert error.attempts == 1  # not retried: it would only break again
    assert "another" in str(error)
    assert f"/sites/{SITE}/events" in str(error)
    # Named, not chained: its frames (aiohttp's, below ours) hold the request's headers.
    assert "RuntimeError" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_token_free(error, TOKEN)
    assert len(fake.requests) == 1
    assert len(fake.events(SITE)) == (1 if write else 0)


def test_the_error_is_a_runtime_error_too() -> None:
    """Code that caught the RuntimeError of a loop mix-up before still catches it."""
    assert issubclass(UnsupportedEventLoopError, FathomError)
    assert issubclass(UnsupportedEventLoopError, RuntimeError)
