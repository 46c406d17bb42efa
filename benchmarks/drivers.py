"""One driver per client under test, each doing the workloads' four operations.

Every driver can ``get`` one event, ``create`` one, ``walk`` a site (page
through it, holding one page at a time, and return how many events it saw),
``pull`` many sites (every event of every site held in memory at the end,
as ``events.pull`` returns them) and run a ``bulk`` job (W6: pull sites, then
sync them to a desired state). The drivers are written the way a person
would use each library; the raw ones are the floor: one shared session,
``json.loads``, no types, no checks beyond the status. The raw async bulk job
is the hand-written script a user would write instead of the library's: every
site started at once, an ``asyncio.Semaphore`` around each request.

Imports of the clients happen inside each driver, so that a worker process
loads only the library it measures.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from . import dataset
from .dataset import PAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fathom_events import EventSpec, PullResult, SyncReport

#: A bulk job's desired state, as the workload hands it out: (name, currency) per site.
Desired = dict[str, list[tuple[str, str | None]]]


class AsyncDriver(Protocol):
    """What the async workloads call."""

    async def get(self, site: str, event_id: str) -> object: ...
    async def create(self, site: str, name: str, currency: str) -> object: ...
    async def walk(self, site: str) -> int: ...
    async def pull(self, sites: list[str], concurrency: int) -> int: ...
    def desired_state(self, desired: Desired) -> Any: ...
    async def bulk(self, desired: Any, in_flight: int, sites_at_once: int) -> int: ...
    async def aclose(self) -> None: ...


class BlockingDriver(Protocol):
    """What the blocking workloads call (from one thread or many)."""

    def get(self, site: str, event_id: str) -> object: ...
    def create(self, site: str, name: str, currency: str) -> object: ...
    def walk(self, site: str) -> int: ...
    def pull(self, sites: list[str], concurrency: int) -> int: ...
    def desired_state(self, desired: Desired) -> Any: ...
    def bulk(self, desired: Any, in_flight: int, sites_at_once: int) -> int: ...
    def close(self) -> None: ...


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {dataset.TOKEN}", "Accept": "application/json"}


def _list_url(base_url: str, site: str, cursor: str | None) -> str:
    url = f"{base_url}/sites/{site}/events?limit={PAGE_SIZE}"
    return url if cursor is None else f"{url}&starting_after={cursor}"


def _next_cursor(page: dict[str, Any]) -> tuple[int, str | None]:
    """How many events a raw page holds, and the cursor after it (None: the end)."""
    data = page["data"]
    if not data or not page["has_more"]:
        return len(data), None
    return len(data), data[-1]["id"]


def raw_changes(
    base_url: str, site: str, existing: list[Any], wanted: list[tuple[str, str | None]]
) -> list[tuple[str, str, bytes | None]]:
    """The requests a hand-written sync sends to bring ``site`` to ``wanted``.

    Matched by name as the library's plan matches: creates first, then the
    currency updates, then deletes of events not wanted (the library's order).
    """
    by_name: dict[str, Any] = {}
    for event in existing:
        by_name.setdefault(event["name"], event)
    names = {name for name, _ in wanted}
    url = f"{base_url}/sites/{site}/events"
    changes: list[tuple[str, str, bytes | None]] = [
        ("POST", url, _body({"name": name, "currency": currency}))
        for name, currency in wanted
        if name not in by_name
    ]
    changes += [
        ("POST", f"{url}/{by_name[name]['id']}", _body({"currency": currency}))
        for name, currency in wanted
        if currency is not None and name in by_name
    ]
    changes += [("DELETE", f"{url}/{e['id']}", None) for e in existing if e["name"] not in names]
    return changes


def _body(fields: dict[str, str | None]) -> bytes:
    return json.dumps({key: value for key, value in fields.items() if value is not None}).encode()


class HTTPStatusError(Exception):
    """A raw driver got an answer other than 200."""


class _RawAsyncDriver:
    """What the raw async drivers share: the workloads over one ``_json(method, url, body)``."""

    _base_url: str

    async def _json(self, method: str, url: str, body: bytes | None = None) -> Any:
        raise NotImplementedError

    async def get(self, site: str, event_id: str) -> object:
        return await self._json("GET", f"{self._base_url}/sites/{site}/events/{event_id}")

    async def create(self, site: str, name: str, currency: str) -> object:
        body = json.dumps({"name": name, "currency": currency}).encode()
        return await self._json("POST", f"{self._base_url}/sites/{site}/events", body)

    async def _pages(
        self,
        site: str,
        into: list[Any] | None,
        send: Callable[[str, str], Awaitable[Any]] | None = None,
    ) -> int:
        send = self._json if send is None else send
        cursor: str | None = None
        count = 0
        while True:
            page = await send("GET", _list_url(self._base_url, site, cursor))
            if into is not None:
                into.extend(page["data"])
            seen, cursor = _next_cursor(page)
            count += seen
            if cursor is None:
                return count

    async def walk(self, site: str) -> int:
        return await self._pages(site, None)

    async def pull(self, sites: list[str], concurrency: int) -> int:
        return await _async_pull(sites, concurrency, self._pages)

    def desired_state(self, desired: Desired) -> Desired:
        return desired

    async def bulk(self, desired: Desired, in_flight: int, sites_at_once: int) -> int:
        """Pull every site, then list each again and send its changes.

        Written as a user would: every site's task started at once, a
        semaphore bounding the requests in flight (``sites_at_once`` is the
        library's knob, not this script's).
        """
        del sites_at_once
        slots = asyncio.Semaphore(in_flight)

        async def send(method: str, url: str, body: bytes | None = None) -> Any:
            async with slots:
                return await self._json(method, url, body)

        pulled: dict[str, list[Any]] = {site: [] for site in desired}
        await asyncio.gather(*(self._pages(site, pulled[site], send) for site in desired))

        async def sync(site: str) -> int:
            existing: list[Any] = []
            await self._pages(site, existing, send)
            changes = raw_changes(self._base_url, site, existing, desired[site])
            for method, url, body in changes:
                await send(method, url, body)
            return len(changes)

        changed = await asyncio.gather(*(sync(site) for site in desired))
        return sum(len(events) for events in pulled.values()) + sum(changed)


# --- the floor: raw aiohttp -----------------------------------------------------------------


class RawAiohttp(_RawAsyncDriver):
    """aiohttp with one session and ``json.loads``: what the library must not fall far behind."""

    def __init__(self, base_url: str, max_in_flight: int) -> None:
        import aiohttp  # noqa: PLC0415

        self._base_url = base_url
        self._session = aiohttp.ClientSession(
            headers=_auth(), connector=aiohttp.TCPConnector(limit=max_in_flight)
        )

    async def _json(self, method: str, url: str, body: bytes | None = None) -> Any:
        headers = None if body is None else {"Content-Type": "application/json"}
        async with self._session.request(method, url, data=body, headers=headers) as response:
            if response.status != 200:
                raise HTTPStatusError(response.status)
            return json.loads(await response.read())

    async def aclose(self) -> None:
        await self._session.close()


async def _async_pull(
    sites: list[str], concurrency: int, pages: Callable[[str, list[Any]], Any]
) -> int:
    found: dict[str, list[Any]] = {site: [] for site in sites}
    remaining = iter(sites)

    async def lane() -> None:
        for site in remaining:
            await pages(site, found[site])

    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(sites)))))
    return sum(len(events) for events in found.values())


# --- httpx ----------------------------------------------------------------------------------


class HttpxAsync(_RawAsyncDriver):
    """httpx.AsyncClient, its pool sized for the concurrency asked for."""

    def __init__(self, base_url: str, max_in_flight: int) -> None:
        import httpx  # noqa: PLC0415

        self._base_url = base_url
        limits = httpx.Limits(
            max_connections=max_in_flight, max_keepalive_connections=max_in_flight
        )
        self._client = httpx.AsyncClient(headers=_auth(), limits=limits)

    async def _json(self, method: str, url: str, body: bytes | None = None) -> Any:
        headers = None if body is None else {"Content-Type": "application/json"}
        response = await self._client.request(method, url, content=body, headers=headers)
        if response.status_code != 200:
            raise HTTPStatusError(response.status_code)
        return json.loads(response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


# --- requests -------------------------------------------------------------------------------


class Requests:
    """requests.Session: one per thread (a Session is not documented as thread-safe)."""

    def __init__(self, base_url: str, max_in_flight: int) -> None:
        import requests  # noqa: PLC0415

        del max_in_flight  # one connection per thread's session
        self._requests = requests
        self._base_url = base_url
        self._local = threading.local()
        self._sessions: list[Any] = []
        self._lock = threading.Lock()

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._requests.Session()
            session.headers.update(_auth())
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _json(self, method: str, url: str, body: bytes | None = None) -> Any:
        headers = None if body is None else {"Content-Type": "application/json"}
        response = self._session().request(method, url, data=body, headers=headers)
        if response.status_code != 200:
            raise HTTPStatusError(response.status_code)
        return json.loads(response.content)

    def get(self, site: str, event_id: str) -> object:
        return self._json("GET", f"{self._base_url}/sites/{site}/events/{event_id}")

    def create(self, site: str, name: str, currency: str) -> object:
        body = json.dumps({"name": name, "currency": currency}).encode()
        return self._json("POST", f"{self._base_url}/sites/{site}/events", body)

    def _pages(self, site: str, into: list[Any] | None) -> int:
        cursor: str | None = None
        count = 0
        while True:
            page = self._json("GET", _list_url(self._base_url, site, cursor))
            if into is not None:
                into.extend(page["data"])
            seen, cursor = _next_cursor(page)
            count += seen
            if cursor is None:
                return count

    def walk(self, site: str) -> int:
        return self._pages(site, None)

    def pull(self, sites: list[str], concurrency: int) -> int:
        found: dict[str, list[Any]] = {site: [] for site in sites}
        run_in_threads(sites, concurrency, lambda site: self._pages(site, found[site]))
        return sum(len(events) for events in found.values())

    def desired_state(self, desired: Desired) -> Desired:
        return desired

    def bulk(self, desired: Desired, in_flight: int, sites_at_once: int) -> int:
        """Pull every site, then sync each: ``in_flight`` threads, a site at a time each."""
        del sites_at_once
        pulled = self.pull(list(desired), in_flight)
        changed: dict[str, int] = {}

        def sync(site: str) -> None:
            existing: list[Any] = []
            self._pages(site, existing)
            changes = raw_changes(self._base_url, site, existing, desired[site])
            for method, url, body in changes:
                self._json(method, url, body)
            changed[site] = len(changes)

        run_in_threads(desired, in_flight, sync)
        return pulled + sum(changed.values())

    def close(self) -> None:
        for session in self._sessions:
            session.close()


def run_in_threads(items: Iterable[Any], threads: int, work: Callable[[Any], object]) -> None:
    """Call ``work(item)`` for every item from ``threads`` threads; re-raise the first error."""
    remaining = iter(items)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def lane() -> None:
        while not errors:
            with lock:
                item = next(remaining, _DONE)
            if item is _DONE:
                return
            try:
                work(item)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                errors.append(error)

    workers = [threading.Thread(target=lane) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


_DONE = object()


# --- fathom_events --------------------------------------------------------------------------


def event_specs(desired: Desired) -> dict[str, list[EventSpec]]:
    """The desired state as ``events.plan`` takes it."""
    from fathom_events import EventSpec  # noqa: PLC0415

    return {
        site: [EventSpec(name, currency) for name, currency in wanted]
        for site, wanted in desired.items()
    }


def bulk_outcome(pulled: PullResult, report: SyncReport) -> int:
    """Events pulled plus changes made, once nothing failed."""
    assert not pulled.failed, pulled.failed
    assert report.ok, [str(f) for site in report.sites.values() for f in site.failed]
    totals = report.totals()
    changes = totals["created"] + totals["updated"] + totals["deleted"]
    return sum(len(events) for events in pulled.values()) + changes


class FathomAsync:
    """fathom_events.AsyncClient, typed answers and all."""

    def __init__(self, base_url: str, max_in_flight: int) -> None:
        from fathom_events import AsyncClient  # noqa: PLC0415

        self._client = AsyncClient(dataset.TOKEN, base_url, max_in_flight=max_in_flight)

    async def get(self, site: str, event_id: str) -> object:
        return await self._client.events.get(site, event_id)

    async def create(self, site: str, name: str, currency: str) -> object:
        return await self._client.events.create(site, name, currency)

    async def walk(self, site: str) -> int:
        count = 0
        async for page in self._client.events.paginate(site, page_size=PAGE_SIZE).pages():
            count += len(page.data)
        return count

    async def pull(self, sites: list[str], concurrency: int) -> int:
        result = await self._client.events.pull(sites, concurrency=concurrency)
        assert not result.failed, result.failed
        return sum(len(events) for events in result.values())

    def desired_state(self, desired: Desired) -> dict[str, list[EventSpec]]:
        return event_specs(desired)

    async def bulk(
        self, desired: dict[str, list[EventSpec]], in_flight: int, sites_at_once: int
    ) -> int:
        """``events.pull``, then ``events.sync`` (plan and apply site by site), as a user would."""
        del in_flight  # the client was built with it as its max_in_flight
        at_once = sites_at_once or None  # None: the library's default
        events = self._client.events
        pulled = await events.pull(list(desired), concurrency=at_once)
        report = await events.sync(desired, prune=True, set_currency=True, concurrency=at_once)
        return bulk_outcome(pulled, report)

    async def aclose(self) -> None:
        await self._client.aclose()


class FathomBlocking:
    """fathom_events.Client: one client shared by every calling thread."""

    def __init__(self, base_url: str, max_in_flight: int) -> None:
        from fathom_events import Client  # noqa: PLC0415

        self._client = Client(dataset.TOKEN, base_url, max_in_flight=max_in_flight)

    def get(self, site: str, event_id: str) -> object:
        return self._client.events.get(site, event_id)

    def create(self, site: str, name: str, currency: str) -> object:
        return self._client.events.create(site, name, currency)

    def walk(self, site: str) -> int:
        count = 0
        for page in self._client.events.paginate(site, page_size=PAGE_SIZE).pages():
            count += len(page.data)
        return count

    def pull(self, sites: list[str], concurrency: int) -> int:
        result = self._client.events.pull(sites, concurrency=concurrency)
        assert not result.failed, result.failed
        return sum(len(events) for events in result.values())

    def desired_state(self, desired: Desired) -> dict[str, list[EventSpec]]:
        return event_specs(desired)

    def bulk(self, desired: dict[str, list[EventSpec]], in_flight: int, sites_at_once: int) -> int:
        """The same as :meth:`FathomAsync.bulk`, through the blocking client."""
        del in_flight
        at_once = sites_at_once or None
        events = self._client.events
        pulled = events.pull(list(desired), concurrency=at_once)
        report = events.sync(desired, prune=True, set_currency=True, concurrency=at_once)
        return bulk_outcome(pulled, report)

    def close(self) -> None:
        self._client.close()
