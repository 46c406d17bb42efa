"""The account's side of the API: ``client.sites`` (read-only) and the token's own answer.

:class:`AsyncSites` lists and gets sites as :class:`~._events.AsyncEvents`
does events: input checked in ``_protocol``, each request through the
client's call (retries, limits, transport, size cap). The token's own answer
(``GET /v1/token``) is kept in ``_token``.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable
from typing import Protocol, TypeVar

from . import _protocol as proto
from ._checks import check_int_at_least
from ._pagination import AsyncPaginator, PageWalker, cursor_paginator
from .exceptions import TooManySitesError
from .types import Site, SitePage

__all__ = ["DEFAULT_MAX_SITES", "AsyncSites"]

T = TypeVar("T")

#: The most sites :meth:`AsyncSites.ids` lists before it stops
#: (:class:`~fathom_events.TooManySitesError`): far above any real account, low enough
#: that a server which never stops answering ``has_more`` cannot run it without end.
DEFAULT_MAX_SITES = 100_000
_PAGE_SIZE = 100


class _Call(Protocol):
    def __call__(self, request: proto.Request, into: type[T], /) -> Awaitable[T]: ...


class AsyncSites:
    """The account's sites, read-only: ``client.sites``; made by the client.

    Listing needs a token with ``*`` or ``all-sites-readonly``; getting one
    site needs read access to it. Sites come oldest first.
    """

    def __init__(self, call: _Call) -> None:
        self._call = call

    async def list(
        self,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> SitePage:
        """One page of the account's sites.

        ``limit`` is 1..100 (the API's default is 10). ``starting_after`` (a
        site id) gives the sites after it, oldest first; ``ending_before``
        walks back from it, newest first; not both. To walk every site, use
        :meth:`paginate` or :meth:`ids`.
        """
        return await self._call(
            proto.build_list_sites(limit, starting_after, ending_before), SitePage
        )

    async def get(self, site_id: str) -> Site:
        """One site, by its ``site_id``."""
        return await self._call(proto.build_get_site(site_id), Site)

    def paginate(
        self,
        page_size: int = 100,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncPaginator[Site]:
        """Every site, fetched lazily one page at a time.

        Nothing is sent until the first item (or page) is asked for. See
        :class:`AsyncPaginator`.

        Args:
            page_size: Sites per request, 1..100.
            starting_after: Walk forward (oldest first) from after this site;
                forward from the oldest site by default.
            ending_before: Walk backward (newest first) from before this site.
        """
        proto.check_limit(page_size, field="page_size")
        proto.build_list_sites(page_size, starting_after, ending_before)  # check input now
        return cursor_paginator(self.list, page_size, starting_after, ending_before)

    async def every(self, *, max_sites: int = DEFAULT_MAX_SITES) -> builtins.list[Site]:
        """Every site the token can see, once each, oldest first, 100 sites a request.

        A site the listing gives again (its pages overlap, or the account
        changed under the walk) is kept where it first came. Past
        ``max_sites`` sites (default 100,000, far above any real account) it
        stops and raises :class:`TooManySitesError`, so that a server which
        never stops answering ``has_more`` cannot run it without end, and at
        most one page past the cap is ever held.
        """
        check_int_at_least("max_sites", max_sites)
        found: dict[str, Site] = {}  # ordered, and each site once

        async def fetch(cursor: str | None) -> SitePage:
            return await self.list(_PAGE_SIZE, starting_after=cursor)

        walker = PageWalker(fetch, None)
        while (page := await walker.next_page()) is not None:
            for site in page.data:
                found.setdefault(site.id, site)
            if len(found) > max_sites:
                raise TooManySitesError(max_sites)
        return builtins.list(found.values())

    async def ids(self, *, max_sites: int = DEFAULT_MAX_SITES) -> builtins.list[str]:
        """The id of every site the token can see, once each, oldest first.

        As :meth:`every`, which reads at most ``max_sites`` sites.
        """
        return [site.id for site in await self.every(max_sites=max_sites)]
