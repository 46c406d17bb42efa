"""Checked by ``mypy --strict fathom_events tests/typing``, never run: the blocking face's types.

Each blocking method returns the plain type its async twin awaits to, and
takes the same parameters (a wrong argument is an error, pinned by an
``ignore`` that mypy would report as unused if the error went away).
"""

# ruff: noqa: INP001 - a loose file for mypy to check, deliberately not a package
from __future__ import annotations

from typing_extensions import assert_type

from fathom_events import (
    AsyncClient,
    AsyncPaginator,
    Client,
    DeletedEvent,
    Event,
    EventPage,
    EventSpec,
    PageLike,
    Paginator,
    PullResult,
    SyncPlan,
    SyncReport,
)


def blocking_methods_return_plain_types(client: Client) -> None:
    """Every blocking method returns what the async one awaits to, not an awaitable."""
    assert_type(client.events.list("SITE"), EventPage)
    assert_type(client.events.list("SITE", 10, starting_after="E"), EventPage)
    assert_type(client.events.get("SITE", "E"), Event)
    assert_type(client.events.create("SITE", "Signed up", currency="euro"), Event)
    assert_type(client.events.update("SITE", "E", name="Renamed"), Event)
    assert_type(client.events.delete("SITE", "E"), DeletedEvent)
    assert_type(client.events.wipe("SITE", "E"), None)


def blocking_paginator_yields_events(client: Client) -> None:
    """The blocking paginator is a Paginator of Event; items are Event, pages hold Events."""
    paginator = client.events.paginate("SITE", page_size=50, ending_before="E")
    assert_type(paginator, Paginator[Event])
    for event in paginator:
        assert_type(event, Event)
    for page in paginator.pages():
        assert_type(page, PageLike[Event])
        assert_type(page.data, list[Event])
        assert_type(page.has_more, bool)


def blocking_methods_keep_their_parameters(client: Client) -> None:
    """A wrong argument to a blocking twin is a type error, as it is for the async method."""
    client.events.get("SITE")  # type: ignore[call-arg]
    client.events.list("SITE", limit="10")  # type: ignore[arg-type]
    client.events.create("SITE", name=1)  # type: ignore[arg-type]
    client.events.paginate("SITE", page_sizes=5)  # type: ignore[call-arg]
    Client(session=None)  # type: ignore[call-arg]


async def async_methods_return_the_same_types(client: AsyncClient) -> None:
    """The async face awaits to the same types the blocking face returns."""
    assert_type(await client.events.list("SITE"), EventPage)
    assert_type(await client.events.get("SITE", "E"), Event)
    assert_type(await client.events.create("SITE", "Signed up"), Event)
    assert_type(await client.events.update("SITE", "E", currency="yen"), Event)
    assert_type(await client.events.delete("SITE", "E"), DeletedEvent)
    paginator = client.events.paginate("SITE")
    assert_type(paginator, AsyncPaginator[Event])
    async for event in paginator:
        assert_type(event, Event)
    async for page in paginator.pages():
        assert_type(page.data, list[Event])


def blocking_bulk_methods_return_plain_types(client: Client) -> None:
    """pull, plan and apply return their result types, not awaitables, on the blocking face."""
    pulled = client.events.pull(["SITE"])
    assert_type(pulled, PullResult)
    assert_type(pulled["SITE"], list[Event])
    plan = client.events.plan({"SITE": [EventSpec("Signed up")]}, prune=True)
    assert_type(plan, SyncPlan)
    assert_type(client.events.apply(plan), SyncReport)
    assert_type(client.events.sync({"SITE": [EventSpec("Signed up")]}, prune=True), SyncReport)
    assert_type(client.with_options(max_retries=0), Client)


def blocking_bulk_methods_take_the_per_site_cap(client: Client) -> None:
    """max_events_per_site reaches the blocking pull and plan, keyword only, as an int."""
    assert_type(client.events.pull(["SITE"], max_events_per_site=500), PullResult)
    assert_type(client.events.plan({"SITE": []}, max_events_per_site=500), SyncPlan)
    client.events.pull(["SITE"], max_events_per_site="500")  # type: ignore[arg-type]
    client.events.pull(["SITE"], None, None, 500)  # type: ignore[call-arg]
    assert_type(client.events.sync({"SITE": []}, max_events_per_site=500), SyncReport)
    client.events.sync({"SITE": []}, False, False, None, None, None)  # type: ignore[call-arg]
