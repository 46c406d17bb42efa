"""fathom-events: the Python client for the Fathom Analytics Events API.

The events of a site are its conversion goals ("Signed up", "Purchased").
Two faces share one set of methods:

* :class:`AsyncClient`, for asyncio code (web apps, workers, notebooks):
  ``client.events`` lists, gets, creates, updates and deletes a site's events,
  pages through them (``paginate``) and does bulk work across sites (``pull``,
  ``plan``, ``apply``, ``sync``); ``client.sites`` reads the account's sites;
  ``await client.token()`` says what the token may do.
* :class:`Client`, the same methods without ``async``, for scripts and threads.

Answers are frozen attrs types (:class:`Event`, :class:`EventPage`,
:class:`Site`, :class:`TokenInfo`, ...); :func:`to_builtins` turns any of them
into JSON-ready builtins and :func:`from_builtins` reads them back. Every
error is a :class:`FathomError`; 429 and 5xx are retried by a
:class:`RetryPolicy`, and one client shares its limits (``max_in_flight``, a
:class:`RateLimit`) among all its calls. :mod:`fathom_events.testing` holds
``FakeFathom``, a fake Fathom server for your tests.

Example::

    from fathom_events import Client

    with Client() as client:  # the token from FATHOM_API_TOKEN
        for event in client.events.paginate("CDBUGS"):
            print(event.id, event.name)

The documentation (tutorial, how-to guides, the full reference) is built from
``docs/``: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

# The front door: everything public is re-exported here and listed in ``__all__``;
# the modules behind it are private. Each name is imported the first time it is used
# (PEP 562), not by ``import fathom_events``: a script that needs one error class, or
# ``fathom-events --help``, does not pay for aiohttp, anyio, attrs and cattrs.
# ``_LOCATIONS`` says where each name lives; type checkers read the imports under
# ``TYPE_CHECKING`` instead.

import importlib
import typing

from ._version import __version__

if typing.TYPE_CHECKING:
    from ._blocking import Client, Events, Paginator, Sites
    from ._builtins import from_builtins, to_builtins
    from ._bulk_types import (
        EventSpec,
        Failure,
        Progress,
        PullResult,
        SitePlan,
        SiteReport,
        SyncPlan,
        SyncReport,
    )
    from ._client import AsyncClient
    from ._defaults import DEFAULT_BASE_URL
    from ._events import AsyncEvents
    from ._http._contract import AsyncTransport, Timeouts, TransportRequest
    from ._limits import RateLimit
    from ._observe._records import (
        AnswerReceived,
        CallFinished,
        CallRecord,
        CallStarted,
        RequestSent,
        RetryScheduled,
        Waited,
    )
    from ._pagination import AsyncPaginator, PageLike
    from ._retry import RetryPolicy
    from ._sites import AsyncSites
    from .exceptions import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ClientClosedError,
        FathomError,
        GoneError,
        InvalidRequestError,
        NotFoundError,
        PaginationError,
        PermissionDeniedError,
        RateLimitError,
        RedirectError,
        ResponseDecodeError,
        ResponseTooLargeError,
        ServerError,
        SharedBudgetError,
        TokenPermissionError,
        TooManyDeletesError,
        TooManyEventsError,
        TooManySitesError,
        UnexpectedError,
        UnprocessableEntityError,
        UnsupportedEventLoopError,
    )
    from .types import Currency, DeletedEvent, Event, EventPage, Site, SitePage, TokenInfo

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AnswerReceived",
    "AsyncClient",
    "AsyncEvents",
    "AsyncPaginator",
    "AsyncSites",
    "AsyncTransport",
    "AuthenticationError",
    "BadRequestError",
    "CallFinished",
    "CallRecord",
    "CallStarted",
    "Client",
    "ClientClosedError",
    "Currency",
    "DeletedEvent",
    "Event",
    "EventPage",
    "EventSpec",
    "Events",
    "Failure",
    "FathomError",
    "GoneError",
    "InvalidRequestError",
    "NotFoundError",
    "PageLike",
    "PaginationError",
    "Paginator",
    "PermissionDeniedError",
    "Progress",
    "PullResult",
    "RateLimit",
    "RateLimitError",
    "RedirectError",
    "RequestSent",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "RetryScheduled",
    "ServerError",
    "SharedBudgetError",
    "Site",
    "SitePage",
    "SitePlan",
    "SiteReport",
    "Sites",
    "SyncPlan",
    "SyncReport",
    "Timeouts",
    "TokenInfo",
    "TokenPermissionError",
    "TooManyDeletesError",
    "TooManyEventsError",
    "TooManySitesError",
    "TransportRequest",
    "UnexpectedError",
    "UnprocessableEntityError",
    "UnsupportedEventLoopError",
    "Waited",
    "__version__",
    "from_builtins",
    "to_builtins",
]

# Where each public name lives: its module is imported when the name is first used.
_LOCATIONS = {
    name: module
    for module, names in {
        "._bulk_types": (
            "EventSpec",
            "Failure",
            "Progress",
            "PullResult",
            "SitePlan",
            "SiteReport",
            "SyncPlan",
            "SyncReport",
        ),
        "._client": ("AsyncClient",),
        "._defaults": ("DEFAULT_BASE_URL",),
        "._events": ("AsyncEvents",),
        # The transport contract: what a transport of your own implements and is given.
        "._http._contract": ("AsyncTransport", "Timeouts", "TransportRequest"),
        "._pagination": ("AsyncPaginator", "PageLike"),
        "._sites": ("AsyncSites",),
        "._limits": ("RateLimit",),
        # What on_event receives: one record per step of a call.
        "._observe._records": (
            "AnswerReceived",
            "CallFinished",
            "CallRecord",
            "CallStarted",
            "RequestSent",
            "RetryScheduled",
            "Waited",
        ),
        "._retry": ("RetryPolicy",),
        "._blocking": ("Client", "Events", "Paginator", "Sites"),
        "._builtins": ("from_builtins", "to_builtins"),
        ".exceptions": (
            "APIConnectionError",
            "APIStatusError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "ClientClosedError",
            "FathomError",
            "GoneError",
            "InvalidRequestError",
            "NotFoundError",
            "PaginationError",
            "PermissionDeniedError",
            "RateLimitError",
            "RedirectError",
            "ResponseDecodeError",
            "ResponseTooLargeError",
            "ServerError",
            "SharedBudgetError",
            "TokenPermissionError",
            "TooManyDeletesError",
            "TooManyEventsError",
            "TooManySitesError",
            "UnexpectedError",
            "UnprocessableEntityError",
            "UnsupportedEventLoopError",
        ),
        ".types": (
            "Currency",
            "DeletedEvent",
            "Event",
            "EventPage",
            "Site",
            "SitePage",
            "TokenInfo",
        ),
    }.items()
    for name in names
}


# Hidden from type checkers, which would otherwise take any misspelt name for a
# lazy one: they see the imports above.
if not typing.TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import a public name's module on first use, and keep the name here for next time."""
        module = _LOCATIONS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
