"""A blocking Client called from its own event loop thread (a callback it runs) says so at once.

That thread runs the client's calls: a call made from it would wait for itself for good, and
every other thread's call would then wait behind it. Over real HTTP against FakeFathom.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fathom_events import Client, EventSpec, Progress, SyncPlan, UnsupportedEventLoopError
from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, TOKEN

CALLS: dict[str, Callable[[Client], object]] = {
    "events.list": lambda c: c.events.list(SITE),
    "events.get": lambda c: c.events.get(SITE, "ABCDEFGH"),
    "events.create": lambda c: c.events.create(SITE, "New"),
    "events.update": lambda c: c.events.update(SITE, "ABCDEFGH", name="New"),
    "events.delete": lambda c: c.events.delete(SITE, "ABCDEFGH"),
    "events.pull": lambda c: c.events.pull([SITE]),
    "events.plan": lambda c: c.events.plan({SITE: [EventSpec("New")]}),
    "events.apply": lambda c: c.events.apply(SyncPlan((), prune=False, set_currency=False)),
    "events.sync": lambda c: c.events.sync({SITE: [EventSpec("New")]}),
    "events.paginate": lambda c: list(c.events.paginate(SITE)),
    "sites.list": lambda c: c.sites.list(),
    "sites.get": lambda c: c.sites.get(SITE),
    "sites.ids": lambda c: c.sites.ids(),
    "sites.paginate": lambda c: list(c.sites.paginate()),
    "token": lambda c: c.token(refresh=True),
    "with_options": lambda c: c.with_options(timeout=1.0).events.list(SITE),
    "enter": lambda c: c.__enter__(),
    "close": lambda c: c.close(),
}


@pytest.fixture(name="client")
def _client() -> Iterator[Client]:
    fake = FakeFathom()
    fake.add_event(SITE, "Signed up", event_id="ABCDEFGH")
    with fake.serve_in_thread() as url, Client(TOKEN, url) as client:
        yield client


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_call_from_the_clients_own_thread_raises_at_once(
    client: Client, call: Callable[[Client], object]
) -> None:
    """Each method and paginator, called in an on_progress callback, raises a typed error."""
    raised: list[BaseException] = []

    def on_progress(_: Progress) -> None:
        try:
            call(client)
        except BaseException as error:
            raised.append(error)
            raise

    with pytest.raises(UnsupportedEventLoopError, match="its own event loop thread"):
        client.events.pull([SITE], on_progress=on_progress)
    assert [type(error) for error in raised] == [UnsupportedEventLoopError]
    # Nothing is left waiting: the client still answers, from this thread.
    assert [e.name for e in client.events.list(SITE).data] == ["Signed up"]
    assert not client.closed


def test_the_error_says_what_to_do_instead(client: Client) -> None:
    """The message names the thread and what works instead."""
    found: list[Any] = []

    def on_progress(_: Progress) -> None:
        try:
            client.events.list(SITE)
        except UnsupportedEventLoopError as error:
            found.append(error)

    client.events.pull([SITE], on_progress=on_progress)
    (error,) = found
    assert "would wait for itself" in str(error)
    assert "after the call returns" in str(error)
