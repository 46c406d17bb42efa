"""fathom-events: an async-first client for the Fathom Analytics Events API.

The front door: everything public is re-exported here and listed in
``__all__``; the modules behind it are private.
"""

from ._blocking import Client, Events, Paginator
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
from ._client import DEFAULT_BASE_URL, AsyncClient
from ._events import AsyncEvents
from ._pagination import AsyncPaginator, PageLike
from ._retry import RateLimit, RetryPolicy
from ._version import __version__
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
    TooManyEventsError,
    UnexpectedError,
    UnprocessableEntityError,
    UnsupportedEventLoopError,
)
from .types import Currency, DeletedEvent, Event, EventPage

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncEvents",
    "AsyncPaginator",
    "AuthenticationError",
    "BadRequestError",
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
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "SitePlan",
    "SiteReport",
    "SyncPlan",
    "SyncReport",
    "TooManyEventsError",
    "UnexpectedError",
    "UnprocessableEntityError",
    "UnsupportedEventLoopError",
    "__version__",
]
