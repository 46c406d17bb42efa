"""A lean stand-in for the Events API, fast enough never to be what is measured.

It speaks the JSON that FakeFathom speaks for the calls the workloads make
(get, list with ``limit``/``starting_after``/``ending_before``, create,
update, delete, and ``GET /v1/token``, which the bulk jobs' token check
reads once per client: the token may do anything) over plain HTTP/1.1
keep-alive, on a bare
:class:`asyncio.Protocol` (on uvloop when it is installed). Every GET answer
is rendered once and then served from a cache; creates, updates and deletes
are answered but not stored (so repeats see the same data), and nothing is
logged. A wrong token gets 401, an unknown path 404.

Requests about the remote sites (``NET1``.., W6's) are answered
``--net-delay`` seconds late: the answer is ready at once and written by a
timer of the event loop, so a waiting answer costs no CPU, as a slow network
costs a real server none. (No client under test pipelines requests, so the
answers on one connection cannot overtake each other.)

With ``--rate-limit N/SECONDS`` (W7's server) the token has a budget,
counted as FakeFathom counts it (its ``Throttle``: Laravel's fixed window,
opened by the first request): a request past it is answered 429 with
``Retry-After``, after the same delay as any other. ``GET /_bench/budget``
(no token needed) then says how many requests were answered and refused, and
the seconds from the first request's arrival to the last answer's writing;
``DELETE /_bench/budget`` starts afresh (a new window, counts at zero).

Run it alone with ``python -m benchmarks.server --port 8000``; the runner
starts it with ``--port 0`` and reads the ``listening`` line for the URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qsl, unquote

from . import dataset
from .affinity import pin
from .dataset import Dataset

if TYPE_CHECKING:
    from fathom_events.testing import FakeFathom

MAX_PAGE = 100
DEFAULT_LIMIT = 10
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    429: b"Too Many Requests",
}
_AUTH = b"\r\nauthorization: bearer " + dataset.TOKEN.encode() + b"\r\n"
_CLOSE = b"\r\nconnection: close"
_HEAD_END = b"\r\n\r\n"
_NET_TARGET = f"/v1/sites/{dataset.NET_PREFIX}".encode()
_LENGTH = b"\r\ncontent-length:"
BUDGET_PATH = "/_bench/budget"
_BUDGET_TARGET = BUDGET_PATH.encode()


def response(status: int, body: object, headers: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer with a JSON body (``headers``: more lines, each ending CRLF)."""
    payload = dataset.dumps(body)
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        status,
        _REASONS[status],
        len(payload),
    )
    return head + headers + b"\r\n" + payload


class Budget:
    """W7's budget for the token, counted by FakeFathom's ``Throttle``, and what it saw."""

    def __init__(self, requests: int, seconds: float) -> None:
        self._limit = (requests, seconds)
        self.reset()

    def reset(self) -> None:
        """A fresh window and counts, for the next job."""
        # FakeFathom's own counting (Laravel's), so that W7's server and the acceptance
        # tests' fake refuse the same requests.
        from fathom_events.testing._throttle import Throttle  # noqa: PLC0415 - W7's server only

        self._throttle = Throttle(*self._limit, lambda: datetime.now(timezone.utc))
        self.answered = 0
        self.refused = 0
        self.first: float | None = None
        self.last: float | None = None

    def refusal(self) -> bytes | None:
        """Count a request in: None if the budget allows it, else the 429 to answer."""
        if self.first is None:
            self.first = time.monotonic()
        retry_after = self._throttle.spend(dataset.TOKEN)
        if retry_after is None:
            self.answered += 1
            return None
        self.refused += 1
        return response(429, {"error": "Too Many Attempts."}, b"Retry-After: %d\r\n" % retry_after)

    def written(self) -> None:
        """An answer (of any status) went out now."""
        self.last = time.monotonic()

    def control(self, method: bytes) -> bytes:
        """``GET``: the counts and the seconds from first arrival to last answer.

        ``DELETE`` resets them first.
        """
        if method == b"DELETE":
            self.reset()
        seconds = None if self.first is None or self.last is None else self.last - self.first
        return response(
            200, {"answered": self.answered, "refused": self.refused, "seconds": seconds}
        )


_UNAUTHORIZED = response(401, {"error": "Unauthenticated."})
_NOT_FOUND = response(404, {"error": "Not found."})
_TOKEN = response(
    200,
    {
        "name": "Benchmarks",
        "version": 2,
        "abilities": ["*"],
        "last_used_at": "2024-01-01 09:00:00",
        "expires_at": None,
        "created_at": "2024-01-01 09:00:00",
        "updated_at": "2024-01-01 09:00:00",
    },
)


class Api:
    """The answers: computed from the dataset, GETs cached by their raw target."""

    def __init__(self, data: Dataset, budget: Budget | None = None) -> None:
        self.budget = budget
        self._sizes = data.sizes()
        self._cache: dict[bytes, bytes] = {b"/v1/token": _TOKEN}  # the only non-site GET
        self._created = 0
        self.requests = 0
        self.net_delay = data.net_delay

    def delay(self, target: bytes) -> float:
        """Seconds to hold the answer to ``target`` back: the remote sites' delay, else 0."""
        return self.net_delay if target.startswith(_NET_TARGET) else 0.0

    def prerender(self, page_size: int = MAX_PAGE) -> None:
        """Render the answers the workloads ask for before any client does.

        Every client then finds the same work done, whoever comes first: each
        small site's events, and every page of every site at ``page_size``
        (under the target the clients send: ``limit`` first, then the cursor).
        """
        # Single events are fetched from the small sites only (W1, W2).
        small = self._sizes.keys() - {dataset.BIG_SITE, dataset.HUGE_SITE}
        small -= {site for site in small if site.startswith(dataset.NET_PREFIX)}
        for site, size in self._sizes.items():
            path = f"/v1/sites/{site}/events"
            cursors = [
                None,
                *(dataset.event_id(site, i) for i in range(page_size - 1, size, page_size)),
            ]
            for cursor in cursors:
                query = f"?limit={page_size}" + (
                    "" if cursor is None else f"&starting_after={cursor}"
                )
                self.answer(b"GET", (path + query).encode(), b"")
            if site in small:
                for index in range(size):
                    self.answer(b"GET", f"{path}/{dataset.event_id(site, index)}".encode(), b"")
        self.requests = 0

    def answer(self, method: bytes, target: bytes, body: bytes) -> bytes:
        """The bytes to send back for one request."""
        self.requests += 1
        if method == b"GET":
            cached = self._cache.get(target)
            if cached is None:
                cached = self._cache[target] = self._route(method, target, body)
            return cached
        return self._route(method, target, body)

    def _route(self, method: bytes, target: bytes, body: bytes) -> bytes:
        raw_path, _, raw_query = target.decode("latin-1").partition("?")
        parts = [unquote(part) for part in raw_path.split("/")]
        if len(parts) < 5 or parts[:3] != ["", "v1", "sites"] or parts[4] != "events":
            return _NOT_FOUND
        site = parts[3]
        size = self._sizes.get(site)
        if size is None:
            return response(404, {"error": "Site not found."})
        if len(parts) == 5 and method == b"GET":
            return self._list(site, size, dict(parse_qsl(raw_query)))
        if len(parts) == 5 and method == b"POST":
            return self._create(site, body)
        if len(parts) != 6:
            return _NOT_FOUND
        index = self._index(site, size, parts[5])
        if index is None:
            return response(404, {"error": "Event not found."})
        if method == b"GET":
            return response(200, dataset.event_json(site, index))
        if method == b"POST":
            return self._update(site, index, body)
        if method == b"DELETE":
            return response(200, {"id": parts[5], "object": "event", "deleted": True})
        return _NOT_FOUND

    @staticmethod
    def _index(site: str, size: int, event_id: str) -> int | None:
        prefix = site + "-E"
        if not event_id.startswith(prefix) or not event_id[len(prefix) :].isdigit():
            return None
        index = int(event_id[len(prefix) :])
        return index if index < size else None

    def _list(self, site: str, size: int, query: dict[str, str]) -> bytes:
        raw_limit = query.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            return response(400, {"errors": {"limit": ["The limit must be 1 to 100."]}})
        limit = int(raw_limit)
        after, before = query.get("starting_after"), query.get("ending_before")
        if after is not None and before is not None:
            return response(400, {"error": "Send either starting_after or ending_before."})
        if before is not None:
            end = self._index(site, size, before)
            if end is None:
                return response(400, {"error": "The ending_before cursor is unknown."})
            indexes = list(range(end - 1, max(end - limit, 0) - 1, -1))
            has_more = end - limit > 0
        else:
            start = 0
            if after is not None:
                found = self._index(site, size, after)
                if found is None:
                    return response(400, {"error": "The starting_after cursor is unknown."})
                start = found + 1
            indexes = list(range(start, min(start + limit, size)))
            has_more = start + limit < size
        return response(
            200,
            {
                "object": "list",
                "url": f"/v1/sites/{site}/events",
                "has_more": has_more,
                "data": [dataset.event_json(site, index) for index in indexes],
            },
        )

    @staticmethod
    def _fields(body: bytes) -> dict[str, object] | None:
        try:
            fields = json.loads(body)
        except ValueError:
            return None
        return fields if isinstance(fields, dict) else None

    def _create(self, site: str, body: bytes) -> bytes:
        fields = self._fields(body)
        if fields is None:
            return response(400, {"error": "The request body is not a JSON object."})
        name = fields.get("name")
        if not isinstance(name, str) or not name:
            return response(400, {"errors": {"name": ["The name field is required."]}})
        currency = fields.get("currency")
        self._created += 1
        return response(
            200,
            dataset.created_json(
                site, self._created, name, currency if isinstance(currency, str) else None
            ),
        )

    def _update(self, site: str, index: int, body: bytes) -> bytes:
        fields = self._fields(body)
        if fields is None:
            return response(400, {"error": "The request body is not a JSON object."})
        event = dataset.event_json(site, index)
        name, currency = fields.get("name"), fields.get("currency")
        if isinstance(name, str) and name:
            event["name"] = name
        event["currency"] = currency if isinstance(currency, str) else "dollar"
        return response(200, event)


class Connection(asyncio.Protocol):
    """One keep-alive connection: parse each request head, answer, repeat."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        transport = self._transport
        assert transport is not None
        while (end := buffer.find(_HEAD_END)) >= 0:
            head = buffer[:end].lower()
            length = 0
            at = head.find(_LENGTH)
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + len(_LENGTH) : stop if stop >= 0 else None])
            body_start = end + 4
            if len(buffer) < body_start + length:
                break
            body = buffer[body_start : body_start + length]
            request_line = buffer[: buffer.find(b"\r\n")]
            method, target, _ = request_line.split(b" ", 2)
            buffer = buffer[body_start + length :]
            close = _CLOSE in head
            budget = self._api.budget
            if budget is not None and target == _BUDGET_TARGET:
                answer = budget.control(method)
            elif _AUTH not in head + b"\r\n":
                answer = _UNAUTHORIZED
            else:
                refused = None if budget is None else budget.refusal()
                answer = refused or self._api.answer(method, target, body)
                delay = self._api.delay(target)
                if delay > 0:
                    self._loop.call_later(delay, self._write, answer, close)
                    if close:
                        return
                    continue
            self._write(answer, close)
            if close:
                return
        self._buffer = buffer

    def _write(self, answer: bytes, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():  # the client went away meanwhile
            return
        transport.write(answer)
        if self._api.budget is not None:
            self._api.budget.written()
        if close:
            transport.close()


async def serve(
    data: Dataset, host: str, port: int, rate_limit: tuple[int, float] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT; print the base URL once listening."""
    api = Api(data, None if rate_limit is None else Budget(*rate_limit))
    api.prerender()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(api), host, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening http://{host}:{bound}/v1", flush=True)
    async with server:
        await stop.wait()


def seeded_fake(data: Dataset) -> FakeFathom:
    """A FakeFathom holding the same sites and events, for comparing the two servers."""
    from fathom_events.testing import FakeFathom  # noqa: PLC0415 - only with --fake

    fake = FakeFathom(tokens={dataset.TOKEN: ["*"]})
    for site, size in data.sizes().items():
        fake.add_site(site)
        for index in range(size):
            fake.add_event(
                site,
                dataset.event_name(index),
                event_id=dataset.event_id(site, index),
                created_at=dataset.created_at(index),
            )
    return fake


async def serve_fake(data: Dataset) -> None:
    """Serve a seeded FakeFathom (on 127.0.0.1, a free port) until SIGTERM or SIGINT."""
    fake = seeded_fake(data)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake.serve() as base_url:
        print(f"listening {base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--events-per-site", type=int, default=500)
    parser.add_argument("--big-site-events", type=int, default=10_000)
    parser.add_argument("--huge-site-events", type=int, default=100_000)
    parser.add_argument("--net-sites", type=int, default=0, help="remote sites (W6's)")
    parser.add_argument(
        "--net-delay", type=float, default=0.0, help="seconds each remote site's answer waits"
    )
    parser.add_argument(
        "--rate-limit",
        metavar="N/SECONDS",
        default=None,
        help="W7: a budget of N requests per SECONDS for the token, past which it answers 429",
    )
    parser.add_argument("--no-uvloop", action="store_true", help="serve on the asyncio loop")
    parser.add_argument(
        "--fake", action="store_true", help="serve fathom_events.testing.FakeFathom instead"
    )
    args = parser.parse_args(argv)
    pin(args.cpu)
    data = Dataset(
        args.sites,
        args.events_per_site,
        args.big_site_events,
        args.huge_site_events,
        args.net_sites,
        args.net_delay,
    )
    rate_limit = None
    if args.rate_limit:
        requests, _, seconds = args.rate_limit.partition("/")
        rate_limit = (int(requests), float(seconds))
    coroutine = serve_fake(data) if args.fake else serve(data, args.host, args.port, rate_limit)
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        uvloop = None
    if uvloop is not None and not args.no_uvloop:
        uvloop.run(coroutine)
    else:
        asyncio.run(coroutine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
