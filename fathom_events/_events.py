"""The events resource: ``client.events`` on the async client.

Each method checks its input, builds its request in ``_protocol`` and hands it
to the client's call (retries, limits, transport). The bulk methods delegate
to ``_bulk``, which works through these same methods (``_bulk.EventCalls``)
and reads the client's counters through ``_bulk.ClientUsage``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from . import _bulk
from . import _protocol as proto
from ._bulk_types import (
    DEFAULT_MAX_EVENTS_PER_SITE,
    EventSpec,
    ProgressCallback,
    PullResult,
    SyncPlan,
    SyncReport,
)
from ._checks import check_flag
from ._pagination import AsyncPaginator, cursor_paginator
from .exceptions import NotFoundError
from .types import DeletedEvent, Event, EventPage, TokenInfo

__all__ = ["AsyncEvents"]

T = TypeVar("T")


F = TypeVar("F", bound=Callable[..., Awaitable[object]])


def _deprecated(message: str) -> Callable[[F], F]:
    """Warn on every call; ``__deprecated__`` (PEP 702) lets the blocking twin warn itself."""

    def mark(method: F) -> F:
        @functools.wraps(method)
        async def warned(*args: object, **kwargs: object) -> object:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            return await method(*args, **kwargs)

        warned.__deprecated__ = message  # type: ignore[attr-defined]
        return warned  # type: ignore[return-value]

    return mark


class _Call(Protocol):
    def __call__(
        self, request: proto.Request, into: type[T] | proto.Lenient[T], /
    ) -> Awaitable[T]: ...


class AsyncEvents:
    """The events (conversion goals) of your sites: ``client.events``; made by the client.

    Every id is opaque: any string is sent as one percent-encoded path segment.
    Input is checked before anything is sent (:class:`InvalidRequestError`,
    naming the field and the rule).
    """

    def __init__(
        self,
        call: _Call,
        usage: _bulk.ClientUsage,
        ensure_open: Callable[[], None],
        token: Callable[[], Awaitable[TokenInfo]],
    ) -> None:
        self._call = call
        self._usage = usage  # for the bulk methods: default concurrency, request counts
        self._ensure_open = ensure_open
        self._token = token  # for plan and sync: what the token may do, asked once per client

    def _token_check(self, check_token: object) -> _bulk.AskToken | None:
        """How plan and sync ask what the token may do, or None: ``check_token=False``."""
        return self._token if check_flag("check_token", check_token) else None

    async def list(
        self,
        site_id: str,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> EventPage:
        """One page of a site's events.

        To walk every event, use :meth:`paginate`.

        Args:
            site_id: The site whose events to list.
            limit: Events on the page, 1..100 (``None``: the API's default, 10).
            starting_after: An event id: the events after it, oldest first.
            ending_before: An event id: the events before it, newest first
                (not with ``starting_after``).
        """
        return await self._call(
            proto.build_list(site_id, limit, starting_after, ending_before), EventPage
        )

    async def get(self, site_id: str, event_id: str) -> Event:
        """One event of ``site_id``, by its ``event_id``; ``currency`` is ``None`` here."""
        return await self._call(proto.build_get(site_id, event_id), Event)

    async def create(self, site_id: str, name: str, currency: str | None = None) -> Event:
        """Create an event on a site.

        A create is retried only when it certainly had no effect: see
        :class:`RetryPolicy`.

        Args:
            site_id: The site to create it on.
            name: Its name: 1..255 characters, no outer whitespace.
            currency: A :class:`Currency` or its string; omitted, Fathom uses dollar.
        """
        return await self._call(proto.build_create(site_id, name, currency), Event)

    async def update(
        self,
        site_id: str,
        event_id: str,
        name: str | None = None,
        currency: str | None = None,
    ) -> Event:
        """Change an event's name and/or currency; only the fields given are sent.

        Args:
            site_id: The event's site.
            event_id: The event to change.
            name: Its new name (``None``: unchanged).
            currency: Its new currency (``None``: unchanged); at least one of the two.
        """
        return await self._call(proto.build_update(site_id, event_id, name, currency), Event)

    async def delete(self, site_id: str, event_id: str) -> DeletedEvent:
        """Delete the event ``event_id`` of ``site_id``. It cannot be undone, by you or by Fathom.

        A success answered without the event's id (``204 No Content``, ``{}``,
        ``[]``) says the event is gone: it returns ``DeletedEvent(event_id,
        deleted=True)``. A success whose body is not JSON raises
        :class:`ResponseDecodeError`.

        A delete whose earlier attempt may have taken effect (its answer was
        lost: a 5xx other than 503, a timeout, a dropped connection) and whose
        retry is then answered 404 has reached its end state, so it returns
        ``DeletedEvent(event_id, deleted=True)``. A 404 after attempts that
        were refused (429, 503) is raised as usual.
        """
        request = proto.build_delete(site_id, event_id)  # checks event_id
        try:
            return await self._call(request, proto.deleted_answer(event_id))
        except NotFoundError as error:
            if error.may_have_been_applied:  # an earlier attempt's answer was lost
                return DeletedEvent(event_id, deleted=True)
            raise

    @_deprecated(
        "events.wipe() is deprecated: Fathom retired the wipe endpoint (it answers 410 Gone);"
        " use events.delete() to remove an event"
    )
    async def wipe(self, site_id: str, event_id: str) -> None:
        """Deprecated: Fathom retired this endpoint; it always raises :class:`GoneError`.

        It took ``site_id`` and ``event_id`` and wiped the event's data.

        It still sends the documented ``DELETE .../data`` once, so that if
        Fathom ever answers differently you find out. Use :meth:`delete` to
        remove an event.
        """
        await self._call(proto.build_wipe(site_id, event_id), DeletedEvent)

    def paginate(
        self,
        site_id: str,
        page_size: int = 100,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncPaginator[Event]:
        """Every event of a site, fetched lazily one page at a time.

        Nothing is sent until the first item (or page) is asked for. See
        :class:`AsyncPaginator`.

        Args:
            site_id: The site whose events to walk.
            page_size: Events per request, 1..100.
            starting_after: Walk forward (oldest first) from after this event;
                forward from the oldest event by default.
            ending_before: Walk backward (newest first) from before this event.
        """
        proto.check_limit(page_size, field="page_size")
        proto.build_list(site_id, page_size, starting_after, ending_before)  # check input now
        return cursor_paginator(
            functools.partial(self.list, site_id), page_size, starting_after, ending_before
        )

    async def pull(
        self,
        site_ids: Iterable[str],
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        max_events_per_site: int = DEFAULT_MAX_EVENTS_PER_SITE,
    ) -> PullResult:
        """Every event of every site, sites fetched concurrently, 100 events per page.

        One site failing does not lose the others: the result maps each site
        read to its events, oldest first, and ``result.failed`` maps each site
        that failed to its error (an error that is not a :class:`FathomError`
        is wrapped in :class:`UnexpectedError`).

        Args:
            site_ids: The sites to read (any iterable, read once).
            concurrency: The sites in flight at once (default: four per
                request slot of the client's ``max_in_flight``, so that every
                slot finds a request ready; the slots bound the requests).
            on_progress: Called with a :class:`Progress` as each site ends.
            max_events_per_site: A site with more events (default 100,000,
                well above any real site) fails with
                :class:`TooManyEventsError`: listing stops there.
        """
        self._ensure_open()  # a closed client refuses outright, not site by site
        return await _bulk.pull(
            self,
            self._usage,
            site_ids,
            concurrency=concurrency,
            max_events_per_site=max_events_per_site,
            on_progress=on_progress,
        )

    async def plan(
        self,
        desired: Mapping[str, Sequence[EventSpec]],
        prune: bool = False,
        set_currency: bool = False,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        max_events_per_site: int = DEFAULT_MAX_EVENTS_PER_SITE,
        check_token: bool = True,
    ) -> SyncPlan:
        """Plan a sync: list each site once and say what must change.

        ``desired`` maps site ids to the :class:`EventSpec` each site should
        have; events match by name, as Fathom stores it (outer whitespace
        aside; case and everything else count). A spec that matches no event
        but whose ``renamed_from`` names one the site has renames that event
        (one update: its id and history are kept) rather than creating a new
        one. Missing events are created with their spec's currency. With
        ``prune=True`` events not in the spec (and second events of a same
        name) are deleted. Events are keyed by id, so an event a listing
        shows twice counts once (``SitePlan.repeated``). Fathom never reports an
        existing event's currency, so it is rewritten only with
        ``set_currency=True``, one update per event whose spec names a
        currency (such a plan is never empty). Sites whose listing failed are
        in ``plan.failed``, as with :meth:`pull`, including sites with more
        than ``max_events_per_site`` events (default 100,000), which the plan
        keeps for :meth:`apply`. ``on_progress`` is called as each site is
        listed.

        First it asks what the token may do (``client.token()``: one request
        per client, none once known). A site the token may not read is in
        ``plan.failed`` (:class:`TokenPermissionError`) and nothing is sent
        for it; a change the token may not make (on a site it may only read)
        is in the site's ``refused``, not counted in ``plan.requests`` and
        never sent by :meth:`apply`. ``check_token=False`` skips the check;
        if the token cannot be read, planning goes on without it. Either way
        ``plan.token_checked`` is False and ``plan.token_note`` says why.

        Args:
            desired: Site ids mapped to the :class:`EventSpec` each site
                should have (any iterable of specs per site, read once).
            prune: Delete the events no spec names (and second events of one name).
            set_currency: Rewrite the currency of existing events whose spec names one.
            concurrency: The sites listed at once (default as for :meth:`pull`).
            on_progress: Called with a :class:`Progress` as each site is listed.
            max_events_per_site: The most events read from one site (as for :meth:`pull`).
            check_token: Ask what the token may do first (default True).
        """
        self._ensure_open()  # a closed client refuses outright, not site by site
        ask_token = self._token_check(check_token)
        return await _bulk.plan(
            self,
            self._usage,
            desired,
            prune=prune,
            set_currency=set_currency,
            concurrency=concurrency,
            max_events_per_site=max_events_per_site,
            on_progress=on_progress,
            ask_token=ask_token,
        )

    async def sync(
        self,
        desired: Mapping[str, Sequence[EventSpec]],
        prune: bool = False,
        set_currency: bool = False,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        report: SyncReport | None = None,
        max_events_per_site: int = DEFAULT_MAX_EVENTS_PER_SITE,
        check_token: bool = True,
        max_deletes: int | None = None,
    ) -> SyncReport:
        """Plan and apply in one pass: each site's changes go out as soon as it is listed.

        What :meth:`plan` then :meth:`apply` do, with the same arguments and
        the same changes, but site by site: no site waits for every other to
        be listed first, and a site's listing is let go once it is planned
        (only the events to update or delete are held while its changes are
        sent), so a job over many sites ends sooner and holds less. Use
        :meth:`plan` and :meth:`apply` to see the changes before making them.

        A site that cannot be listed (or that the token may not read) is in
        its report's ``failed`` with the action ``list``, and nothing is sent
        to change it. A change the token may not make is in ``refused`` and
        never sent. ``report.requests_sent`` counts every request the sync
        sent, the token's and the listings' too. Failures are recorded, not
        raised, as in :meth:`apply`; pass ``report`` to keep what was done if
        the sync is cancelled.

        ``max_deletes``: when the sync would delete more than this many
        events in all, :class:`TooManyDeletesError` is raised before any
        change is sent; with ``prune=True`` every site is then planned before
        any change is sent.

        Args:
            desired: As for :meth:`plan`.
            prune: As for :meth:`plan`.
            set_currency: As for :meth:`plan`.
            concurrency: The sites worked on at once (default as for :meth:`pull`).
            on_progress: Called with a :class:`Progress` as each site is done.
            report: A :class:`SyncReport` of yours, filled in as the sync goes.
            max_events_per_site: As for :meth:`plan`.
            check_token: As for :meth:`plan`.
            max_deletes: The most events the sync may delete in all (``None``: no limit).
        """
        self._ensure_open()  # a closed client refuses outright, not site by site
        ask_token = self._token_check(check_token)
        return await _bulk.sync(
            self,
            self._usage,
            desired,
            prune=prune,
            set_currency=set_currency,
            concurrency=concurrency,
            max_events_per_site=max_events_per_site,
            on_progress=on_progress,
            ask_token=ask_token,
            report=report,
            max_deletes=max_deletes,
        )

    async def apply(
        self,
        plan: SyncPlan,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        report: SyncReport | None = None,
        *,
        max_deletes: int | None = None,
    ) -> SyncReport:
        """Carry out a plan: sites concurrently, each site's changes in order.

        Sends one request per change, nothing more except retries and, after
        a create that may have taken effect although it failed, one listing of
        that site (up to the plan's ``max_events_per_site``) to look before
        creating again: a sync never makes a duplicate. Failures are recorded
        in the report, not raised, whatever their kind (an error that is not a
        :class:`FathomError` is wrapped in :class:`UnexpectedError`, marked
        ``may_have_been_applied`` when it broke a change that was sent);
        running ``plan`` and ``apply`` again converges. Pass ``report`` to keep
        what was done if the apply is cancelled (its ``cancelled`` is then
        True, and changes cut off after their request went out are in
        ``interrupted``). ``max_deletes``: when the plan deletes more than this
        many events in all, :class:`TooManyDeletesError` is raised before
        anything is sent.

        Args:
            plan: The :class:`SyncPlan` that :meth:`plan` made.
            concurrency: The sites worked on at once (default as for :meth:`pull`).
            on_progress: Called with a :class:`Progress` as each site is done.
            report: A :class:`SyncReport` of yours, filled in as the apply goes.
            max_deletes: The most events the plan may delete in all (``None``: no limit).
        """
        self._ensure_open()  # a closed client refuses outright, not site by site
        return await _bulk.apply(
            self,
            self._usage,
            plan,
            concurrency=concurrency,
            on_progress=on_progress,
            report=report,
            max_deletes=max_deletes,
        )
