"""The libraries' internals our speed and shutdown tricks lean on, pinned so an upgrade fails here.

Each test names the trick it guards and what to do if it fails. A failure
here does not mean the library is wrong: it means the trick must be looked at
again before the new version is allowed.

* attrs: ``_converter.read_event`` builds :class:`Event` by setting its slots,
  skipping an ``__init__`` that only stores.
* aiohttp: ``_http._aiohttp`` turns off a session's hidden resend
  (``_retry_connection``), wraps a borrowed session's ``_middlewares``, takes a
  borrowed session's loop from ``_loop``, and releases a dead loop's sessions
  by closing the sockets in the connector's ``_conns`` and ``_acquired``.
* asyncio: ``_http._aiohttp`` closes a selector transport's ``_sock`` itself once
  its loop is closed; ``_http._sessions`` and ``_limits`` ask ``_get_running_loop()``.
* anyio: the blocking ``Client`` enters the loop it captured under its
  ``BlockingPortal`` directly (``run_coroutine_threadsafe``), one thread hop
  per call instead of two.
* opentelemetry-api: ``_observe._otel.none_set`` tells that no tracer or meter
  provider is set from the API's globals (``trace._TRACER_PROVIDER``,
  ``metrics._internal._METER_PROVIDER``), which its own proxies read, since its
  getters cost an exception per absent environment variable on every call; and
  an unset meter provider is the API's ``_ProxyMeterProvider``.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import inspect
import pickle
import socket
import threading
import types
from datetime import datetime, timezone

import aiohttp
import anyio
import anyio.lowlevel
import attrs
import pytest
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_globals
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from fathom_events import Client, Currency, Event
from fathom_events import _converter as conv
from fathom_events._observe import _otel
from tests.support.helpers import SITE, TOKEN

UTC = timezone.utc
WHEN = datetime(2020, 8, 21, 15, 24, tzinfo=UTC)


# --- attrs: an Event built without __init__ --------------------------------------------


def test_events_init_only_stores_its_fields() -> None:
    """attrs' generated Event.__init__ stores each field in order and does nothing else.

    If this fails, attrs now does more in ``__init__`` (a hash cache, a hook):
    ``read_event`` must do it too, or call ``Event(...)``.
    """
    tree = ast.parse(inspect.getsource(Event.__init__))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    stored: list[str] = []
    for statement in function.body:
        match statement:
            case ast.Assign(targets=[ast.Name(id="_setattr")]):
                continue  # the bound setter it stores with
            case ast.Expr(
                value=ast.Call(
                    func=ast.Name(id="_setattr"),
                    args=[ast.Constant(value=str(name)), ast.Name(id=argument)],
                )
            ) if argument == name:
                stored.append(name)
            case _:
                pytest.fail(f"Event.__init__ does more than store: {ast.unparse(statement)}")
    assert stored == [field.name for field in attrs.fields(Event)]


def test_events_slots_are_exactly_its_fields() -> None:
    """Each field is a plain slot (a member descriptor), and no other state needs setting."""
    for field in attrs.fields(Event):
        assert type(Event.__dict__[field.name]) is types.MemberDescriptorType
    extra = set(Event.__dict__["__slots__"]) - {field.name for field in attrs.fields(Event)}
    assert extra <= {"__weakref__"}


@pytest.mark.parametrize("currency", [None, Currency.EURO, "doubloon"])
def test_an_event_read_is_the_event_init_builds(currency: Currency | str | None) -> None:
    """read_event's Event equals, hashes, prints, pickles, copies and evolves as Event(...)."""
    raw = currency.value if isinstance(currency, Currency) else currency
    read = conv.read_event(
        {"id": "A", "name": "Signed up", "currency": raw, "created_at": "2020-08-21 15:24:00"}
    )
    built = Event("A", "Signed up", currency, WHEN)
    assert type(read) is Event
    assert read == built
    assert hash(read) == hash(built)
    assert repr(read) == repr(built)
    assert attrs.asdict(read) == attrs.asdict(built)
    assert pickle.loads(pickle.dumps(read)) == built  # noqa: S301 - our own bytes
    assert copy.deepcopy(read) == built
    assert attrs.evolve(read, name="B") == attrs.evolve(built, name="B")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        read.name = "B"  # type: ignore[misc]


# --- aiohttp and asyncio: a session's private parts ------------------------------------


async def test_aiohttp_still_has_the_private_attributes_we_rely_on() -> None:
    """aiohttp keeps _middlewares, _retry_connection and _loop (else: the transport must follow)."""

    async def noop(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        return await handler(request)

    async with aiohttp.ClientSession(middlewares=(noop,)) as session:
        assert tuple(session._middlewares) == (noop,)
        assert session._retry_connection is True
        assert session._loop is asyncio.get_running_loop()


async def test_a_connectors_pool_is_where_we_look_for_its_sockets(base_url: str) -> None:
    """A connection in use is in _acquired, an idle one in _conns as (protocol, time), over a
    selector transport whose socket is _sock (else: _http._aiohttp._let_go must follow)."""
    in_use: list[set[object]] = []

    async def headers_sent(session: aiohttp.ClientSession, *_: object) -> None:
        assert isinstance(session.connector, aiohttp.TCPConnector)
        in_use.append(set(session.connector._acquired))

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with session.get(f"{base_url}/sites/{SITE}/events") as response:
            await response.read()  # then the connection goes back to the pool
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        pooled = [entry for pool in connector._conns.values() for entry in pool]
        assert len(pooled) == 1
        protocol, when = pooled[0]
        assert isinstance(when, float)
        assert in_use == [{protocol}]
        assert not connector._acquired
        sock = protocol.transport._sock  # type: ignore[union-attr]
        assert isinstance(sock, socket.socket)
        shown = protocol.transport.get_extra_info("socket")  # type: ignore[union-attr]
        assert sock.fileno() == shown.fileno()


async def test_asyncio_still_tells_the_running_loop_cheaply() -> None:
    """asyncio._get_running_loop() is the running loop here, and None where no loop runs."""
    assert asyncio._get_running_loop() is asyncio.get_running_loop()
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(asyncio._get_running_loop()))
    thread.start()
    thread.join()
    assert seen == [None]


# --- anyio: the loop under the blocking client's portal --------------------------------


def test_the_loop_captured_under_the_portal_is_the_portals_own() -> None:
    """The portal's calls run in the loop the Client enters directly, and anyio works there.

    If this fails, anyio's ``BlockingPortal`` no longer runs its calls in the
    loop it was made in: the blocking client must go back to
    ``portal.start_task_soon`` (one more thread hop per call).
    """
    with Client(TOKEN, "http://127.0.0.1:9/v1") as client:  # nothing is sent
        held = client._portal()
        loop = held.portal.call(asyncio.get_running_loop)

        async def entered_directly() -> tuple[asyncio.AbstractEventLoop, list[str]]:
            done: list[str] = []
            limiter = anyio.CapacityLimiter(1)  # what bulk work uses, in this same way

            async def one(name: str) -> None:
                async with limiter:
                    await anyio.lowlevel.checkpoint()
                    done.append(name)

            with anyio.fail_after(5):  # a hang guard: nothing here waits for real
                async with anyio.create_task_group() as group:
                    group.start_soon(one, "first")
                    group.start_soon(one, "second")
            return asyncio.get_running_loop(), sorted(done)

        assert loop is held._loop
        assert held.run(entered_directly) == (loop, ["first", "second"])


def test_the_two_ways_to_tell_no_provider_is_set_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's globals (read once a call) and its getters tell alike whether a tracer or a
    meter provider is set. If this fails, point _otel.none_set at _none_set_publicly."""
    assert _otel.none_set is _otel._none_set_in_globals
    assert _otel._none_set_in_globals() is _otel._none_set_publicly() is True
    tracing = TracerProvider(shutdown_on_exit=False)
    with monkeypatch.context() as patched:
        patched.setattr(trace, "_TRACER_PROVIDER", tracing)
        assert _otel._none_set_in_globals() is _otel._none_set_publicly() is False
    metering = MeterProvider(shutdown_on_exit=False)
    with monkeypatch.context() as patched:
        patched.setattr(metrics_globals, "_METER_PROVIDER", metering)
        assert _otel._none_set_in_globals() is _otel._none_set_publicly() is False
    assert _otel._none_set_in_globals() is True
