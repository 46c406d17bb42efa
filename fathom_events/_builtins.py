"""Results as JSON-ready builtins, and back: :func:`to_builtins` and :func:`from_builtins`.

:func:`to_builtins` walks any value the library returns (an answer, a plan,
a report, nested lists and dicts of them) and gives dicts, lists, strings,
numbers, booleans and ``None`` only: what ``json.dumps`` takes as it is, for
a web response, a log line or a queue. :func:`from_builtins` reads the
answer types and the settings back; the bulk results hold errors, which are
written as a description of the error and are not read back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, TypeVar

import attrs
import cattrs

from ._bulk_types import EventSpec, Progress, PullResult
from ._converter import configure_converter
from ._limits import RateLimit, blot_password
from ._retry import RetryPolicy
from .exceptions import FathomError
from .types import DeletedEvent, Event, EventPage, Site, SitePage, TokenInfo

__all__ = ["READABLE", "from_builtins", "to_builtins"]

T = TypeVar("T")

#: The types :func:`from_builtins` reads: the answers, and the values you give.
READABLE: tuple[type, ...] = (
    DeletedEvent,
    Event,
    EventPage,
    EventSpec,
    Progress,
    RateLimit,
    RetryPolicy,
    Site,
    SitePage,
    TokenInfo,
)

_SCALARS = (str, int, float, bool, type(None))


def to_builtins(obj: object) -> Any:
    """``obj`` as builtins that ``json.dumps`` takes as they are.

    * An attrs instance (:class:`~fathom_events.Event`, ``EventPage``,
      ``SyncPlan``, ``SyncReport``, ...) becomes a dict of its fields, by the
      fields' names, each turned in the same way.
    * A ``datetime`` (and a ``date`` or ``time``) becomes its ISO 8601 text
      (``"2026-01-02T03:04:05+00:00"``; every timestamp the API gives is UTC).
    * An enum member becomes its value (``Currency.EURO`` gives ``"euro"``); a
      currency the enum does not know is a string already.
    * A :class:`~fathom_events.PullResult` becomes ``{"sites": {site_id:
      [events]}, "failed": {site_id: error}, "repeated": {site_id: [ids]}}``.
    * An error (a :class:`~fathom_events.FathomError`, as a bulk result holds
      them) becomes ``{"type": class name, "message": str(error), ...}`` with
      its public attributes (``status``, ``method``, ``url``, ``attempts``,
      ``may_have_been_applied``, ...): a description, never the token, and not
      read back by :func:`from_builtins`.
    * A :class:`~fathom_events.RateLimit`'s ``redis_url`` is written with its
      password blotted out: a secret is never written, so give it again
      before reading the limit back.
    * A mapping becomes a dict (its keys must be strings); a list, tuple, set
      or frozenset a list; ``str``, ``int``, ``float``, ``bool`` and ``None``
      stay as they are.

    Anything else raises ``TypeError`` naming its type. Properties and methods
    (``SyncPlan.requests``, ``SyncReport.totals()``) are not included: call
    them and add what you need.
    """
    if isinstance(obj, enum.Enum):
        return to_builtins(obj.value)
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, PullResult):
        return {
            "sites": {site_id: to_builtins(events) for site_id, events in obj.items()},
            "failed": to_builtins(obj.failed),
            "repeated": to_builtins(obj.repeated),
        }
    if attrs.has(kind := type(obj)):
        written = {
            field.name: to_builtins(getattr(obj, field.name)) for field in attrs.fields(kind)
        }
        if isinstance(obj, RateLimit) and obj.redis_url is not None:
            # A Redis password is never written: it comes back blotted out (give it again).
            written["redis_url"] = blot_password(obj.redis_url)
        return written
    if isinstance(obj, FathomError):
        return _error(obj)
    if isinstance(obj, Mapping):
        return {_key(key): to_builtins(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_builtins(item) for item in obj]
    raise TypeError(f"to_builtins: cannot turn a {type(obj).__name__} into builtins")


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(
            f"to_builtins: a mapping's keys must be strings; got a {type(key).__name__}"
        )
    return key


def _error(error: FathomError) -> dict[str, Any]:
    """An error as a description: its class, its message and its public attributes."""
    described: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    for name in ("attempts", "may_have_been_applied"):
        described[name] = getattr(error, name)
    for name, value in vars(error).items():
        if not name.startswith("_"):
            described[name] = to_builtins(value)
    return described


def _reader() -> cattrs.Converter:
    """A converter that reads what :func:`to_builtins` wrote: the library's answer hooks."""
    reader = cattrs.Converter(detailed_validation=False, forbid_extra_keys=True)
    configure_converter(reader)
    for readable in READABLE:
        attrs.resolve_types(readable)
    return reader


_READER: cattrs.Converter | None = None


def from_builtins(data: object, cls: type[T]) -> T:
    """Read ``data`` (as :func:`to_builtins` wrote it, or parsed JSON) back into ``cls``.

    ``cls`` is one of the answer types (:class:`~fathom_events.Event`,
    ``EventPage``, ``DeletedEvent``, ``Site``, ``SitePage``, ``TokenInfo``)
    or of the values you give (``EventSpec``, ``RetryPolicy``, ``RateLimit``,
    ``Progress``). Answers are read as the client reads Fathom's (ISO 8601 or
    ``YYYY-MM-DD HH:MM:SS`` timestamps, an unknown currency kept as its
    string); a value you give is checked as its constructor checks it. So
    ``from_builtins(to_builtins(event), Event) == event``.

    The bulk results (``SyncPlan``, ``SyncReport``, ``PullResult``,
    ``Failure``, ...) hold errors, which :func:`to_builtins` writes as a
    description: they are not read back, and ``cls`` being one of them (or
    any other type) raises ``TypeError``. Data of the wrong shape raises the
    error the reading hits (a ``KeyError``, ``TypeError`` or ``ValueError``).
    """
    global _READER  # noqa: PLW0603 - made on first use: most programs never read back
    if cls not in READABLE:
        readable = ", ".join(sorted(kind.__name__ for kind in READABLE))
        raise TypeError(f"from_builtins reads {readable}; not {getattr(cls, '__name__', cls)}")
    if _READER is None:
        _READER = _reader()
    return _READER.structure(data, cls)
