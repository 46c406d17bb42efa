"""Every error fathom-events raises, as one tree.

::

    FathomError
    ├── InvalidRequestError        (also ValueError) rejected before anything was sent
    ├── ClientClosedError          the client was closed before the call
    ├── UnsupportedEventLoopError  (also RuntimeError) awaited where it cannot work
    ├── SharedBudgetError          the rate budget in Redis could not be used; not sent
    ├── PaginationError            the API's cursor stopped advancing
    ├── TooManyEventsError         a bulk job stopped listing a site at its cap
    ├── TooManySitesError          sites.ids() stopped listing sites at its cap
    ├── TooManyDeletesError        a sync would delete more than max_deletes; nothing sent
    ├── TokenPermissionError       the token may not do it (known from /token); not sent
    ├── UnexpectedError            a bulk job met an error of another kind (``__cause__``)
    ├── APIConnectionError         no HTTP answer: refused, reset, dropped, TLS failure
    │   └── APITimeoutError        an attempt or the overall deadline ran out
    ├── ResponseDecodeError        an answer we could not read (bad JSON, wrong shape)
    │   └── ResponseTooLargeError  an answer bigger than the client's cap
    └── APIStatusError             the API answered with an error status
        ├── BadRequestError           400 (``.errors`` holds field errors)
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404 (missing, or the token may not see it)
        ├── GoneError                 410 (a retired endpoint, such as wipe)
        ├── UnprocessableEntityError  422 (``.errors`` holds field errors)
        ├── RateLimitError            429 (``.retry_after`` in seconds)
        ├── ServerError               5xx
        └── RedirectError             3xx (``.location``), never followed

Branch on the class (the status code), never on the message: Fathom's messages
are written for people and may change. Every error raised after a request went
out names the request's method and URL (never the token) and, in ``.attempts``,
how many times it was sent. Every error pickles and copies whole (for a
process pool or a task queue), and none holds the token: not in its message,
its attributes, its ``__cause__`` or ``__context__``, nor the locals of the
library's frames on its traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
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
]


class FathomError(Exception):
    """The root of every error this library raises."""

    #: How many times the request was sent before this error (0: never sent).
    attempts: int = 0
    #: True when a create may have taken effect although it reported failure.
    may_have_been_applied: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt without calling __init__ (whose keyword-only signature differs per
        # class), from the args and the attributes: every class of the tree, and any
        # subclass, pickles and copies whole. The cause and context are not carried, as
        # for any exception: what the error says is in its message and attributes.
        return (type(self).__new__, (type(self), *self.args), self.__dict__)


class InvalidRequestError(FathomError, ValueError):
    """The arguments broke a rule of the API; nothing was sent.

    ``field`` names the argument at fault.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class ClientClosedError(FathomError, RuntimeError):
    """A method was called on a client that has been closed."""


class UnsupportedEventLoopError(FathomError, RuntimeError):
    """The client was awaited where it cannot work; the message says what works instead.

    ``AsyncClient`` runs on asyncio: it is raised under trio (or anyio's trio
    backend), for a borrowed ``session=`` awaited outside the event loop it
    belongs to, and when a request was cut by asyncio objects of one loop used
    in another (then ``may_have_been_applied`` tells whether a write may have
    taken effect). A blocking ``Client`` raises it, at once, when it is called
    from its own event loop thread (a callback it runs, such as
    ``on_progress``), where the call would wait for itself for good.
    """


class SharedBudgetError(FathomError):
    """The rate budget shared through Redis could not be used; the request was not sent.

    Raised only for a ``RateLimit(..., redis_url=..., on_redis_error="raise")``
    (the default, ``"fallback"``, keeps the budget in the process instead) when
    Redis cannot be reached, does not answer in time, or answers an error.
    ``redis_url`` is the URL with its password blotted out. The redis-py error
    is not kept (what it holds may carry the password): its class and words
    are in the message.
    """

    def __init__(self, message: str, *, redis_url: str) -> None:
        self.redis_url = redis_url
        super().__init__(message)


class PaginationError(FathomError):
    """Pagination cannot go on: the API returned a page whose cursor was already seen."""


class _Headers(dict[str, str]):
    """An answer's headers, found by any spelling of a name (``Retry-After``, ``retry-after``).

    A dict (it prints, compares, pickles and turns into JSON as one) whose
    names keep the spelling the server or the transport gave them; a name
    repeated in another case keeps its first value.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__()
        self._spelling: dict[str, str] = {}
        for name, value in headers.items():
            if self._spelling.setdefault(name.lower(), name) == name:
                super().__setitem__(name, value)

    def _as_given(self, name: object) -> object:
        return self._spelling.get(name.lower(), name) if isinstance(name, str) else name

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(self._as_given(name))  # type: ignore[index]

    def __contains__(self, name: object) -> bool:
        return super().__contains__(self._as_given(name))

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` in any case, or ``default``."""
        return super().get(self._as_given(name), default)  # type: ignore[call-overload]


class _RequestError(FathomError):
    """An error tied to one request that was (or was about to be) sent."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        self.method = method
        self.url = url
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        text = f"{self.message} ({self.method} {self.url})"
        if self.attempts > 1:
            text += f" after {self.attempts} attempts"
        if self.may_have_been_applied:
            text += (
                "; the request reached the server and may have taken effect (for a create:"
                " the event may have been created): list the site's events before retrying"
            )
        return text


class APIConnectionError(_RequestError):
    """No HTTP answer arrived: the connection failed, was reset or dropped.

    ``request_sent`` is False only when the request certainly never reached
    the server (the connection was refused or never set up); ``tls_failure``
    is True when the TLS handshake or certificate check failed.
    """

    request_sent: bool = True
    tls_failure: bool = False


class APITimeoutError(APIConnectionError):
    """The request took longer than its timeout or the policy's deadline."""


class ResponseDecodeError(_RequestError):
    """The answer could not be read as the documented shape.

    ``status`` is the HTTP status and ``body`` a short excerpt of what came back.
    """

    def __init__(self, message: str, *, method: str, url: str, status: int, body: str) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.body = body


class ResponseTooLargeError(ResponseDecodeError):
    """The answer was larger than the client's ``max_response_bytes``; it was not read."""


class APIStatusError(_RequestError):
    """The API answered with a status other than 2xx (a 4xx, a 5xx, or a 3xx).

    ``status`` is the HTTP status, ``message`` the API's own words (or an
    excerpt of a non-JSON page), ``body`` the decoded JSON body (or the raw
    text), ``headers`` the answer's headers (a dict that finds a
    name in any case, whatever case the transport gave), ``method`` and
    ``url`` the request,
    ``retry_after`` the answer's ``Retry-After`` in seconds (or ``None``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: object,
        headers: Mapping[str, str],
        method: str,
        url: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.body = body
        self.headers: dict[str, str] = _Headers(headers)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status}: {super().__str__()}"


class _FieldValidationError(APIStatusError):
    """An API error that may name the fields it refused (400 and 422).

    ``errors`` maps each rejected field to the API's messages about it (empty
    when the body carried a single ``error`` string instead).
    """

    def __init__(
        self, message: str, *, errors: Mapping[str, list[str]] | None = None, **fields: Any
    ) -> None:
        super().__init__(message, **fields)
        self.errors: dict[str, list[str]] = dict(errors or {})


class BadRequestError(_FieldValidationError):
    """400: bad parameters, failed validation or a token lacking permission.

    ``errors`` maps each rejected field to the API's messages about it (empty
    when the body carried a single ``error`` string instead).
    """


class AuthenticationError(APIStatusError):
    """401: the token is missing, malformed or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: not documented by Fathom, mapped for completeness."""


class NotFoundError(APIStatusError):
    """404: the object does not exist, or the token has no access to it."""


class GoneError(APIStatusError):
    """410: the endpoint has been retired (the wipe endpoint)."""


class UnprocessableEntityError(_FieldValidationError):
    """422: the request was understood but cannot be fulfilled.

    ``errors`` maps each rejected field to the API's messages about it, as
    for :class:`BadRequestError`.
    """


class RateLimitError(APIStatusError):
    """429: a rate or concurrency limit was hit.

    ``retry_after`` is the server's ``Retry-After`` in seconds, or ``None``.
    """


class ServerError(APIStatusError):
    """5xx: the API or a gateway in front of it failed."""


class TooManyEventsError(FathomError):
    """A bulk job stopped listing site ``site_id`` past ``limit`` events (its per-site cap).

    The cap keeps a server that never stops answering ``has_more`` from
    running a job forever; a real site this large needs a larger
    ``max_events_per_site``.
    """

    def __init__(self, site_id: str, limit: int) -> None:
        self.site_id = site_id
        self.limit = limit
        super().__init__(site_id, limit)

    def __str__(self) -> str:
        return (
            f"site {self.site_id!r} has more than {self.limit:,} events; listing stopped there"
            " (pass a larger max_events_per_site to read it all)"
        )


class TooManySitesError(FathomError):
    """``sites.ids()`` stopped listing past ``limit`` sites (its ``max_sites`` cap).

    A separate class from :class:`TooManyEventsError`, which is one site's
    failure inside a bulk job and names that site: this one ends the whole
    listing and names no site.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(limit)

    def __str__(self) -> str:
        return (
            f"the account lists more than {self.limit:,} sites; listing stopped there"
            " (pass a larger max_sites to read them all)"
        )


class TooManyDeletesError(FathomError):
    """A plan would delete ``deletes`` events, more than ``max_deletes``: nothing was changed.

    Raised by ``apply`` and ``sync`` given ``max_deletes``, before any change
    is sent, so that a wrong sync file (or a listing that went wrong) cannot
    delete a whole account's history.
    """

    def __init__(self, deletes: int, max_deletes: int) -> None:
        self.deletes = deletes
        self.max_deletes = max_deletes
        super().__init__(deletes, max_deletes)

    def __str__(self) -> str:
        return (
            f"the sync would delete {self.deletes:,} events, more than max_deletes"
            f" ({self.max_deletes:,}); nothing was changed"
        )


class TokenPermissionError(FathomError):
    """The token may not ``action`` (``"read"`` or ``"manage"``) site ``site_id``.

    Known from the token's own abilities (``GET /v1/token``) before anything
    was sent for it, so it cost no request: a bulk job records it as the
    site's failure (read) or as a refused change (manage).
    """

    def __init__(self, site_id: str, action: str, token_name: str | None = None) -> None:
        self.site_id = site_id
        self.action = action
        self.token_name = token_name
        super().__init__(site_id, action, token_name)

    def __str__(self) -> str:
        token = "the token" if self.token_name is None else f"the token {self.token_name!r}"
        site = self.site_id
        needed = f"*, all-sites-readonly, read:{site}" if self.action == "read" else "*"
        return (
            f"{token} may not {self.action} site {site!r}: it has none of {needed} or"
            f" manage:{site}; nothing was sent"
        )


class UnexpectedError(FathomError):
    """An error other than a FathomError inside one site's bulk work, recorded as its failure.

    ``__cause__`` is the original error. ``may_have_been_applied`` is True
    when it broke a change that may have reached the server.
    """

    def __str__(self) -> str:
        text = super().__str__()
        if self.may_have_been_applied:
            text += "; the change may have taken effect: plan again to see"
        return text


class RedirectError(APIStatusError):
    """3xx: the API answered with a redirect, which is never followed.

    ``location`` is the answer's ``Location`` header, or ``None``. The Fathom
    API does not redirect; a 3xx means ``base_url`` points somewhere else (a
    proxy, an old host). The token is not sent on to another host.
    """

    def __init__(self, message: str, *, location: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.location = location
