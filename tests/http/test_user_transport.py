"""A transport of the user's own: the docs' httpx one, taken as they give it, and what it is owed.

The harness (tests/support/faces.py) runs the client-case table, the hostile, secrecy
and fault suites over the docs' "Writing your own transport"; this file checks the
block itself, and holds the precise tests of the promises the client was found to
break over such a transport (each xfail(strict=True) until the sender keeps it).
"""

from __future__ import annotations

import inspect
import socket
from typing import Any

import attrs
import pytest

import fathom_events
from fathom_events import (
    APIConnectionError,
    AsyncClient,
    AsyncTransport,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransportRequest,
)
from fathom_events.testing import FakeFathom, MemoryTransport, RecordedRequest
from tests.support.faces import (
    user_transport,
    user_transport_class,
)
from tests.support.helpers import SITE, TOKEN, FakeTime
from tests.support.readme import TRANSPORT_PAGE, python_blocks
from tests.support.secrecy import assert_token_free

NO_RETRY = RetryPolicy(max_retries=0)


def test_the_docs_block_is_one_transport_of_the_exported_contract() -> None:
    """The docs' page defines one transport, typed by the names fathom_events exports."""
    (block,) = python_blocks(TRANSPORT_PAGE)
    for name in ("AsyncTransport", "TransportRequest", "Timeouts"):
        assert name in fathom_events.__all__
    assert "TransportRequest" in block.source
    assert "Timeouts" in block.source
    made = user_transport_class()
    send = inspect.signature(made.send)  # type: ignore[attr-defined]
    assert [p.kind for p in send.parameters.values()][1:] == [
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_ONLY,
    ]
    assert inspect.iscoroutinefunction(made.send)  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(made.aclose)  # type: ignore[attr-defined]


def test_the_contract_has_what_the_docs_say() -> None:
    """The exported contract has the fields and methods the docs' page tells a writer of."""
    assert [field.name for field in attrs.fields(TransportRequest)] == [
        "method",
        "url",
        "headers",
        "body",
    ]
    assert [field.name for field in attrs.fields(Timeouts)] == ["total", "connect"]
    assert {"send", "aclose"} <= set(dir(AsyncTransport))
    section = TRANSPORT_PAGE.read_text(encoding="utf-8")
    for said in ("request.method", "request.url", "request.headers", "request.body"):
        assert f"`{said}`" in section
    for said in ("timeouts.total", "timeouts.connect", "request_sent", "aclose()"):
        assert said in section


async def test_the_docs_transport_sends_and_closes(fake: FakeFathom, base_url: str) -> None:
    """The docs' transport carries a create and a list to a served fake, and closes."""
    async with AsyncClient(TOKEN, base_url, transport=user_transport()) as client:
        created = await client.events.create(SITE, "Signed up")
        listed = await client.events.list(SITE)
    assert [event.id for event in listed.data] == [created.id]
    assert [request.method for request in fake.requests] == ["POST", "GET"]
    assert fake.requests[0].token == TOKEN


#: A transport that says precisely what went wrong, as the contract invites, written as a
#: user would. It is compiled under a file name of its own: secrecy.py does not look in the
#: frames of the tests' own files, and a user's transport is not one of them.
RAISES_ITS_OWN = """
from fathom_events import APITimeoutError


class RaisesItsOwn:
    def __init__(self, *, in_except):
        self.in_except = in_except

    async def send(self, request, timeouts, /):
        failure = APITimeoutError("timed out", method=request.method, url=request.url)
        if self.in_except:
            try:
                raise OSError(f"the stack failed sending {dict(request.headers)}")
            except OSError:
                raise failure
        raise failure

    async def aclose(self):
        pass
"""


def raises_its_own(*, in_except: bool) -> AsyncTransport:
    """A new transport of :data:`RAISES_ITS_OWN`, raising inside an ``except`` block or not."""
    names: dict[str, Any] = {"__name__": "user_transport"}
    exec(compile(RAISES_ITS_OWN, "/user/code/user_transport.py", "exec"), names)  # noqa: S102
    transport: AsyncTransport = names["RaisesItsOwn"](in_except=in_except)
    return transport


@pytest.mark.parametrize("in_except", [False, True], ids=["plain", "in-except"])
async def test_an_error_the_transport_raises_reaches_the_caller_alone(
    in_except: bool, fake_time: FakeTime
) -> None:
    """A FathomError the transport raises reaches the caller without its frames or context."""
    transport = raises_its_own(in_except=in_except)
    async with AsyncClient(TOKEN, transport=transport, retry=NO_RETRY, sleep=fake_time.sleep) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.events.create(SITE, "Signed up")
    assert_token_free(info.value, TOKEN)


async def test_error_headers_are_found_without_regard_to_case(fake_time: FakeTime) -> None:
    """An error's headers are found by any spelling of a name, whatever case the transport gave."""

    def lower_cased(_: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return 503, {"retry-after": "2", "content-type": "application/json"}, b'{"error": "busy"}'

    transport = MemoryTransport(lower_cased)
    async with AsyncClient(TOKEN, transport=transport, retry=NO_RETRY, sleep=fake_time.sleep) as c:
        with pytest.raises(ServerError) as info:
            await c.events.list(SITE)
    assert info.value.retry_after == 2.0
    assert info.value.headers["Retry-After"] == "2"
    assert info.value.headers["retry-after"] == "2"


async def test_a_create_refused_at_connect_is_retried_over_the_docs_transport(
    fake_time: FakeTime,
) -> None:
    """Over the docs' transport a refused connection says nothing was sent: a create retries."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncClient(
        TOKEN,
        f"http://127.0.0.1:{port}/v1",
        transport=user_transport(),
        retry=RetryPolicy(max_retries=2),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.events.create(SITE, "Signed up")
    assert info.value.request_sent is False
    assert info.value.attempts == 3
    assert info.value.may_have_been_applied is False
    assert len(fake_time.sleeps) == 2
