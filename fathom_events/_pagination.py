"""Walking every page of a list, lazily: ``AsyncPaginator`` and its page-at-a-time walker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from .exceptions import PaginationError

__all__ = ["AsyncPaginator", "PageLike", "PageWalker", "cursor_paginator"]


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_HasId)


class PageLike(Protocol[T]):
    """A page of a list, as the paginator sees it (``EventPage`` is one)."""

    @property
    def data(self) -> list[T]: ...

    @property
    def has_more(self) -> bool: ...

    @property
    def url(self) -> str: ...


Fetch = Callable[[str | None], Awaitable[PageLike[T]]]


class PageWalker(Generic[T]):
    """One walk through the pages: each :meth:`next_page` call fetches the next one.

    The blocking client drives this one page per portal call, so no async
    generator is ever held open across calls.
    """

    def __init__(self, fetch: Fetch[T], cursor: str | None) -> None:
        self._fetch = fetch
        self._cursor = cursor
        self._seen: set[str] = set()
        self._done = False

    @property
    def done(self) -> bool:
        """True once the walk is over: the next :meth:`next_page` sends nothing."""
        return self._done

    async def next_page(self) -> PageLike[T] | None:
        """The next page, or None once the walk is over (no request is sent then)."""
        if self._done:
            return None
        page = await self._fetch(self._cursor)
        if not page.data:
            self._done = True
            return None
        # The next cursor is the item farthest along the direction of travel: the
        # last of ``data`` both forward (oldest first) and backward (newest first).
        cursor = page.data[-1].id
        if not page.has_more:
            self._done = True
        elif cursor in self._seen or cursor == self._cursor:
            self._done = True
            raise PaginationError(
                f"the API returned a page ending at {cursor!r} again; stopping instead of"
                " looping forever"
            )
        self._seen.add(cursor)
        self._cursor = cursor
        return page


class AsyncPaginator(Generic[T]):
    """Every item of a list, one request per page, sent only when needed; made by ``paginate()``.

    ``async for item in paginator`` yields the items; ``async for page in
    paginator.pages()`` yields whole pages (``EventPage`` for events). Each
    iteration starts a new walk from the start. Breaking out early sends
    nothing more. The walk stops at a page with ``has_more`` false or an
    empty page, and raises :class:`~fathom_events.PaginationError` if the
    cursor stops advancing (the API returned a page already seen).
    """

    def __init__(self, fetch: Fetch[T], cursor: str | None) -> None:
        self._fetch = fetch
        self._cursor = cursor

    def walker(self) -> PageWalker[T]:
        """A fresh walk from the start, driven one page at a time."""
        return PageWalker(self._fetch, self._cursor)

    async def pages(self) -> AsyncIterator[PageLike[T]]:
        """Yield each page as it is fetched."""
        walker = self.walker()
        while (page := await walker.next_page()) is not None:
            yield page

    async def __aiter__(self) -> AsyncIterator[T]:
        walker = self.walker()
        while (page := await walker.next_page()) is not None:
            for item in page.data:
                yield item


def cursor_paginator(
    list_page: Callable[..., Awaitable[PageLike[T]]],
    page_size: int,
    starting_after: str | None,
    ending_before: str | None,
) -> AsyncPaginator[T]:
    """Walk a resource's ``list_page(limit, starting_after=..., ending_before=...)``.

    Forward (oldest first, from ``starting_after``) by default; backward
    (newest first) from ``ending_before`` when that is given.
    """
    backward = ending_before is not None

    async def fetch(cursor: str | None) -> PageLike[T]:
        if backward:
            return await list_page(page_size, ending_before=cursor)
        return await list_page(page_size, starting_after=cursor)

    return AsyncPaginator(fetch, ending_before if backward else starting_after)
