"""The data of bulk work: what a sync should achieve, its plan, and what it did.

Plans are frozen: they are what was decided. Reports are filled in while an
apply runs, so a report passed in by the caller still says what was done if
the apply is cancelled half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import attrs

from ._checks import check_int_at_least, shown
from ._protocol import check_currency, check_name, name_key
from .exceptions import FathomError, InvalidRequestError
from .types import Currency, Event

__all__ = [
    "DEFAULT_MAX_EVENTS_PER_SITE",
    "EventSpec",
    "Failure",
    "NameClaims",
    "Progress",
    "ProgressCallback",
    "PullResult",
    "SitePlan",
    "SiteReport",
    "SyncPlan",
    "SyncReport",
    "check_max_events_per_site",
    "describe_change",
]

#: The most events a bulk job lists from one site before it records the site as
#: failed (:class:`~fathom_events.TooManyEventsError`): well above any real site,
#: low enough that a server which never stops answering ``has_more`` cannot run a
#: job (and its memory) without end.
DEFAULT_MAX_EVENTS_PER_SITE = 100_000


def check_max_events_per_site(value: int) -> int:
    """The per-site cap of a bulk job: an int >= 1 (anything else is refused, named)."""
    return check_int_at_least("max_events_per_site", value)


# The converters' annotations are what EventSpec's signature shows; each checks any value.
def _spec_name(value: str) -> str:
    return check_name("name", value)


def _spec_currency(value: Currency | str | None) -> Currency | None:
    return None if value is None else check_currency("currency", value)


def _spec_renamed_from(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidRequestError(
            "renamed_from", f"must be a list of names (not one string), got {shown(value)}"
        )
    names: dict[str, str] = {}  # by the name as Fathom stores it
    for index, item in enumerate(value):
        name = check_name(f"renamed_from[{index}]", item)
        if name_key(name) in names:
            raise InvalidRequestError("renamed_from", f"names {name!r} twice")
        names[name_key(name)] = name
    return tuple(names.values())


@attrs.frozen
class EventSpec:
    """An event a site should have, for ``plan`` and ``sync``.

    Each value is checked as the spec is made (``InvalidRequestError`` naming
    the field and the rule otherwise).

    Attributes:
        name: 1 to 255 characters with no outer whitespace (Fathom trims it).
            It matches a site's event whose name is the same once outer
            whitespace is left aside; the comparison is otherwise exact (case
            and inner spaces count).
        currency: Used when the event is created, and for an existing event
            only with ``set_currency=True``: a :class:`Currency` (or its
            string, such as ``"euro"``), or ``None`` for Fathom's default.
        renamed_from: Names the event had before, so that a rename keeps the
            event (its id, and with it its conversion history): on a site that
            has an event of an old name and none of ``name``, a sync renames
            that event (the first old name found, in this order) instead of
            creating a new one and, with prune, deleting the old one. A list
            of names, never one string.
    """

    name: str = attrs.field(converter=_spec_name)
    currency: Currency | None = attrs.field(default=None, converter=_spec_currency)
    renamed_from: tuple[str, ...] = attrs.field(
        default=(), converter=_spec_renamed_from, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        if name_key(self.name) in map(name_key, self.renamed_from):
            raise InvalidRequestError("renamed_from", f"holds {self.name!r}, the event's own name")


@attrs.define
class NameClaims:
    """The names one site's specs claim, as Fathom stores them, so that none is claimed twice.

    A name is claimed by the spec that wants it, and an old name by the one
    spec whose ``renamed_from`` holds it: a name wanted twice, an old name
    that is also wanted, or an old name two specs hold would leave a sync
    unable to say which event is which. ``where`` labels each claim, for the
    message about a later one. ``base`` holds claims made already for every
    site (a sync file's common events): they count, and are never copied.
    """

    base: NameClaims | None = None
    wanted: dict[str, tuple[str, str]] = attrs.field(factory=dict)
    old: dict[str, tuple[str, str]] = attrs.field(factory=dict)

    def _wanted(self, key: str) -> tuple[str, str] | None:
        """Who wants the name ``key`` (its spec's name, and where), here or in ``base``."""
        return self._find(key, old=False)

    def _old(self, key: str) -> tuple[str, str] | None:
        """Whose ``renamed_from`` holds the name ``key`` (its spec's name, and where)."""
        return self._find(key, old=True)

    def _find(self, key: str, *, old: bool) -> tuple[str, str] | None:
        for claims in (self, self.base):
            if claims is not None and (found := (claims.old if old else claims.wanted).get(key)):
                return found
        return None

    def claim(self, spec: EventSpec, where: str = "") -> tuple[str, str] | None:
        """Claim ``spec``'s names; if one is taken already, nothing is claimed and the field
        at fault (``name``, or ``renamed_from[i]``) and the problem are returned."""
        name = spec.name
        if (wanted := self._wanted(name_key(name))) is not None:
            at = wanted[1]
            return (
                "name",
                f"the event {name!r} is already in {at}" if at else f"names {name!r} twice",
            )
        if (renamed := self._old(name_key(name))) is not None:
            holder, at = renamed
            return (
                "name",
                f"the event {name!r} is wanted, but {holder!r}{_at(at)} is renamed from it",
            )
        for index, old in enumerate(spec.renamed_from):
            if (wanted := self._wanted(name_key(old))) is not None:
                return (
                    f"renamed_from[{index}]",
                    f"renamed_from names the event {old!r}, which is also wanted{_at(wanted[1])}",
                )
            if (renamed := self._old(name_key(old))) is not None:
                holder, at = renamed
                return (
                    f"renamed_from[{index}]",
                    f"{old!r} is in the renamed_from of both {holder!r}{_at(at)} and {name!r}",
                )
        self.wanted[name_key(name)] = (name, where)
        self.old.update((name_key(old), (name, where)) for old in spec.renamed_from)
        return None


def _at(where: str) -> str:
    return f" (in {where})" if where else ""


@attrs.frozen
class Progress:
    """Where a bulk job stands, passed to ``on_progress`` after each site finishes.

    Attributes:
        sites_done: Sites finished so far, this one included (``apply``'s
            phase of a sync counts changes instead).
        sites_total: Sites the job has in all.
        site_id: The site just finished.
        requests_sent: Requests the job's client has sent so far.
        retries: How many of those were retries.
        failed: Whether this site's work failed.
    """

    sites_done: int
    sites_total: int
    site_id: str
    requests_sent: int
    retries: int
    failed: bool


ProgressCallback = Callable[[Progress], object]


@attrs.frozen
class Failure:
    """One thing that did not work: what was tried, on what, and the error.

    ``str(failure)`` says it in words: ``create 'Signed up': ...``.

    Attributes:
        action: What was tried: ``"create"``, ``"rename"``, ``"update"``,
            ``"delete"``, ``"list"`` (a site that could not be listed) or
            ``"apply"`` (a site's work broke outside any one change).
        target: The event's name (the old one, for a rename), or the site's id.
        error: Why: a :class:`FathomError` (an error of another kind is an
            :class:`UnexpectedError` whose ``__cause__`` it is).
        to: The new name of a rename, else ``None``.
    """

    action: str
    target: str
    error: FathomError
    to: str | None = attrs.field(default=None, kw_only=True)

    def __str__(self) -> str:
        return f"{describe_change(self.action, self.target, self.to)}: {self.error}"


def describe_change(action: str, target: str, to: str | None = None) -> str:
    """A change in words: ``create 'Signed up'``, ``rename 'Sign-up' -> 'Signed up'``."""
    return f"{action} {target!r}" if to is None else f"{action} {target!r} -> {to!r}"


class PullResult(dict[str, list[Event]]):
    """Every event of every site that could be read, by site id (a dict).

    Each site's events are oldest first. Sites that failed are not keys.

    Attributes:
        failed: Each site that could not be read, with its error.
        repeated: Each site whose listing showed an event more than once
            (pages that overlap while events are created), with those events'
            ids: each is in the site's list once, as it was first seen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.failed: dict[str, FathomError] = {}
        self.repeated: dict[str, tuple[str, ...]] = {}

    @property
    def ok(self) -> bool:
        """True when every site was read."""
        return not self.failed


@attrs.frozen
class SitePlan:
    """What a sync will do to one site: one of :attr:`SyncPlan.sites`.

    Attributes:
        site_id: The site.
        existing: Its events as planning listed them, oldest first.
        create: Each spec whose event the site lacks: one create each.
        update: Each existing event paired with the spec whose currency will
            be written (only when the plan was made with ``set_currency=True``).
        delete: Each event to delete (only with prune).
        unchanged: Each event that stays as it is.
        list_requests: How many list pages planning took.
        refused: Each change the site needs but the token may not make (a
            :class:`Failure` holding a :class:`TokenPermissionError`, known
            from the token's abilities): it is not in ``create``, ``rename``,
            ``update`` or ``delete``, so it is neither counted nor sent.
        rename: Each event that has an old name of a spec (one of its
            ``renamed_from``) paired with that spec as the rename sends it:
            one update gives the event the spec's name (and its currency,
            which is ``None`` unless the plan was made with
            ``set_currency=True``), so it keeps its id and history.
        not_renamed: Each event that has an old name of a spec but is not
            renamed, because the site has an event of the spec's name already
            (or another of its old names was renamed), paired with that spec:
            such an event is an extra like any other, deleted only with prune
            (then it is in ``delete`` too).
        repeated: The id of each event the listing showed more than once: it
            counts once, as first seen.
    """

    site_id: str
    existing: tuple[Event, ...]
    create: tuple[EventSpec, ...] = ()
    update: tuple[tuple[Event, EventSpec], ...] = ()
    delete: tuple[Event, ...] = ()
    unchanged: tuple[Event, ...] = ()
    list_requests: int = 0
    refused: tuple[Failure, ...] = ()
    rename: tuple[tuple[Event, EventSpec], ...] = attrs.field(default=(), kw_only=True)
    not_renamed: tuple[tuple[Event, EventSpec], ...] = attrs.field(default=(), kw_only=True)
    repeated: tuple[str, ...] = attrs.field(default=(), kw_only=True)

    @property
    def changes(self) -> int:
        """The requests applying this site's plan will send (one per change)."""
        return len(self.create) + len(self.rename) + len(self.update) + len(self.delete)


@attrs.frozen
class SyncPlan:
    """A sync to apply: per site, what to create, rename, update and delete.

    What :meth:`AsyncEvents.plan` returns and :meth:`AsyncEvents.apply` takes.
    ``requests`` is the exact number of requests ``apply`` will send (one per
    change; more only for retries and the re-list after an ambiguous create
    failure); ``list_requests`` is what planning already sent.

    Attributes:
        sites: One :class:`SitePlan` per site that could be listed, in the
            order the sites were given.
        prune: Whether the plan deletes the events no spec names.
        set_currency: Whether it rewrites the currency of existing events.
        failed: Each site that could not be listed (or that the token may not
            read: a :class:`TokenPermissionError`, no request sent for it),
            with its error. Nothing is planned for it.
        max_events_per_site: The cap planning listed each site with; the
            re-list after an ambiguous create keeps to it too.
        token_checked: True when planning read the token's abilities first
            (``check_token=True``, the default): then each change the token
            may not make is in its site's ``refused``, never sent.
        token_note: Why ``token_checked`` is False (turned off, or the token
            endpoint failed), or ``None``.
    """

    sites: tuple[SitePlan, ...]
    prune: bool
    set_currency: bool
    failed: Mapping[str, FathomError] = attrs.field(factory=dict)
    max_events_per_site: int = attrs.field(
        default=DEFAULT_MAX_EVENTS_PER_SITE, kw_only=True, converter=check_max_events_per_site
    )
    token_checked: bool = attrs.field(default=False, kw_only=True)
    token_note: str | None = attrs.field(default=None, kw_only=True)

    @property
    def requests(self) -> int:
        """The requests applying this plan will send, retries aside."""
        return sum(site.changes for site in self.sites)

    @property
    def list_requests(self) -> int:
        """The list requests planning sent."""
        return sum(site.list_requests for site in self.sites)

    @property
    def empty(self) -> bool:
        """True when applying would change nothing (refused changes aside: see ``refused``)."""
        return self.requests == 0

    @property
    def refused(self) -> dict[str, tuple[Failure, ...]]:
        """The changes the token may not make, by site (only sites that have some)."""
        return {site.site_id: site.refused for site in self.sites if site.refused}

    @property
    def deletes(self) -> int:
        """How many events applying this plan will delete, over all sites."""
        return sum(len(site.delete) for site in self.sites)

    def summary(self) -> dict[str, int]:
        """Counts of each kind of change, and requests."""
        return {
            "sites": len(self.sites),
            "create": sum(len(s.create) for s in self.sites),
            "rename": sum(len(s.rename) for s in self.sites),
            "update": sum(len(s.update) for s in self.sites),
            "delete": self.deletes,
            "unchanged": sum(len(s.unchanged) for s in self.sites),
            "requests": self.requests,
            "refused": sum(len(s.refused) for s in self.sites),
            "failed_sites": len(self.failed),
        }


@attrs.define
class SiteReport:
    """What applying did to one site, filled in as it happens: one of :attr:`SyncReport.sites`.

    Attributes:
        site_id: The site.
        created: The events created, as the answers to the creates give them.
        updated: The events whose currency was rewritten, as the answers give them.
        deleted: The ids of the events deleted.
        skipped: The names of the events left as they were, only when the
            report was made with ``SyncReport(keep_skipped_names=True)`` (a
            big account's would fill memory); ``skipped_count`` counts them
            either way.
        skipped_count: How many events were left as they were.
        keep_skipped_names: Whether ``skipped`` keeps their names (as the
            :class:`SyncReport` that made this report says).
        renamed: Events renamed, each as the answer to its update gives it
            (same id, new name).
        repeated: Ids the site's listing showed more than once (each counted
            once): see :attr:`SitePlan.repeated`.
        failed: Each change that failed (action ``create``, ``rename``,
            ``update`` or ``delete``), ``apply`` when the site's work broke
            outside any one change, or ``list`` when ``sync`` could not list
            (or the token may not read) the site, so it sent no change to it.
        interrupted: Changes in flight when the apply or sync was cancelled
            (``create 'Signed up'``): each may or may not have taken effect
            (plan again to see).
        refused: Changes the plan refused (the token may not make them):
            never sent.
    """

    site_id: str
    created: list[Event] = attrs.field(factory=list)
    updated: list[Event] = attrs.field(factory=list)
    deleted: list[str] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    skipped_count: int = attrs.field(default=0, kw_only=True)
    keep_skipped_names: bool = attrs.field(default=False, kw_only=True, repr=False)
    renamed: list[Event] = attrs.field(factory=list, kw_only=True)
    repeated: list[str] = attrs.field(factory=list, kw_only=True)
    failed: list[Failure] = attrs.field(factory=list)
    interrupted: list[str] = attrs.field(factory=list)
    refused: list[Failure] = attrs.field(factory=list)

    def left_as_they_were(self, count: int, names: Iterable[str]) -> None:
        """Count ``count`` events a sync left as they were; keep their ``names`` only if asked."""
        self.skipped_count += count
        if self.keep_skipped_names:
            self.skipped.extend(names)


@attrs.define
class SyncReport:
    """What :meth:`~AsyncEvents.apply` or :meth:`~AsyncEvents.sync` did, site by site.

    Filled in as it happens: pass your own (``apply(plan, report=report)``)
    to keep what was done even if the job is cancelled (``cancelled`` is then
    True). The events left as they were are counted
    (``SiteReport.skipped_count``, ``totals()["skipped"]``).

    Attributes:
        sites: One :class:`SiteReport` per site worked on, by site id.
        requests_sent: Requests sent by the apply or sync.
        retries: How many of those were retries.
        cancelled: True when the job was cancelled before its end (then each
            site's ``interrupted`` names what was in flight).
        token_checked: Whether the token's abilities were checked first, as
            :attr:`SyncPlan.token_checked` says (``apply`` copies it from its
            plan).
        token_note: Why they were not, or ``None``.
        keep_skipped_names: Keep the names of the events left as they were
            (``SiteReport.skipped``), not only their count.
    """

    sites: dict[str, SiteReport] = attrs.field(factory=dict)
    requests_sent: int = 0
    retries: int = 0
    cancelled: bool = False
    token_checked: bool = False
    token_note: str | None = None
    keep_skipped_names: bool = attrs.field(default=False, kw_only=True)

    def site(self, site_id: str) -> SiteReport:
        """The report of the site ``site_id``, made on first use."""
        if site_id not in self.sites:
            self.sites[site_id] = SiteReport(site_id, keep_skipped_names=self.keep_skipped_names)
        return self.sites[site_id]

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing was cut short."""
        return not self.cancelled and not any(s.failed for s in self.sites.values())

    def totals(self) -> dict[str, int]:
        """Counts over all sites."""
        reports = self.sites.values()
        return {
            "created": sum(len(s.created) for s in reports),
            "renamed": sum(len(s.renamed) for s in reports),
            "updated": sum(len(s.updated) for s in reports),
            "deleted": sum(len(s.deleted) for s in reports),
            "skipped": sum(s.skipped_count for s in reports),
            "failed": sum(len(s.failed) for s in reports),
            "refused": sum(len(s.refused) for s in reports),
            "requests_sent": self.requests_sent,
            "retries": self.retries,
        }
