"""Work across many sites: pull every event, and plan and apply a declarative sync.

Sites are handled concurrently, each one's pages and changes in order. What
one site suffers never loses another site's results: any error in one site's
work (a :class:`FathomError`, or anything else, wrapped in
:class:`UnexpectedError`) is recorded as that site's failure, next to what
succeeded. Each site is listed up to a cap (:class:`TooManyEventsError` past it).

How every request slot stays busy: a site's pages are sequential (each
cursor comes from the page before) and so are its changes, so a site has at
most one request ready at a time, and none while it decodes a page or plans.
Slots are therefore not held per site: a job keeps ``concurrency`` sites in
flight (by default :data:`SITES_PER_SLOT` per slot of the client's
``max_in_flight``, or every site when there are fewer), and each of their
requests takes one of the client's slots (its in-flight cap) only while it is
sent and read. A freed slot goes to the next request waiting for one, first
come first served, whichever site it is for, so sites advance together and a
phase ends without a tail of a few long sites. Memory stays bounded however
many sites there are: a task per site is started at once (small: it waits for
its turn), but only the sites in flight hold a part-read listing (a pull
keeps what it read, as it must).

This module knows nothing of the client: it works through :class:`EventCalls`
(``client.events`` is one), reads the client's shared limits through
:class:`ClientUsage` (the client's ``Limits`` is one) and asks what the token may do
through :data:`AskToken` (``client.token`` is one).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol, TypeVar

import anyio
import attrs

from ._bulk_types import (
    EventSpec,
    Failure,
    NameClaims,
    Progress,
    ProgressCallback,
    PullResult,
    SitePlan,
    SiteReport,
    SyncPlan,
    SyncReport,
    check_max_events_per_site,
    describe_change,
)
from ._checks import check_callable_or_none, check_flag, check_int_at_least, one_line, shown
from ._pagination import PageWalker
from ._protocol import check_id, name_key
from ._sends import noting_sends
from .exceptions import (
    APIStatusError,
    BadRequestError,
    FathomError,
    InvalidRequestError,
    TokenPermissionError,
    TooManyDeletesError,
    TooManyEventsError,
    UnexpectedError,
    UnprocessableEntityError,
)
from .types import DeletedEvent, Event, EventPage, TokenInfo

__all__ = [
    "AskToken",
    "ClientUsage",
    "EventCalls",
    "apply",
    "check_concurrency",
    "plan",
    "pull",
    "sync",
]

logger = logging.getLogger("fathom_events")

PAGE_SIZE = 100
#: The most of an error's body a recorded failure keeps (as one printable line): a bulk job
#: may record thousands of failures, and a server may send megabytes with each.
KEPT_BODY_CHARS = 500
#: The most of a cut body logged at DEBUG, before it is cut.
LOGGED_BODY_CHARS = 64 * 1024
#: What a recorded failure keeps of a 400's or 422's field errors: the first fields, the
#: first messages of each, each cut to a line.
KEPT_FIELDS = 20
KEPT_MESSAGES = 5
KEPT_MESSAGE_CHARS = 200
#: Sites in flight per request slot (the client's ``max_in_flight``) when a job is not given
#: ``concurrency``: enough that a slot always finds a site with a request ready.
SITES_PER_SLOT = 4
T = TypeVar("T")


class EventCalls(Protocol):
    """The four calls bulk work makes, in the form it makes them (``client.events`` is one).

    Bulk work counts on each call being retried and limited as the client's are.
    """

    async def create(self, site_id: str, name: str, currency: str | None) -> Event: ...

    async def update(
        self, site_id: str, event_id: str, name: str | None = None, currency: str | None = None
    ) -> Event: ...

    async def delete(self, site_id: str, event_id: str) -> DeletedEvent: ...

    # Last: from here on in this class body, ``list`` names this method, not the builtin.
    async def list(self, site_id: str, limit: int, *, starting_after: str | None) -> EventPage: ...


class ClientUsage(Protocol):
    """What a bulk job reads of the client's shared limits (its ``Limits`` has all three).

    ``max_in_flight`` sets a job's default sites in flight; the two counts, taken
    at the start and at each step, give the requests and retries the job sent.
    """

    @property
    def max_in_flight(self) -> int: ...

    @property
    def requests_sent(self) -> int: ...

    @property
    def retries(self) -> int: ...


#: How planning asks what the token may do (``GET /v1/token``, cached by the client).
AskToken = Callable[[], Awaitable[TokenInfo]]


def check_site_ids(site_ids: Iterable[str]) -> list[str]:
    """Each id checked, duplicates folded (a result has one entry per site), order kept."""
    if isinstance(site_ids, str):
        raise InvalidRequestError("site_ids", "must be a list of site ids, not one string")
    return list(dict.fromkeys(check_id("site_ids", s) for s in site_ids))


def check_concurrency(value: int | None, max_in_flight: int) -> int:
    """A bulk job's bound on sites in flight: an int >= 1, or None for the default.

    The default, :data:`SITES_PER_SLOT` sites per request slot, keeps every
    slot busy (see the module's docstring).
    """
    if value is None:
        return SITES_PER_SLOT * max_in_flight
    return check_int_at_least("concurrency", value)


def check_progress(on_progress: object) -> ProgressCallback | None:
    """``on_progress``: a callable or None, refused before anything is sent."""
    return check_callable_or_none("on_progress", on_progress)


def check_max_deletes(value: object) -> int | None:
    """``max_deletes``: None (no bound) or an int >= 0, refused before anything is sent."""
    return None if value is None else check_int_at_least("max_deletes", value, 0)


def check_desired(desired: Mapping[str, Sequence[EventSpec]]) -> dict[str, tuple[EventSpec, ...]]:
    """Every site id valid, every spec an EventSpec, no name claimed twice in one site.

    See :class:`NameClaims`: no name wanted twice, and no old name of a rename
    that is also wanted or held by two specs.
    """
    if not isinstance(desired, Mapping):
        raise InvalidRequestError("desired", "must map site ids to lists of EventSpec")
    checked: dict[str, tuple[EventSpec, ...]] = {}
    for site_id, given in desired.items():
        check_id("desired", site_id)
        if isinstance(given, (str, Mapping)) or not isinstance(given, Iterable):
            raise InvalidRequestError(
                f"desired[{site_id!r}]", f"must be a list of EventSpec, got {shown(given)}"
            )
        specs = tuple(given)  # read once: a generator must not be emptied by the checks
        claims = NameClaims()
        for spec in specs:
            if not isinstance(spec, EventSpec):
                raise InvalidRequestError(
                    f"desired[{site_id!r}]", f"must hold EventSpec objects, got {shown(spec)}"
                )
            if (conflict := claims.claim(spec)) is not None:
                raise InvalidRequestError(f"desired[{site_id!r}]", conflict[1])
        checked[site_id] = specs
    return checked


def as_failure(error: Exception, *, sent: bool = False) -> FathomError:
    """``error`` as a recorded failure: itself if ours, else an :class:`UnexpectedError`.

    ``sent``: the error broke a change that may have reached the server, so an
    error of another kind leaves its outcome unknown (``may_have_been_applied``).
    """
    if isinstance(error, FathomError):
        return _kept(error)
    text = str(error)
    text = text if len(text) <= 200 else text[:200] + "..."
    wrapped = UnexpectedError(f"unexpected {type(error).__name__}: {text}")
    # Kept as the cause, but not its traceback: its frames held the job's state (a client,
    # a transport's session). Where it came from is logged at DEBUG, frames without locals.
    logger.debug("%s in a site's bulk work", type(error).__name__, exc_info=error)
    for link in _chain(error):
        link.__traceback__ = None
    wrapped.__cause__ = error
    wrapped.may_have_been_applied = sent
    return wrapped


@attrs.frozen
class Listing:
    """A site's events, oldest first, each once; the list requests; the ids seen twice."""

    events: list[Event]
    requests: int
    repeated: tuple[str, ...]


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the causes and contexts behind it, each once."""
    seen: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and not any(link is known for known in seen):
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen


def _kept(error: FathomError) -> FathomError:
    """``error`` as a bulk job keeps it: its body cut to an excerpt, and no traceback.

    The traceback's frames held the whole answer (and the request), kept alive
    for as long as the failure is; the body is logged at DEBUG (up to
    :data:`LOGGED_BODY_CHARS`) before it is cut to :data:`KEPT_BODY_CHARS`.
    """
    error.__traceback__ = None
    if isinstance(error, APIStatusError) and error.body is not None:
        body = error.body
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        if len(text) > KEPT_BODY_CHARS:
            logger.debug(
                "%s %s answered %d with a body of %d characters, kept as an excerpt: %s",
                error.method,
                error.url,
                error.status,
                len(text),
                text[:LOGGED_BODY_CHARS],
            )
            error.body = one_line(text, KEPT_BODY_CHARS)
    if isinstance(error, (BadRequestError, UnprocessableEntityError)):
        error.errors = {
            one_line(field, KEPT_MESSAGE_CHARS): [
                one_line(message, KEPT_MESSAGE_CHARS) for message in messages[:KEPT_MESSAGES]
            ]
            for field, messages in itertools.islice(error.errors.items(), KEPT_FIELDS)
        }
    return error


async def list_site(events: EventCalls, site_id: str, limit: int) -> Listing:
    """Every event of a site, oldest first, each once, and how many list requests that took.

    Events are keyed by id: one the listing shows again (pages that overlap
    while events are created, or a server that repeats itself) is kept as
    first seen and its id noted in ``repeated``, so that it can never count
    as a second event of its name. Raises :class:`TooManyEventsError` as soon
    as more than ``limit`` events were read (so at most one page past the cap
    is ever held).
    """
    found: dict[str, Event] = {}
    repeated: dict[str, None] = {}
    requests = 0

    async def fetch(cursor: str | None) -> EventPage:
        nonlocal requests
        requests += 1  # counted here: a final empty page is a request too
        return await events.list(site_id, PAGE_SIZE, starting_after=cursor)

    walker = PageWalker(fetch, None)
    while (page := await walker.next_page()) is not None:
        for event in page.data:
            if event.id in found:
                repeated[event.id] = None
            else:
                found[event.id] = event
        if len(found) > limit:
            raise TooManyEventsError(site_id, limit)
    return Listing(list(found.values()), requests, tuple(repeated))


def plan_site(
    site_id: str,
    existing: Sequence[Event],
    specs: Sequence[EventSpec],
    *,
    prune: bool,
    set_currency: bool,
    list_requests: int,
    repeated: tuple[str, ...] = (),
) -> SitePlan:
    """Compare what a site has with what it should have (no I/O).

    Names are compared as Fathom stores them (outer whitespace aside). The
    oldest event of each name is the one a spec matches; the others of that
    name are extras. A spec that matches no event takes the oldest event of
    its first old name (``renamed_from``) that the site has, renamed;
    failing that it is created. Every event neither matched nor renamed is
    deleted with ``prune``, and left alone without.
    """
    by_name: dict[str, Event] = {}  # the oldest event of each name
    extras: list[Event] = []
    for event in existing:
        key = name_key(event.name)
        if key in by_name:
            extras.append(event)  # a second event of the same name
        else:
            by_name[key] = event
    create: list[EventSpec] = []
    rename: list[tuple[Event, EventSpec]] = []
    update: list[tuple[Event, EventSpec]] = []
    unchanged: list[Event] = []
    for spec in specs:
        current = by_name.pop(name_key(spec.name), None)
        if current is None:
            old = next(
                (by_name.pop(k) for k in map(name_key, spec.renamed_from) if k in by_name), None
            )
            if old is None:
                create.append(spec)
            else:  # the spec as the rename sends it: its currency only with set_currency
                rename.append((old, spec if set_currency else attrs.evolve(spec, currency=None)))
        elif set_currency and spec.currency is not None:
            update.append((current, spec))
        else:
            unchanged.append(current)
    left = [*by_name.values(), *extras]  # wanted by no spec
    # An event left with an old name of a spec: that spec matched or renamed another event
    # (had it matched none, this one would have been renamed).
    renamed_to = {name_key(old): spec for spec in specs for old in spec.renamed_from}
    not_renamed = [(e, renamed_to[key]) for e in left if (key := name_key(e.name)) in renamed_to]
    delete = left if prune else []
    if not prune:
        unchanged.extend(left)
    return SitePlan(
        site_id,
        tuple(existing),
        tuple(create),
        tuple(update),
        tuple(delete),
        tuple(unchanged),
        list_requests,
        rename=tuple(rename),
        not_renamed=tuple(not_renamed),
        repeated=repeated,
    )


async def for_each_site(
    site_ids: Sequence[str],
    work: Callable[[str], Awaitable[bool]],
    *,
    concurrency: int,
    on_failure: Callable[[str, FathomError], object],
    on_progress: ProgressCallback | None,
    counters: Callable[[], tuple[int, int]],
) -> None:
    """Run ``await work(site)`` (True: the site failed) for every site, ``concurrency`` at once.

    Any ``Exception`` out of ``work`` is that site's failure, passed to
    ``on_failure`` (see :func:`as_failure`): it never stops the other sites.
    A ``BaseException`` (cancellation, ``KeyboardInterrupt``) ends the job.
    If ``on_progress`` raises, the job stops and that exception is raised as it
    is (not once per site inside an exception group).
    """
    limiter = anyio.CapacityLimiter(concurrency)
    done = 0
    callback_error: list[Exception] = []

    async def one(site_id: str) -> None:
        nonlocal done
        async with limiter:
            try:
                failed = await work(site_id)
            except Exception as error:  # noqa: BLE001 - ours or not, it is this site's failure
                on_failure(site_id, as_failure(error))
                failed = True
        done += 1
        if on_progress is not None and not callback_error:
            sent, retries = counters()
            try:
                on_progress(Progress(done, len(site_ids), site_id, sent, retries, failed))
            except Exception as error:  # noqa: BLE001 - the caller's callback: anything goes
                callback_error.append(error)
                group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        for site_id in site_ids:
            group.start_soon(one, site_id)
    if callback_error:
        raise callback_error[0]


class _Counters:
    """Requests and retries the client sent since this job began."""

    def __init__(self, usage: ClientUsage) -> None:
        self._usage = usage
        self._start = (usage.requests_sent, usage.retries)

    def __call__(self) -> tuple[int, int]:
        sent, retries = self._start
        return self._usage.requests_sent - sent, self._usage.retries - retries


async def pull(
    events: EventCalls,
    usage: ClientUsage,
    site_ids: Iterable[str],
    *,
    concurrency: int | None,
    max_events_per_site: int,
    on_progress: ProgressCallback | None,
) -> PullResult:
    """Every event of every site; see :meth:`AsyncEvents.pull`."""
    concurrency = check_concurrency(concurrency, usage.max_in_flight)
    ids = check_site_ids(site_ids)
    limit = check_max_events_per_site(max_events_per_site)
    on_progress = check_progress(on_progress)
    found: dict[str, Listing] = {}
    failed: dict[str, FathomError] = {}

    async def work(site_id: str) -> bool:
        found[site_id] = await list_site(events, site_id, limit)
        return False

    await for_each_site(
        ids,
        work,
        concurrency=concurrency,
        on_failure=failed.__setitem__,
        on_progress=on_progress,
        counters=_Counters(usage),
    )
    result = PullResult()
    result.update((site_id, found[site_id].events) for site_id in ids if site_id in found)
    result.failed.update((site_id, failed[site_id]) for site_id in ids if site_id in failed)
    result.repeated.update(
        (site_id, found[site_id].repeated)
        for site_id in ids
        if site_id in found and found[site_id].repeated
    )
    return result


@attrs.frozen
class _SitePlanner:
    """Plans one site: the token's leave to read it, its listing, the comparison, the refusals.

    Made by :meth:`checked` from the caller's input, before anything is sent;
    ``token`` is filled in once it has been read.
    """

    events: EventCalls
    wanted: Mapping[str, Sequence[EventSpec]]
    limit: int
    prune: bool = attrs.field(kw_only=True)
    set_currency: bool = attrs.field(kw_only=True)
    token: TokenInfo | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def checked(
        cls,
        events: EventCalls,
        desired: Mapping[str, Sequence[EventSpec]],
        max_events_per_site: int,
        *,
        prune: bool,
        set_currency: bool,
    ) -> _SitePlanner:
        """Every input of a plan or a sync checked: the desired state, the cap, the two flags."""
        return cls(
            events,
            check_desired(desired),
            check_max_events_per_site(max_events_per_site),
            prune=check_flag("prune", prune),
            set_currency=check_flag("set_currency", set_currency),
        )

    async def read_token(self, ask_token: AskToken | None) -> tuple[_SitePlanner, str | None]:
        """This planner with the token's abilities, and a note if they could not be checked."""
        token, note = await _token_abilities_or_note(ask_token, bool(self.wanted))
        return attrs.evolve(self, token=token), note

    async def __call__(self, site_id: str) -> SitePlan:
        token = self.token
        if token is not None and not token.can_read(site_id):
            raise TokenPermissionError(site_id, "read", token.name)
        listing = await list_site(self.events, site_id, self.limit)
        site_plan = plan_site(
            site_id,
            listing.events,
            self.wanted[site_id],
            prune=self.prune,
            set_currency=self.set_currency,
            list_requests=listing.requests,
            repeated=listing.repeated,
        )
        if token is not None and not token.can_manage(site_id):
            site_plan = refuse_changes(
                site_plan, TokenPermissionError(site_id, "manage", token.name)
            )
        return site_plan


async def plan(
    events: EventCalls,
    usage: ClientUsage,
    desired: Mapping[str, Sequence[EventSpec]],
    *,
    prune: bool,
    set_currency: bool,
    concurrency: int | None,
    max_events_per_site: int,
    on_progress: ProgressCallback | None,
    ask_token: AskToken | None,
) -> SyncPlan:
    """List each site once and compare; see :meth:`AsyncEvents.plan`.

    With ``ask_token``, the token's abilities are read first (one request,
    or none when the client has them already): a site the token may not read
    fails before any request for it, and the changes it may not make are
    moved to the site's ``refused``. If the token cannot be read, planning
    goes on without the check and says so in ``token_note``.
    """
    concurrency = check_concurrency(concurrency, usage.max_in_flight)
    on_progress = check_progress(on_progress)
    planner = _SitePlanner.checked(
        events, desired, max_events_per_site, prune=prune, set_currency=set_currency
    )
    planner, note = await planner.read_token(ask_token)
    plans: dict[str, SitePlan] = {}
    failed: dict[str, FathomError] = {}

    async def work(site_id: str) -> bool:
        plans[site_id] = await planner(site_id)
        return False

    await for_each_site(
        list(planner.wanted),
        work,
        concurrency=concurrency,
        on_failure=failed.__setitem__,
        on_progress=on_progress,
        counters=_Counters(usage),
    )
    ordered = tuple(plans[s] for s in planner.wanted if s in plans)
    return SyncPlan(
        ordered,
        prune=planner.prune,
        set_currency=planner.set_currency,
        failed=failed,
        max_events_per_site=planner.limit,
        token_checked=planner.token is not None,
        token_note=note,
    )


async def _token_abilities_or_note(
    ask_token: AskToken | None, needed: bool
) -> tuple[TokenInfo | None, str | None]:
    """The token's abilities, or None and a note saying why they were not checked."""
    if ask_token is None:
        return None, "the token check was turned off (check_token=False)"
    if not needed:
        return None, "no site to check"
    try:
        return await ask_token(), None
    except FathomError as error:
        return None, f"the token's abilities could not be read, so they were not checked: {error}"


def refuse_changes(site: SitePlan, error: TokenPermissionError) -> SitePlan:
    """``site`` with every change moved to ``refused`` (as ``error``): none is sent."""
    refused = (
        *(Failure("create", spec.name, error) for spec in site.create),
        *(Failure("rename", event.name, error, to=spec.name) for event, spec in site.rename),
        *(Failure("update", event.name, error) for event, _ in site.update),
        *(Failure("delete", event.name, error) for event in site.delete),
    )
    return attrs.evolve(site, create=(), rename=(), update=(), delete=(), refused=refused)


async def _recorded(
    report: SiteReport,
    action: str,
    target: str,
    call: Callable[[], Awaitable[T]],
    *,
    to: str | None = None,
) -> T | None:
    """Run one change; a failure (of any kind: see :func:`as_failure`) goes into the report."""
    try:
        return await call()
    except Exception as error:  # noqa: BLE001 - ours or not, the change's outcome is recorded
        report.failed.append(Failure(action, target, as_failure(error, sent=True), to=to))
        return None


async def _create(
    events: EventCalls, site_id: str, spec: EventSpec, report: SiteReport, limit: int
) -> None:
    create = functools.partial(events.create, site_id, spec.name, spec.currency)
    try:
        event = await create()
    except Exception as error:  # noqa: BLE001 - ours or not, the create's outcome is recorded
        failure = Failure("create", spec.name, as_failure(error, sent=True))
    else:
        report.created.append(event)
        return
    if not failure.error.may_have_been_applied:
        report.failed.append(failure)
        return
    # The create may have taken effect: look before sending it again.
    try:
        listing = await list_site(events, site_id, limit)
    except Exception:  # noqa: BLE001 - the outcome is still unknown, as the create's error says
        report.failed.append(failure)
        return
    wanted = name_key(spec.name)
    match = next((e for e in listing.events if name_key(e.name) == wanted), None)
    if (found := match or await _recorded(report, "create", spec.name, create)) is not None:
        report.created.append(found)


@contextlib.contextmanager
def _in_flight(
    report: SiteReport, action: str, target: str, *, to: str | None = None
) -> Iterator[None]:
    """Note a change that was cut off by cancellation once a request of it went out.

    Such a change may have taken effect. One cut off before any of its
    requests was sent (waiting for a request slot, the rate limit or a
    cool-down) certainly did not, and is not noted.
    """
    with noting_sends() as sends:
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, Exception) and sends.sent:
                report.interrupted.append(describe_change(action, target, to))
            raise


async def _change(
    report: SiteReport,
    action: str,
    target: str,
    call: Callable[[], Awaitable[T]],
    *,
    to: str | None = None,
) -> T | None:
    """Send one change: its failure recorded, and noted as in flight if cut off once sent."""
    with _in_flight(report, action, target, to=to):
        return await _recorded(report, action, target, call, to=to)


async def _apply_site(events: EventCalls, site: SitePlan, report: SiteReport, limit: int) -> bool:
    """Send one site's changes in order: renames, creates, updates, deletes (last)."""
    site_id = site.site_id
    report.repeated.extend(site.repeated)
    for event, spec in site.rename:
        rename = functools.partial(events.update, site_id, event.id, spec.name, spec.currency)
        renamed = await _change(report, "rename", event.name, rename, to=spec.name)
        if renamed is not None:
            report.renamed.append(renamed)
    for spec in site.create:
        with _in_flight(report, "create", spec.name):
            await _create(events, site_id, spec, report, limit)
    for event, spec in site.update:
        update = functools.partial(events.update, site_id, event.id, currency=spec.currency)
        updated = await _change(report, "update", event.name, update)
        if updated is not None:
            report.updated.append(updated)
    for event in site.delete:
        delete = functools.partial(events.delete, site_id, event.id)
        if await _change(report, "delete", event.name, delete) is not None:
            report.deleted.append(event.id)
    report.left_as_they_were(len(site.unchanged), (event.name for event in site.unchanged))
    report.refused.extend(site.refused)
    return bool(report.failed)


async def apply(
    events: EventCalls,
    usage: ClientUsage,
    sync_plan: SyncPlan,
    *,
    concurrency: int | None,
    on_progress: ProgressCallback | None,
    report: SyncReport | None,
    max_deletes: int | None,
) -> SyncReport:
    """Carry out a plan; see :meth:`AsyncEvents.apply`."""
    concurrency = check_concurrency(concurrency, usage.max_in_flight)
    if not isinstance(sync_plan, SyncPlan):
        raise InvalidRequestError("plan", "must be a SyncPlan from events.plan()")
    on_progress = check_progress(on_progress)
    report = _check_report(report)
    _check_deletes(sync_plan.sites, check_max_deletes(max_deletes))
    report.token_checked, report.token_note = sync_plan.token_checked, sync_plan.token_note
    by_site = {site.site_id: site for site in sync_plan.sites}
    _open_sites(report, by_site)

    async def work(site_id: str) -> bool:
        site = by_site[site_id]
        return await _apply_site(events, site, report.site(site_id), sync_plan.max_events_per_site)

    counters = _Counters(usage)
    with _accounted(report, counters):
        await _changing(
            report,
            list(by_site),
            work,
            concurrency=concurrency,
            on_progress=on_progress,
            counters=counters,
        )
    return report


async def sync(
    events: EventCalls,
    usage: ClientUsage,
    desired: Mapping[str, Sequence[EventSpec]],
    *,
    prune: bool,
    set_currency: bool,
    concurrency: int | None,
    max_events_per_site: int,
    on_progress: ProgressCallback | None,
    ask_token: AskToken | None,
    report: SyncReport | None,
    max_deletes: int | None,
) -> SyncReport:
    """Plan and apply each site in one pass; see :meth:`AsyncEvents.sync`.

    Each site is planned as :func:`plan` plans it and its changes are sent at
    once, as :func:`apply` sends them: no site waits for the others to be
    listed, and a site's listing is let go as soon as it is planned (only the
    events to rename, update or delete are held while the changes are sent).

    With ``max_deletes`` and ``prune``, the deletes of every site must be
    known before any change is sent: every site is planned first (its
    changes held, its listing let go), then the bound is checked, then the
    changes are sent; ``on_progress`` is called as each site's changes end.
    Past the bound, :class:`TooManyDeletesError` is raised and the report
    holds only the requests sent (the listings) and the sites that could not
    be listed: nothing was changed, nothing is marked done or cancelled.
    """
    concurrency = check_concurrency(concurrency, usage.max_in_flight)
    on_progress = check_progress(on_progress)
    planner = _SitePlanner.checked(
        events, desired, max_events_per_site, prune=prune, set_currency=set_currency
    )
    report = _check_report(report)
    max_deletes = check_max_deletes(max_deletes)
    counters = _Counters(usage)  # before the token's request: the report counts it
    refusal: TooManyDeletesError | None = None
    with _accounted(report, counters):
        planner, report.token_note = await planner.read_token(ask_token)
        report.token_checked = planner.token is not None
        site_ids = list(planner.wanted)
        _open_sites(report, site_ids)

        async def changes_of(site_id: str) -> _Planned | None:
            return await _changes_of(planner, report.site(site_id))

        async def send(site_id: str, planned: _Planned | None) -> bool:
            if planned is None:
                return True
            site_report = report.site(site_id)
            site_report.left_as_they_were(planned.skipped, planned.skipped_names)
            return await _apply_site(events, planned.changes, site_report, planner.limit)

        # With the bound, nothing is recorded until every site is planned and it holds.
        if max_deletes is not None and planner.prune:
            planned = await _plan_first(
                report, site_ids, changes_of, concurrency=concurrency, counters=counters
            )
            refusal = _too_many_deletes((p.changes for p in planned.values() if p), max_deletes)

            async def work(site_id: str) -> bool:
                return await send(site_id, planned.pop(site_id, None))

        else:

            async def work(site_id: str) -> bool:
                return await send(site_id, await changes_of(site_id))

        if refusal is None:
            await _changing(
                report,
                site_ids,
                work,
                concurrency=concurrency,
                on_progress=on_progress,
                counters=counters,
            )
    if refusal is not None:  # raised here: the report is not marked cancelled, nothing was
        raise refusal
    return report


@attrs.frozen
class _Planned:
    """A site's changes, and how many events it leaves as they are (their names if kept)."""

    changes: SitePlan
    skipped: int
    skipped_names: tuple[str, ...]


async def _changes_of(planner: _SitePlanner, report: SiteReport) -> _Planned | None:
    """A site's changes, its listing let go; None (a ``list`` failure) if it cannot be planned.

    Only the changes are kept while they are sent: the listing (all but the
    events to rename, update or delete) is let go now, not after the site's
    last change. Of the events it leaves as they are, a count is kept, and
    their names only if the report keeps them; both are recorded when the
    changes are sent.
    """
    site_id = report.site_id
    try:
        site_plan = await planner(site_id)
    except Exception as error:  # noqa: BLE001 - ours or not, it is this site's failure
        report.failed.append(Failure("list", site_id, as_failure(error)))
        return None
    unchanged = site_plan.unchanged
    names = tuple(e.name for e in unchanged) if report.keep_skipped_names else ()
    return _Planned(attrs.evolve(site_plan, existing=(), unchanged=()), len(unchanged), names)


async def _plan_first(
    report: SyncReport,
    site_ids: Sequence[str],
    changes_of: Callable[[str], Awaitable[_Planned | None]],
    *,
    concurrency: int,
    counters: _Counters,
) -> dict[str, _Planned | None]:
    """Every site's changes, planned before any is sent (None: the site could not be)."""
    planned: dict[str, _Planned | None] = {}

    async def plan_one(site_id: str) -> bool:
        planned[site_id] = await changes_of(site_id)
        return planned[site_id] is None

    await _changing(
        report, site_ids, plan_one, concurrency=concurrency, on_progress=None, counters=counters
    )
    return planned


def _open_sites(report: SyncReport, site_ids: Iterable[str]) -> None:
    """Make every site's report before any work starts: ``report.sites`` then never grows
    while the work runs (a progress display may read it from another thread)."""
    for site_id in site_ids:
        report.site(site_id)


def _too_many_deletes(
    sites: Iterable[SitePlan], max_deletes: int | None
) -> TooManyDeletesError | None:
    """The error when ``sites`` would delete more than ``max_deletes``; None when they would not."""
    if max_deletes is None:
        return None
    deletes = sum(len(site.delete) for site in sites)
    return TooManyDeletesError(deletes, max_deletes) if deletes > max_deletes else None


def _check_deletes(sites: Iterable[SitePlan], max_deletes: int | None) -> None:
    """Raise :class:`TooManyDeletesError` when ``sites`` would delete more than ``max_deletes``."""
    if (refusal := _too_many_deletes(sites, max_deletes)) is not None:
        raise refusal


def _check_report(report: SyncReport | None) -> SyncReport:
    """The caller's report to fill in, or a new one."""
    if report is None:
        return SyncReport()
    if not isinstance(report, SyncReport):
        raise InvalidRequestError("report", f"must be a SyncReport or None, got {shown(report)}")
    return report


@contextlib.contextmanager
def _accounted(report: SyncReport, counters: _Counters) -> Iterator[None]:
    """Keep ``report`` true however the job ends.

    Anything that stops the job (a cancellation, ``KeyboardInterrupt``, an
    error from ``on_progress``) marks the report ``cancelled``; the requests
    sent are counted either way.
    """
    try:
        yield
    except BaseException:
        report.cancelled = True
        raise
    finally:
        report.requests_sent, report.retries = counters()


async def _changing(
    report: SyncReport,
    site_ids: Sequence[str],
    work: Callable[[str], Awaitable[bool]],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None,
    counters: _Counters,
) -> None:
    """Run the changing ``work`` of each site.

    An error out of a site's work outside any one change (those are recorded
    as they happen) is that site's ``apply`` failure.
    """

    def on_failure(site_id: str, error: FathomError) -> None:
        report.site(site_id).failed.append(Failure("apply", site_id, error))

    await for_each_site(
        site_ids,
        work,
        concurrency=concurrency,
        on_failure=on_failure,
        on_progress=on_progress,
        counters=counters,
    )
