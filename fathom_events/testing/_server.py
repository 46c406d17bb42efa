"""`FakeFathom`: the Events API over in-memory state, speaking real HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

import anyio
from aiohttp import web

from fathom_events.testing._api import Answer, Api, Call, CreatedAtFormat
from fathom_events.testing._at_once import play_at_once
from fathom_events.testing._control import CONTROL_PATH, answer_control, parse_fault_spec
from fathom_events.testing._faults import Fault, FaultQueue
from fathom_events.testing._input import php_fields
from fathom_events.testing._recording import RecordedRequest, decode_segments, record
from fathom_events.testing._state import Store, aware, spread, utc_now
from fathom_events.testing._throttle import Throttle, check_rate_limit
from fathom_events.testing._wire import deliver, render, reply, wait_or_stop, wants_json

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
    from ssl import SSLContext

_STOPPING: Final = web.AppKey("fathom_fake_stopping", asyncio.Event)
_SHUTDOWN_TIMEOUT: Final = 5.0
_THREAD_START_TIMEOUT: Final = 30.0
_TOKEN_NAME: Final = "Fake Fathom token"  # noqa: S105 - a name, not a secret
_SEED_NAMES: Final = (
    "Signed up to newsletter",
    "Purchased product",
    "Started free trial",
    "Downloaded whitepaper",
    "Clicked pricing",
)


async def _release_waiters(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for open handlers: wake every
    # hung or delayed handler so it drops its connection instead.
    app[_STOPPING].set()


class FakeFathom:
    """A fake Fathom Events API, written from the API reference.

    Seed it (`add_site`, `add_event`, `seed`), serve it (`serve()` in async
    code, `serve_in_thread()` in blocking code), point a client at the base
    URL it yields, then inspect `requests` and `events()`. `inject` scripts
    faults. Every method is safe to call from any thread while it serves.

    `tokens` maps each token it accepts to its abilities (default: only
    `DEFAULT_TOKEN`, with `*`). `now` is its clock (a function returning a
    datetime; default: the real UTC time), for token expiry, new records'
    dates and the rate budget. `created_at_format` is how answers write
    timestamps: "plain" (`YYYY-MM-DD HH:MM:SS`, as the current reference
    shows) or "iso" (ISO 8601 with `Z`). `latency` (seconds, default 0)
    delays every answer, as a real network does.

    Input is read as Fathom's Laravel application reads it (inferred, not
    confirmed by a live answer): create and update take a JSON body or a form
    (`application/x-www-form-urlencoded`; a key given twice keeps the last,
    `key[]` is an array, as PHP reads it); any other body is 400. Every query
    value and body field is then trimmed as Laravel 11's `Str::trim` trims
    (Unicode whitespace, NUL, U+FEFF, U+200B, U+200E at either end) and an
    empty string is missing (null): a create named "Signed up " stores
    "Signed up"; a blank name answers 400 "The name field is required." (on
    update too); a null or blank currency is as if not given (create: dollar;
    update: unchanged); a blank `limit` or cursor is as if not given.

    `rate_limit=(requests, seconds)` gives each token a rate budget, counted
    as Laravel's throttle counts: a fixed window opens with the token's first
    request and lasts `seconds` by the `now` clock. Once `requests` are spent
    in the window, every request answers 429 `{"error": "Too Many
    Attempts."}` with `Retry-After` the whole seconds until the window closes
    (rounded up, at least 1), and is not counted. Over HTTP and through
    `answer()` alike:

    - A request that fails authentication (401), or names an unknown path or
      a wrong method (404, 405), is answered before the budget is looked at
      (Laravel routes, then authenticates, then throttles): it spends nothing
      and is never refused with 429.
    - A fault that answers instead of the API (`respond`, `rate_limited`,
      `html`, `disconnect`, `hang`, `huge_body`, `malformed_json`) stands for
      a gateway or the network: it is used up and spends nothing. A fault
      that lets the API act (`after_action=True`, `delay`, `truncated_json`,
      `trickle`) spends as a plain request does, and once the budget is spent
      the answer it plays out is the 429.

    `control_endpoint=True` also serves `CONTROL_PATH` ("/_fake/faults")
    beside the API, for test suites in other languages: `GET` answers
    `{"pending_faults": N}`, `POST` a fault description (see `inject_spec`)
    injects it, `DELETE` clears every fault; an unreadable description is
    400. Its requests are not recorded, take no fault and spend no budget.
    It is off by default: anyone who can reach the port could script faults.
    """

    DEFAULT_TOKEN: ClassVar[str] = "fake-fathom-token"  # noqa: S105 - a fake's well-known token
    CONTROL_PATH: ClassVar[str] = CONTROL_PATH

    def __init__(
        self,
        tokens: Mapping[str, Sequence[str]] | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        created_at_format: CreatedAtFormat = "plain",
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        control_endpoint: bool = False,
    ) -> None:
        if not latency >= 0:
            raise ValueError(f"latency must be a number of seconds >= 0; got {latency!r}")
        self.latency = latency
        if created_at_format not in ("plain", "iso"):
            raise ValueError(
                f"created_at_format must be 'plain' or 'iso'; got {created_at_format!r}"
            )
        clock = now or utc_now
        self._store = Store(clock)
        throttle = None
        if rate_limit is not None:
            requests, seconds = check_rate_limit(rate_limit)
            throttle = Throttle(requests, seconds, lambda: aware(clock()))
        self._api = Api(self._store, created_at_format, throttle)
        self._control_endpoint = control_endpoint
        self._faults = FaultQueue()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        if tokens is None:
            tokens = {self.DEFAULT_TOKEN: ["*"]}
        for token, abilities in tokens.items():
            self.add_token(token, abilities)

    def __repr__(self) -> str:
        return f"<FakeFathom requests={len(self.requests)} pending_faults={self.pending_faults()}>"

    # -- state --------------------------------------------------------------

    def add_token(
        self,
        token: str,
        abilities: Sequence[str],
        *,
        name: str = _TOKEN_NAME,
        version: int = 1,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Accept `token` with `abilities` ("*", "all-sites-readonly", "read:S", "manage:S").

        The keywords are what `GET /v1/token` shows besides the abilities
        (its `name` and `version`, and dates).
        `created_at` defaults to the clock's now, `updated_at` to `created_at`;
        from `expires_at` on (by the fake's clock) the token answers 401.
        Naive datetimes are taken as UTC. Adding a token again replaces it.
        """
        self._store.add_token(
            token,
            abilities,
            name=name,
            version=version,
            created_at=created_at,
            updated_at=updated_at,
            expires_at=expires_at,
        )

    def set_account(
        self,
        *,
        account_id: int | None = None,
        name: str | None = None,
        email: str | None = None,
    ) -> None:
        """Change what `GET /v1/account` shows: only the fields given, the others stay.

        The account starts as `{"id": 500302232, "object": "account", "name":
        "Fake Fathom", "email": "fake@example.com"}`. `account_id` is an integer
        >= 0 (the API's account id is a number, unlike every other id); `name`
        and `email` are non-empty strings. Reading the account needs a token
        with the `*` ability; any other token gets 400, as listing sites does.
        """
        self._store.set_account(account_id, name, email)

    def add_site(
        self,
        site_id: str,
        name: str | None = None,
        *,
        sharing: str | None = None,
        timezone: str | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Create the site `site_id`; requests for unknown sites answer 404.

        A new site's `name` defaults to its id, `sharing` to "none" (the
        reference lists none, private and public; any other string is served
        as given), `timezone` to "UTC" and `created_at` to the clock's now.
        Sites are listed by `created_at`, ties in the order added. Adding an
        existing site again changes only the fields given.
        """
        self._store.add_site(site_id, name, sharing, timezone, created_at)

    def add_event(
        self,
        site_id: str,
        name: str,
        currency: str = "dollar",
        *,
        event_id: str | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Store an event `name` of `currency` on `site_id` (made if needed); return its record.

        `event_id` defaults to 8 random capital letters; `created_at` to the
        clock's now (a naive datetime is taken as UTC).
        """
        return self._store.add_event(site_id, name, currency, event_id, created_at).as_dict()

    def seed(self, sites: int, events_per_site: int, *, prefix: str = "SITE") -> list[str]:
        """Create `sites` sites, `prefix` 1.. (SITE1, ...), of `events_per_site` events each.

        Events get varied names and currencies and climbing timestamps ending
        near now, with some sharing a second; returns the new site ids.
        """
        if sites < 0 or events_per_site < 0:
            raise ValueError("sites and events_per_site must not be negative")
        start = self._store.now() - timedelta(minutes=12 * events_per_site)
        site_ids = []
        for number in range(1, sites + 1):
            site_id = f"{prefix}{number}"
            self.add_site(site_id)
            for name, currency, moment in spread(events_per_site, start, _SEED_NAMES):
                self._store.add_event(site_id, name, currency, None, moment)
            site_ids.append(site_id)
        return site_ids

    def events(self, site_id: str) -> list[dict[str, Any]]:
        """The stored events of `site_id`, oldest first: {"id", "name", "currency", "created_at"}.

        `currency` is the stored one and `created_at` an aware UTC datetime.
        Raises KeyError for an unknown site.
        """
        return [record.as_dict() for record in self._store.events(site_id)]

    # -- the request log ------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (faulted ones too); a copy."""
        with self._requests_lock:
            return list(self._requests)

    def requests_for(
        self, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """The recorded requests with this method (any case) and decoded-path glob."""
        return [
            request
            for request in self.requests
            if (method is None or request.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(request.path, path))
        ]

    def reset_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    # -- faults -----------------------------------------------------------------

    def inject(self, fault: Fault, *, method: str = "*", path: str = "*", times: int = 1) -> None:
        """Make the next `times` requests matching `method` and `path` (globs) suffer `fault`.

        Faults are used in the order injected: a request takes the first one
        that matches, and it stays first until its `times` are used up.
        """
        self._faults.add(fault, method, path, times)

    def inject_spec(self, spec: str | bytes) -> None:
        """Inject the fault a JSON fault description gives, as `inject` would.

        `spec` is one JSON object: `fault` names a `Fault` classmethod and its
        keywords are the other fields; `method`, `path` and `times` are
        `inject`'s (defaults "*", "*", 1). For example, the next two creates
        answer 503::

            {"method": "POST", "path": "/v1/sites/*/events", "times": 2,
             "fault": "respond", "status": 503}

        `fake-server --fault` and `POST /_fake/faults` take the same text.
        Raises ValueError (its message starts "fault description: ") for one
        that cannot be read; nothing is injected then.
        """
        parsed = parse_fault_spec(spec)
        self.inject(parsed.fault, method=parsed.method, path=parsed.path, times=parsed.times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def pending_faults(self) -> int:
        """How many fault uses are left, over all injected faults."""
        return self._faults.pending()

    # -- serving ------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """A new `aiohttp.web.Application` over this fake's state, on every access.

        Each serving needs its own application (one is bound to the event loop
        that runs it); all of them share the state, the request log and the faults.
        """
        app = web.Application()
        app[_STOPPING] = asyncio.Event()
        app.on_shutdown.append(_release_waiters)
        if self._control_endpoint:
            app.router.add_route("*", "/_fake/{tail:.*}", self._control)
        # One catch-all route: we split the raw path ourselves, so that an
        # encoded "/" stays inside its id.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        return app

    @contextlib.asynccontextmanager
    async def serve(self, *, ssl: SSLContext | None = None) -> AsyncIterator[str]:
        """Serve on a free port of 127.0.0.1; yield the base URL, ".../v1".

        `ssl`: a server-side context (its certificate for 127.0.0.1) to serve
        https:// instead; a client then needs a context trusting its CA.
        """
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl)
            await site.start()
            port = runner.addresses[0][1]
            yield f"{'http' if ssl is None else 'https'}://127.0.0.1:{port}/v1"
        finally:
            await runner.cleanup()

    @contextlib.contextmanager
    def serve_in_thread(self, *, ssl: SSLContext | None = None) -> Iterator[str]:
        """Like `serve()` (`ssl` too), with the server's event loop in a background thread."""
        server = ThreadedServer(functools.partial(self.serve, ssl=ssl), name="FakeFathom")
        base_url = server.start()
        try:
            yield base_url
        finally:
            server.stop()

    async def _control(self, request: web.Request) -> web.Response:
        return await answer_control(self, request)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._record(record(request, b""))  # aiohttp answers 413 for us
            raise
        recorded = record(request, body)
        self._record(recorded)
        if self.latency > 0:
            await wait_or_stop(self.latency, request.app[_STOPPING])
        perform = self._perform(
            recorded,
            authorization=request.headers.get("Authorization"),
            content_type=request.headers.get("Content-Type", ""),
        )
        json_errors = wants_json(request.headers.get("Accept"))
        fault = self._faults.take(recorded.method, recorded.path)
        if fault is None:
            return render(perform(), json_errors=json_errors)
        return await deliver(
            fault, request, perform, json_errors=json_errors, stopping=request.app[_STOPPING]
        )

    async def answer(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        """Answer `request` in memory, as serving would: its status, headers and body.

        The request is recorded and takes a matching fault, as over HTTP;
        `latency` and the faults that wait (`delay`, `hang`, `trickle`) wait
        here, and `disconnect` raises `ConnectionResetError`. Nothing is
        compressed or streamed. This is what `MemoryTransport(fake)` calls;
        a handler of your own may call it too, to answer as the fake would.
        """
        self._record(request)
        if self.latency > 0:
            await anyio.sleep(self.latency)
        perform = self._perform(
            request,
            authorization=request.header("Authorization"),
            content_type=request.header("Content-Type") or "",
        )
        json_errors = wants_json(request.header("Accept"))
        fault = self._faults.take(request.method, request.path)
        if fault is None:
            return reply(perform(), json_errors=json_errors)
        return await play_at_once(fault, perform, json_errors=json_errors)

    def _perform(
        self, recorded: RecordedRequest, *, authorization: str | None, content_type: str
    ) -> Callable[[], Answer]:
        """The API's action for `recorded` (and its answer), run when called."""
        call = Call(
            method=recorded.method,
            segments=decode_segments(recorded.raw_path),
            query=php_fields(recorded.query_pairs),
            authorization=authorization,
            content_type=content_type,
            body=recorded.body,
        )
        return functools.partial(self._api.handle, call)


class ThreadedServer:
    """Runs `serve()` (an async context manager yielding a URL) on its own loop in a thread."""

    def __init__(
        self, serve: Callable[[], contextlib.AbstractAsyncContextManager[str]], *, name: str
    ) -> None:
        self._serve = serve
        self._ready = threading.Event()
        self._base_url: str | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(_THREAD_START_TIMEOUT):
            raise RuntimeError(f"the {self._thread.name} thread did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"the {self._thread.name} thread failed to start") from self._error
        if self._base_url is None:  # pragma: no cover - _ready is set only with one of the two
            raise RuntimeError(f"the {self._thread.name} thread gave no base URL")
        return self._base_url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(
                f"the {self._thread.name} thread failed while stopping"
            ) from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._serve() as base_url:
            self._base_url = base_url
            self._ready.set()
            await self._stop.wait()
