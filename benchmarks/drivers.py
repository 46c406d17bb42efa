"""One driver per client under test, each doing the workloads' four operations.

Every driver can ``get`` one event, ``create`` one, ``walk`` a site (page
through it, holding one page at a time, and return how many events it saw)
and ``pull`` many sites (every event of every site held in memory at the end,
as ``events.pull`` returns them). The drivers are written the way a person
would use each library; the raw ones are the floor: one shared session,
``json.loads``, no types, no checks beyond the status.

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

if TYPE_CHECKING:
    from collections.abc import Callable

PAGE_SIZE = 100


class AsyncDriver(Protocol):
    """What the async workloads call."""

    async def get(self, site: str, event_id: str) -> object: ...
    async def create(self, site: str, name: str, currency: str) -> object: ...
    async def walk(self, site: str) -> int: ...
    async def pull(self, sites: list[str], concurrency: int) -> int: ...
    async def aclose(self) -> None: ...


class BlockingDriver(Protocol):
    """What the blocking workloads call (from one thread or many)."""

    def get(self, site: str, event_id: str) -> object: ...
    def create(self, site: str, name: str, currency: str) -> object: ...
    def walk(self, site: str) -> int: ...
    def pull(self, sites: list[str], concurrency: int) -> int: ...
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

    async def _pages(self, site: str, into: list[Any] | None) -> int:
        cursor: str | None = None
        count = 0
        while True:
            page = await self._json("GET", _list_url(self._base_url, site, cursor))
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

    def close(self) -> None:
        self._client.close()
