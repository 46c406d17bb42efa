"""Records kept by id and in `created_at` order, with the API's cursor pages.

Both a site's events and the account's sites are listed the same way: sorted
by `created_at` ascending (ties in insertion order), paged forward with
`starting_after` and backward with `ending_before`. `Ordered` keeps a dict
from id to record beside a list sorted by `sort_key()`, so a lookup by id is
O(1), finding an id's place in the order is a bisection, O(log n), and
inserting or removing is a bisection plus one list shift (a memmove, and no
shift at all for the usual insert at the newest end). Not thread-safe: the
store's lock guards it.
"""

from __future__ import annotations

import bisect
import operator
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from datetime import datetime


class Sortable(Protocol):
    """What `Ordered` needs of a record: an id, and a key unique within its collection."""

    @property
    def id(self) -> str: ...

    def sort_key(self) -> tuple[datetime, int]: ...


R = TypeVar("R", bound=Sortable)

_SORT_KEY: Final = operator.methodcaller("sort_key")


class UnknownCursorError(LookupError):
    """A pagination cursor names no record of the collection; args[0] names the cursor."""


class Ordered(Generic[R]):
    """Records by id, and in `sort_key()` order."""

    def __init__(self) -> None:
        self._by_id: dict[str, R] = {}
        self._order: list[R] = []

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._by_id

    def get(self, record_id: str) -> R | None:
        return self._by_id.get(record_id)

    def records(self) -> list[R]:
        """Every record, oldest first (a copy)."""
        return list(self._order)

    def put(self, record: R) -> None:
        """Add `record`, or replace the one with its id (moving it if its key changed)."""
        old = self._by_id.get(record.id)
        self._by_id[record.id] = record
        if old is not None:
            index = self._index(old)
            if old.sort_key() == record.sort_key():
                self._order[index] = record
                return
            del self._order[index]
        if self._order and record.sort_key() < self._order[-1].sort_key():
            bisect.insort(self._order, record, key=_SORT_KEY)
        else:  # the newest yet, as nearly every create and seeded event is
            self._order.append(record)

    def remove(self, record_id: str) -> R | None:
        """Take out and return the record with this id, or None if there is none."""
        record = self._by_id.pop(record_id, None)
        if record is not None:
            del self._order[self._index(record)]
        return record

    def page(
        self, limit: int, starting_after: str | None, ending_before: str | None
    ) -> tuple[list[R], bool]:
        """Return one page and whether more exist in the direction of travel.

        Forward pages (no cursor, or `starting_after`) come oldest first;
        backward pages (`ending_before`) walk back from the cursor, newest
        first. Raises `UnknownCursorError` for a cursor naming no record.
        """
        order = self._order
        if ending_before is not None:
            end = self._cursor(ending_before, "ending_before")
            start = max(0, end - limit)
            return order[start:end][::-1], start > 0
        start = 0
        if starting_after is not None:
            start = self._cursor(starting_after, "starting_after") + 1
        return order[start : start + limit], start + limit < len(order)

    def _cursor(self, record_id: str, name: str) -> int:
        record = self._by_id.get(record_id)
        if record is None:
            raise UnknownCursorError(name)
        return self._index(record)

    def _index(self, record: R) -> int:
        """The place of `record` (which must be stored) in the order."""
        return bisect.bisect_left(self._order, record.sort_key(), key=_SORT_KEY)
