"""The blocking Client over real loopback HTTP: the async tests' cases, and its own lifecycle.

The cases that hold on both faces are in client_cases.py; this file runs them on the
blocking face, and holds what only the blocking client has (its thread, Ctrl-C, fork).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import select
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import aiohttp
import attrs
import pytest

from fathom_events import (
    AsyncClient,
    AsyncEvents,
    AsyncSites,
    Client,
    ClientClosedError,
    Events,
    EventSpec,
    FathomError,
    GoneError,
    InvalidRequestError,
    RetryPolicy,
    ServerError,
    Sites,
    SyncReport,
)
from fathom_events.testing import FakeFathom, Fault
from tests.support.client_cases import CASES, Case
from tests.support.faces import Face, Served
from tests.support.helpers import SITE, TOKEN, FakeTime

NO_RETRY = RetryPolicy(max_retries=0)
PORTAL_THREAD = "fathom-events-portal"
WAIT = 5.0  # the most any poll here waits; each normally ends in milliseconds


def portal_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == PORTAL_THREAD]


def portal_thread_of(client: Client) -> threading.Thread:
    ident = client._portal().thread_id
    return next(thread for thread in threading.enumerate() if thread.ident == ident)


def eventually(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` briefly; True as soon as it holds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def skip_unless_ctrl_c_interrupts() -> None:
    """Skip the test where a SIGINT would not raise KeyboardInterrupt in the main thread.

    A test runner started in the background by a shell without job control
    (``cmd &``) inherits SIGINT ignored; so does a runner in a worker thread.
    """
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default KeyboardInterrupt handler here")


@contextmanager
def interrupt_main_when(condition: Callable[[], bool]) -> Iterator[list[bool]]:
    """Send SIGINT to the main thread once ``condition`` holds (as Ctrl-C would).

    ``_thread.interrupt_main()`` only sets a flag, which a thread blocked on a
    lock does not see until the lock is released; a real signal wakes it.
    Yields a list that holds True once the signal was sent.
    """
    skip_unless_ctrl_c_interrupts()
    sent: list[bool] = []
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if eventually(condition):
            sent.append(True)
            signal.pthread_kill(main, signal.SIGINT)

    timer = threading.Thread(target=interrupt, name="interrupter")
    timer.start()
    try:
        yield sent
    finally:
        timer.join()


# -- the surface: the same as the async client's ----------------------------------


def public_methods(cls: type) -> dict[str, Any]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


@pytest.mark.parametrize(
    ("async_face", "blocking_face", "expected"),
    [
        (
            AsyncEvents,
            Events,
            {"list", "get", "create", "update", "delete", "wipe", "paginate"}
            | {"pull", "plan", "apply", "sync"},
        ),
        (AsyncSites, Sites, {"list", "get", "paginate", "ids", "every"}),
    ],
)
def test_blocking_resources_mirror_async_ones(
    async_face: type, blocking_face: type, expected: set[str]
) -> None:
    """Events and Sites have exactly their async twins' public methods, parameters and docs."""
    async_methods = public_methods(async_face)
    blocking_methods = public_methods(blocking_face)
    assert sorted(blocking_methods) == sorted(async_methods)
    assert expected <= set(async_methods)
    assert_twins(async_methods, blocking_methods)


def test_blocking_token_mirrors_the_async_one() -> None:
    """Client.token has AsyncClient.token's parameters and docstring, and blocks."""
    assert_twins({"token": AsyncClient.token}, {"token": Client.token})


def assert_twins(async_methods: dict[str, Any], blocking_methods: dict[str, Any]) -> None:
    for name, async_method in async_methods.items():
        blocking_method = blocking_methods[name]
        async_signature = inspect.signature(async_method)
        blocking_signature = inspect.signature(blocking_method)
        assert blocking_signature.replace(return_annotation=inspect.Signature.empty) == (
            async_signature.replace(return_annotation=inspect.Signature.empty)
        ), name
        assert blocking_method.__doc__ == async_method.__doc__, name
        assert blocking_method.__name__ == name
        assert not inspect.iscoroutinefunction(blocking_method), name


def test_constructor_matches_async_client_without_session() -> None:
    """Client takes AsyncClient's parameters, kinds and defaults, except session."""
    async_parameters = dict(inspect.signature(AsyncClient).parameters)
    del async_parameters["session"]
    assert dict(inspect.signature(Client).parameters) == async_parameters


def test_one_portal_thread_for_the_client_life(
    sessions_made: list[aiohttp.ClientSession], sync_client: Client, fake: FakeFathom
) -> None:
    """Every call of one client runs on the same single portal thread, over the same session."""
    assert len(portal_threads()) == 1
    thread = portal_thread_of(sync_client)
    sync_client.events.list(SITE)
    for _ in range(3):
        sync_client.events.create(SITE, "x")
    assert portal_threads() == [thread]
    (session,) = sessions_made
    assert not session.closed


# -- the async tests' cases, blocking ------------------------------------------------


@pytest.fixture(name="face")
def _face(fake: FakeFathom, thread_url: str, fake_time: FakeTime, policy: RetryPolicy) -> Served:
    return Served(Face("blocking"), fake, thread_url, fake_time, policy)


@pytest.mark.parametrize("case", CASES)
async def test_client_case(case: Case, face: Served) -> None:
    """Each case of the table shared with AsyncClient holds on the blocking Client."""
    await case(face)


@pytest.mark.parametrize("case", CASES)
async def test_client_case_over_the_docs_transport(case: Case, face: Served) -> None:
    """Each case of the table holds on the blocking Client over the docs' transport (httpx)."""
    await case(attrs.evolve(face, face=Face("blocking", "user")))


def test_wipe_warning_points_at_the_caller(sync_client: Client, fake: FakeFathom) -> None:
    """The blocking wipe() warns once, from the caller's own line, not from the portal thread."""
    stored = fake.add_event(SITE, "Old")
    with pytest.warns(DeprecationWarning, match="delete") as caught, pytest.raises(GoneError):
        sync_client.events.wipe(SITE, stored["id"])
    assert len(caught) == 1
    assert caught[0].filename == __file__


def test_token_from_environment(
    monkeypatch: pytest.MonkeyPatch, thread_url: str, fake: FakeFathom
) -> None:
    """token=None reads FATHOM_API_TOKEN; no token at all fails before a thread starts."""
    monkeypatch.setenv("FATHOM_API_TOKEN", TOKEN)
    with Client(base_url=thread_url) as client:
        client.events.list(SITE)
    assert fake.requests[-1].token == TOKEN
    monkeypatch.delenv("FATHOM_API_TOKEN")
    with pytest.raises(InvalidRequestError, match="FATHOM_API_TOKEN") as info:
        Client()
    assert info.value.field == "token"
    assert portal_threads() == []


@pytest.mark.parametrize("token", ["", "  ", "a\nb", 42])
def test_malformed_tokens_rejected(token: object) -> None:
    """A bad token is refused at construction, before a portal thread is started."""
    with pytest.raises(InvalidRequestError, match="token"):
        Client(token)  # type: ignore[arg-type]
    assert portal_threads() == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_url": "http://api.example.com/v1"}, "base_url"),
        ({"base_url": "https://u:p@x/v1"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
    ],
)
def test_bad_arguments_rejected_before_a_thread_starts(kwargs: dict[str, Any], field: str) -> None:
    """Unsafe URLs and bad limits raise InvalidRequestError naming the field; no thread starts."""
    with pytest.raises(InvalidRequestError) as info:
        Client(TOKEN, **kwargs)
    assert info.value.field == field
    assert portal_threads() == []


def test_counters_follow_the_async_client(
    sync_client: Client, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """requests_sent and retries count what the blocking calls sent, retries included."""
    fake.inject(Fault.respond(503, json={"error": "busy"}))
    sync_client.events.list(SITE)
    sync_client.events.list(SITE)
    assert (sync_client.requests_sent, sync_client.retries) == (3, 1)
    assert len(fake_time.sleeps) == 1
    assert len(fake.requests) == 3


# -- lifecycle ---------------------------------------------------------------------


def test_close_closes_session_stops_thread_and_refuses_calls(
    sessions_made: list[aiohttp.ClientSession], thread_url: str
) -> None:
    """close() closes the session and ends the portal thread; close() again does nothing."""
    client = Client(TOKEN, thread_url)
    client.events.list(SITE)
    (session,) = sessions_made
    thread = portal_thread_of(client)
    client.close()
    assert session.closed
    assert client.closed
    assert not thread.is_alive()
    client.close()  # idempotent


def test_calls_after_close_raise_client_closed_error(thread_url: str, fake: FakeFathom) -> None:
    """Every method, paginator and with-block of a closed client raises ClientClosedError."""
    stored = fake.add_event(SITE, "x")
    with Client(TOKEN, thread_url) as client:
        made_before = client.events.paginate(SITE)
    events = client.events
    calls: list[Callable[[], object]] = [
        lambda: events.list(SITE),
        lambda: events.get(SITE, stored["id"]),
        lambda: events.create(SITE, "y"),
        lambda: events.update(SITE, stored["id"], name="z"),
        lambda: events.delete(SITE, stored["id"]),
        lambda: events.wipe(SITE, stored["id"]),
        lambda: list(events.paginate(SITE)),
        lambda: list(events.paginate(SITE).pages()),
        lambda: list(made_before),
        client.__enter__,
    ]
    for call in calls:
        with pytest.raises(ClientClosedError) as info:
            call()
        assert isinstance(info.value, FathomError)
        assert "closed" in str(info.value)
    assert fake.requests == []
    assert [event["name"] for event in fake.events(SITE)] == ["x"]


def test_close_during_a_call_fails_that_call_with_client_closed_error(
    thread_url: str, fake: FakeFathom, fake_time: FakeTime
) -> None:
    """Closing while another thread waits on a call ends that call with ClientClosedError."""
    fake.inject(Fault.hang())
    client = Client(TOKEN, thread_url, clock=fake_time.clock, sleep=fake_time.sleep)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.events.list(SITE)
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever it was
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert eventually(lambda: len(fake.requests) == 1)
    client.close()
    caller.join(WAIT)
    assert not caller.is_alive()
    assert [type(exc) for exc in outcome] == [ClientClosedError]
    assert len(fake.requests) == 1  # nothing was retried on the closed session


def test_many_threads_share_one_client(
    sessions_made: list[aiohttp.ClientSession], sync_client: Client, fake: FakeFathom
) -> None:
    """Sixteen threads calling one Client at once each get their own answers, over one portal."""
    start = threading.Barrier(16)

    def work(number: int) -> list[tuple[str, str]]:
        start.wait(WAIT)
        done = []
        for round_ in range(4):
            created = sync_client.events.create(SITE, f"t{number}-{round_}")
            fetched = sync_client.events.get(SITE, created.id)
            done.append((created.id, fetched.name))
        return done

    with ThreadPoolExecutor(16) as pool:
        results = [pair for pairs in pool.map(work, range(16)) for pair in pairs]
    assert [name for _, name in results] == [f"t{n}-{r}" for n in range(16) for r in range(4)]
    assert sorted(event_id for event_id, _ in results) == sorted(
        event["id"] for event in fake.events(SITE)
    )
    assert len(fake.events(SITE)) == 64
    assert sync_client.requests_sent == 128
    assert len(portal_threads()) == 1
    assert len(sessions_made) == 1  # one session for every thread's calls


def test_keyboard_interrupt_cancels_the_call_inside_the_portal(
    sync_client: Client, fake: FakeFathom
) -> None:
    """Ctrl-C during a blocking call raises KeyboardInterrupt and cancels its portal task."""
    fake.inject(Fault.hang())
    with (
        interrupt_main_when(lambda: len(fake.requests) == 1) as sent,
        pytest.raises(KeyboardInterrupt),
    ):
        sync_client.events.list(SITE)
    assert sent == [True]
    loop = sync_client._portal()._loop
    # The call unwound before the interrupt reached us (the apply test below checks that
    # strictly); the task's own last bookkeeping step may still be finishing.
    assert eventually(lambda: not [t for t in asyncio.all_tasks(loop) if "tracked" in repr(t)])
    assert sync_client.events.list(SITE).data == []  # the client still works
    assert len(fake.requests) == 2
    assert sync_client.retries == 0  # the cancelled call was not retried


def test_keyboard_interrupt_during_apply_marks_the_report(
    sync_client: Client, fake: FakeFathom
) -> None:
    """Ctrl-C during a blocking apply returns only once the report says it was cut short."""
    plan = sync_client.events.plan({SITE: [EventSpec("One"), EventSpec("Two")]})
    fake.inject(Fault.hang(), method="POST")
    report = SyncReport()
    with (
        interrupt_main_when(lambda: len(fake.requests_for("POST")) == 1),
        pytest.raises(KeyboardInterrupt),
    ):
        sync_client.events.apply(plan, report=report)
    assert report.cancelled
    assert report.sites[SITE].interrupted == ["create 'One'"]


def test_with_options_shares_the_portal(sync_client: Client, fake: FakeFathom) -> None:
    """Client.with_options gives a twin on the same thread and session with its own policy."""
    fake.inject(Fault.respond(503, json={"error": "busy"}))
    twin = sync_client.with_options(max_retries=0, retry_ambiguous_creates=True)
    assert twin.retry_policy.max_retries == 0
    assert twin.retry_policy.retry_ambiguous_creates is True
    assert sync_client.retry_policy.max_retries == 3
    with pytest.raises(ServerError):
        twin.events.list(SITE)
    assert twin._async._sender is sync_client._async._sender
    twin.close()  # does nothing: the original owns the thread
    assert sync_client.events.list(SITE).data == []
    sync_client.close()
    assert twin.closed
    with pytest.raises(ClientClosedError):
        twin.events.list(SITE)


def test_keyboard_interrupt_drops_the_connection(fake: FakeFathom) -> None:
    """After Ctrl-C the server sees the interrupted request's connection closed."""
    skip_unless_ctrl_c_interrupts()  # before the server thread: a skip must not strand it
    got_request, hung_up = threading.Event(), threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_silently() -> None:
            listener.settimeout(WAIT)
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(WAIT)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += connection.recv(4096)
                got_request.set()
                while connection.recv(4096):  # never answer; wait for the client to hang up
                    pass
                hung_up.set()

        server = threading.Thread(target=serve_silently, name="silent-server")
        server.start()
        with Client(TOKEN, f"http://127.0.0.1:{port}/v1", retry=NO_RETRY) as client:
            with interrupt_main_when(got_request.is_set), pytest.raises(KeyboardInterrupt):
                client.events.list(SITE)
            assert hung_up.wait(WAIT)
        server.join(WAIT)


def test_works_when_called_from_a_running_event_loop(sync_client: Client, fake: FakeFathom) -> None:
    """Called synchronously from inside asyncio.run, the blocking client still works."""
    ids = [fake.add_event(SITE, f"e{i}")["id"] for i in range(3)]

    async def main() -> tuple[list[str], str]:
        asyncio.get_running_loop()  # there is a loop running in this thread
        walked = [event.id for event in sync_client.events.paginate(SITE, page_size=2)]
        return walked, sync_client.events.get(SITE, ids[0]).name

    assert asyncio.run(main()) == (ids, "e0")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available")
def test_forked_child_gets_client_closed_error(sync_client: Client) -> None:
    """After os.fork() the child's calls raise ClientClosedError at once instead of hanging."""
    sync_client.events.list(SITE)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock the child:
        # that is the very case under test.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report, and leave without running any of pytest's teardown
        try:
            os.close(read_end)
            try:
                sync_client.events.list(SITE)
                outcome = "returned"
            except ClientClosedError as exc:
                outcome = f"ClientClosedError: {exc}"
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                outcome = type(exc).__name__
            sync_client.close()  # must not hang either
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], WAIT)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        outcome = os.read(read_end, 4096).decode() if ready else "hung"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert outcome.startswith("ClientClosedError: "), outcome
    assert "fork" in outcome
    assert sync_client.events.list(SITE).data == []  # the parent's client is untouched


def test_collected_unclosed_client_releases_portal_and_warns(
    sessions_made: list[aiohttp.ClientSession], thread_url: str
) -> None:
    """A collected unclosed Client warns ResourceWarning, closes its session, ends its thread."""
    client = Client(TOKEN, thread_url)
    client.events.list(SITE)
    (session,) = sessions_made
    thread = portal_thread_of(client)
    with pytest.warns(ResourceWarning, match="unclosed Client"):  # noqa: PT031 - drop, then collect
        del client
        gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert session.closed


def test_client_collected_on_its_own_portal_thread_is_still_released(thread_url: str) -> None:
    """A Client collected by a gc pass on its portal thread still ends that thread and warns."""
    client = Client(TOKEN, thread_url)
    portal = client._portal()
    thread = portal_thread_of(client)
    with pytest.warns(ResourceWarning, match="unclosed Client"):  # noqa: PT031 - drop, then collect
        del client
        portal.portal.call(gc.collect)
    thread.join(WAIT)
    assert not thread.is_alive()
    assert eventually(lambda: not [t for t in threading.enumerate() if t.name.startswith("fathom")])
