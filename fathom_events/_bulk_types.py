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


def check_max_events_per_site(value: object) -> int:
    """The per-site cap of a bulk job: an int >= 1."""
    return check_int_at_least("max_events_per_site", value)


def _spec_name(value: object) -> str:
    return check_name("name", value)


def _spec_currency(value: object) -> Currency | None:
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
    """An event a site should have.

    ``name`` is 1 to 255 characters with no outer whitespace (Fathom trims
    it). It matches a site's event whose name is the same once outer
    whitespace is left aside; the comparison is otherwise exact (case and
    inner spaces count). ``currency`` is used when the event is created, and
    for an existing event only with ``set_currency=True``.

    ``renamed_from`` lists names the event had before, so that a rename keeps
    the event (its id, and with it its conversion history): on a site that
    has an event of an old name and none of ``name``, a sync renames that
    event (the first old name found, in this order) instead of creating a new
    one and, with prune, deleting the old one.
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
    """Where a bulk job stands, passed to ``on_progress`` after each site finishes."""

    sites_done: int
    sites_total: int
    site_id: str
    requests_sent: int
    retries: int
    failed: bool


ProgressCallback = Callable[[Progress], object]


@attrs.frozen
class Failure:
    """One thing that did not work: what was tried (``action``), on what, and the error.

    ``to`` is the new name of a rename (``target`` is the old one), else None.
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
    """Every event of every site that could be read, by site id.

    Sites that failed are not keys; ``failed`` maps each of them to its error.
    ``repeated`` maps each site whose listing showed an event more than once
    (pages that overlap while events are created) to those events' ids: each
    is in the site's list once, as it was first seen.
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
    """What a sync will do to one site.

    ``rename`` pairs each event that has an old name of a spec (one of its
    ``renamed_from``) with that spec as the rename sends it: one update gives
    the event the spec's name (and its currency, which is None unless the plan
    was made with ``set_currency=True``), so it keeps its id and history.
    ``update`` pairs each existing event with the spec whose currency will be
    written (only when the plan was made with ``set_currency=True``).
    ``delete`` holds each event to delete (only with prune). ``not_renamed``
    pairs each event that has an old name of a spec but is not renamed,
    because the site has an event of the spec's name already (or another of
    its old names was renamed) with that spec: such an event is an extra like
    any other, deleted only with prune (then it is in ``delete`` too).
    ``repeated`` holds the id of each event the listing showed more than
    once: it counts once, as first seen. ``list_requests`` is how many list
    pages planning took. ``refused`` holds each change the site needs but the
    token may not make (a :class:`~fathom_events.TokenPermissionError` each,
    known from the token's abilities): they are not in ``create``,
    ``rename``, ``update`` or ``delete``, so they are neither counted nor sent.
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
    """A sync to apply: per site, what to create, update and delete.

    ``requests`` is the exact number of requests :meth:`~AsyncEvents.apply`
    will send (one per change; more only for retries and the re-list after an
    ambiguous create failure). ``list_requests`` is what planning already sent.
    ``max_events_per_site`` is the cap planning listed each site with; that
    re-list keeps to it too.

    ``token_checked`` is True when planning read the token's abilities first
    (``check_token=True``, the default): then each site the token may not
    read is in ``failed`` (a :class:`~fathom_events.TokenPermissionError`, no
    request sent for it) and each change it may not make is in its site's
    ``refused``. ``token_note`` says why it is False (turned off, or the token
    endpoint failed), or is None.
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
    """What applying did to one site, filled in as it happens."""

    site_id: str
    created: list[Event] = attrs.field(factory=list)
    updated: list[Event] = attrs.field(factory=list)
    deleted: list[str] = attrs.field(factory=list)
    #: The names of the events left as they were, only when the report was made with
    #: ``SyncReport(keep_skipped_names=True)`` (a big account's would fill memory);
    #: ``skipped_count`` counts them either way.
    skipped: list[str] = attrs.field(factory=list)
    skipped_count: int = attrs.field(default=0, kw_only=True)
    keep_skipped_names: bool = attrs.field(default=False, kw_only=True, repr=False)
    #: Events renamed (each as the answer to its update gives it: same id, new name).
    renamed: list[Event] = attrs.field(factory=list, kw_only=True)
    #: Ids the site's listing showed more than once (each counted once): see SitePlan.
    repeated: list[str] = attrs.field(factory=list, kw_only=True)
    #: Each change that failed (action ``create``, ``update`` or ``delete``),
    #: ``apply`` when the site's work broke outside any one change, or ``list``
    #: when ``sync`` could not list (or the token may not read) the site, so it
    #: sent no change to it.
    failed: list[Failure] = attrs.field(factory=list)
    #: Changes in flight when the apply or sync was cancelled: each may or may
    #: not have taken effect (plan again to see).
    interrupted: list[str] = attrs.field(factory=list)
    #: Changes the plan refused (the token may not make them): never sent.
    refused: list[Failure] = attrs.field(factory=list)

    def left_as_they_were(self, count: int, names: Iterable[str]) -> None:
        """Count the events a sync left as they were; keep their ``names`` only if asked."""
        self.skipped_count += count
        if self.keep_skipped_names:
            self.skipped.extend(names)


@attrs.define
class SyncReport:
    """What :meth:`~AsyncEvents.apply` or :meth:`~AsyncEvents.sync` did, site by site.

    Filled in as it happens: pass your own (``apply(plan, report=report)``)
    to keep what was done even if the job is cancelled (``cancelled`` is then
    True). ``token_checked`` and ``token_note`` say whether the token's
    abilities were checked first, as :class:`SyncPlan`'s do (``apply`` copies
    them from its plan). The events left as they were are counted
    (``SiteReport.skipped_count``, ``totals()["skipped"]``); their names are
    kept too (``SiteReport.skipped``) only with ``keep_skipped_names=True``.
    """

    sites: dict[str, SiteReport] = attrs.field(factory=dict)
    requests_sent: int = 0
    retries: int = 0
    cancelled: bool = False
    token_checked: bool = False
    token_note: str | None = None
    keep_skipped_names: bool = attrs.field(default=False, kw_only=True)

    def site(self, site_id: str) -> SiteReport:
        """The report of one site, made on first use."""
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
