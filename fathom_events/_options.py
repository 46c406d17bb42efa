"""Every setting of a client, checked once: :class:`ClientOptions`, held by both faces.

``AsyncClient(...)`` and ``Client(...)`` take exactly the parameters of
:class:`ClientOptions` (``AsyncClient`` also a lent session:
:class:`AsyncClientOptions`), through :func:`same_parameters_as`, so each
setting, its type, its default and its checks are written here once.
``with_options`` is an ``attrs.evolve`` of the options: the same checks again.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import TYPE_CHECKING, Any, Concatenate, NoReturn, ParamSpec, SupportsIndex, TypeVar
from urllib.parse import urlsplit

import attrs

from ._checks import (
    as_validator,
    check_callable_or_none,
    check_flag,
    check_int_at_least,
    check_seconds_or_none,
    shown,
)
from ._defaults import DEFAULT_BASE_URL
from ._http._contract import AsyncTransport, Timeouts
from ._http._route import (
    Proxy,
    base_url_from,
    check_proxy,
    check_ssl,
    proxy_from_environment,
    refuse_plain_http,
    refuse_tls_in_tls,
)
from ._http._secrecy import Secret
from ._limits import RateLimit
from ._observe._records import CallRecord
from ._retry import RetryPolicy
from .exceptions import InvalidRequestError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "TOKEN_ENV",
    "AsyncClientOptions",
    "ClientOptions",
    "Secret",
    "refuse_pickle_and_copy",
    "same_parameters_as",
]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")

TOKEN_ENV = "FATHOM_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# A token goes into a header as it is: only printable ASCII can be sent unaltered.
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+").fullmatch


def refuse_pickle_and_copy(holds: str) -> Callable[[object, SupportsIndex], NoReturn]:
    """A ``__reduce_ex__`` refusing pickle, copy and deepcopy for an object that ``holds`` ...

    ... and the API token: the options, and both clients, which hold them.
    """

    def refuse(self: object, _protocol: SupportsIndex, /) -> NoReturn:
        name = type(self).__name__
        raise TypeError(
            f"{name} cannot be pickled or copied: it holds {holds} and the API token."
            f" Create a new {name} where you need one (in the other process), or share this one."
        )

    return refuse


def _token_from_argument_or_env(token: str | None) -> Secret:
    """The token given, or else ``FATHOM_API_TOKEN``'s, checked and wrapped in a Secret."""
    if token is None:
        token = os.environ.get(TOKEN_ENV)
        if token is None:
            raise InvalidRequestError(
                "token", f"no API token: pass token=... or set the {TOKEN_ENV} environment variable"
            )
    if not isinstance(token, str):
        raise InvalidRequestError("token", f"must be a string, got {type(token).__name__}")
    if not token.strip():
        raise InvalidRequestError("token", "must not be empty")
    if not _PRINTABLE_ASCII(token):
        # Never echo the token, not even a part of it: say only what kind of character.
        raise InvalidRequestError(
            "token",
            "must be printable ASCII with no whitespace (Fathom's tokens are); it holds"
            f" {_kind_of_bad_character(token)}",
        )
    return Secret(token)


def _token(token: str | None) -> Secret:
    held: object = token
    if isinstance(held, Secret):  # attrs.evolve hands back the token read (and checked) before
        return held
    return _token_from_argument_or_env(token)


def _kind_of_bad_character(text: str) -> str:
    for char in text:
        if char.isspace():
            return "whitespace"
        if not char.isascii():
            return "a non-ASCII character"
        if not char.isprintable():
            return "a control character"
    return "no bad character"  # pragma: no cover - only called once one was found


def _timeout(value: float | None) -> float | None:
    return check_seconds_or_none("timeout", value)


def _connect_timeout(value: float | None) -> float | None:
    return check_seconds_or_none("connect_timeout", value)


def _retry(value: RetryPolicy | None) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise InvalidRequestError("retry", f"must be a RetryPolicy, got {shown(value)}")
    return value


def _rate_limit(_: object, attribute: attrs.Attribute[RateLimit | None], value: object) -> None:
    if value is not None and not isinstance(value, RateLimit):
        raise InvalidRequestError(
            attribute.name,
            f"must be a RateLimit such as RateLimit(2000, 3600), got {shown(value)}",
        )


def check_transport(given: object) -> AsyncTransport | None:
    """A given transport must have ``send`` and ``aclose`` methods (None: the built-in one)."""
    if given is None:
        return None
    missing = [name for name in ("send", "aclose") if not callable(getattr(given, name, None))]
    if missing:
        raise InvalidRequestError(
            "transport",
            "must have async send(request, timeouts) and aclose() methods (such as"
            f" fathom_events.testing.MemoryTransport); {type(given).__name__} has no"
            f" {' or '.join(missing)}",
        )
    return given  # type: ignore[return-value]  # its methods were checked just above


def _transport(value: AsyncTransport | None) -> AsyncTransport | None:
    # The converter's parameter is what a type checker shows for ``transport=``.
    return check_transport(value)


def _proxy(value: str | None) -> Proxy | None:
    held: object = value
    if isinstance(held, Proxy):  # attrs.evolve hands back the proxy checked before
        return held
    return check_proxy(value)


def _ssl(value: SSLContext | None) -> SSLContext | None:
    return check_ssl(value)


@attrs.frozen(eq=False)
class ClientOptions:
    """Every setting of a client, checked as it is made; the parameters of both faces.

    The parameters and what they mean are :class:`~fathom_events.AsyncClient`'s.
    The fields hold them checked and resolved: ``token`` read (from
    ``FATHOM_API_TOKEN`` if not given) into a :class:`Secret`, ``base_url``
    (from ``FATHOM_API_BASE_URL`` if not given, else Fathom's) without its
    trailing slash, ``retry`` a policy, timeouts as floats, ``proxy`` a
    :class:`~fathom_events._http._route.Proxy` (its credentials hidden), and
    ``proxy_in_use`` the proxy requests take (``proxy``, or the
    environment's with ``trust_env``).
    ``attrs.evolve`` runs every check again. Like the clients, an
    options object never shows the token and refuses pickle and copies.
    """

    token: Secret = attrs.field(default=None, converter=_token)
    base_url: str = attrs.field(default=None, converter=base_url_from)
    timeout: float | None = attrs.field(default=30.0, converter=_timeout)
    connect_timeout: float | None = attrs.field(
        default=10.0, converter=_connect_timeout, kw_only=True
    )
    retry: RetryPolicy = attrs.field(default=None, converter=_retry, kw_only=True)
    max_in_flight: int = attrs.field(
        default=8, validator=as_validator(check_int_at_least), kw_only=True
    )
    rate_limit: RateLimit | None = attrs.field(default=None, validator=_rate_limit, kw_only=True)
    transport: AsyncTransport | None = attrs.field(default=None, converter=_transport, kw_only=True)
    max_response_bytes: int = attrs.field(
        default=DEFAULT_MAX_RESPONSE_BYTES, validator=as_validator(check_int_at_least), kw_only=True
    )
    allow_insecure_http: bool = attrs.field(
        default=False, validator=as_validator(check_flag), kw_only=True
    )
    proxy: Proxy | None = attrs.field(default=None, converter=_proxy, kw_only=True)
    trust_env: bool = attrs.field(default=False, validator=as_validator(check_flag), kw_only=True)
    ssl: SSLContext | None = attrs.field(default=None, converter=_ssl, kw_only=True)
    clock: Callable[[], float] | None = attrs.field(
        default=None, validator=as_validator(check_callable_or_none), kw_only=True
    )
    sleep: Callable[[float], Awaitable[None]] | None = attrs.field(
        default=None, validator=as_validator(check_callable_or_none), kw_only=True
    )
    on_event: Callable[[CallRecord], Any] | None = attrs.field(
        default=None, validator=as_validator(check_callable_or_none), kw_only=True
    )
    #: Both timeouts as the transport takes them, made once rather than for every call.
    timeouts: Timeouts = attrs.field(init=False, repr=False)
    #: The proxy every request goes through: ``proxy``, else (with ``trust_env``) the
    #: environment's for the base URL, read once here; None: straight to the API.
    proxy_in_use: Proxy | None = attrs.field(init=False)

    @base_url.validator
    def _reachable(self, _: attrs.Attribute[str], value: str) -> None:
        """Plain http's rule over the base URL and the proxy; TLS inside TLS only where it runs."""
        refuse_plain_http(value, self.proxy_in_use, allow_insecure_http=self.allow_insecure_http)
        refuse_tls_in_tls(value, self.proxy_in_use)

    @proxy_in_use.default
    def _proxy_in_use(self) -> Proxy | None:
        if self.proxy is not None or self.trust_env is not True:
            return self.proxy
        return proxy_from_environment(self.base_url)

    @ssl.validator
    def _for_the_built_in_transport(self, _: attrs.Attribute[object], value: object) -> None:
        """proxy, trust_env and ssl are the aiohttp transport's; ssl= needs something https."""
        if self.transport is not None:
            given = {"proxy": self.proxy, "trust_env": self.trust_env, "ssl": value}
            for name, setting in given.items():
                if setting:
                    raise InvalidRequestError(
                        name,
                        "is a setting of the built-in (aiohttp) transport, and a transport= of"
                        " your own connects as it likes: give it to that transport instead",
                    )
        https = [self.base_url, self.proxy_in_use.url if self.proxy_in_use else ""]
        if value is not None and all(urlsplit(url).scheme != "https" for url in https):
            raise InvalidRequestError(
                "ssl",
                "is for TLS, and neither the base URL nor the proxy is https://: nothing"
                " would use it",
            )

    @timeouts.default
    def _timeouts(self) -> Timeouts:
        return Timeouts(self.timeout, self.connect_timeout)

    __reduce_ex__ = refuse_pickle_and_copy("a client's settings")


@attrs.frozen(eq=False)
class AsyncClientOptions(ClientOptions):
    """:class:`ClientOptions` and what only ``AsyncClient`` can be lent: a session.

    A session belongs to one event loop, so the blocking client, which runs
    its own, takes none.
    """

    session: aiohttp.ClientSession | None = attrs.field(default=None, kw_only=True)

    @session.validator
    def _one_way_to_send(self, _: attrs.Attribute[object], value: object) -> None:
        if value is not None and self.transport is not None:
            raise InvalidRequestError(
                "transport",
                "cannot be combined with session=: a session is what the default (aiohttp)"
                " transport sends with; give the one or the other",
            )


def same_parameters_as(
    source: Callable[Concatenate[Any, P], object],
) -> Callable[[Callable[Concatenate[S, ...], R]], Callable[Concatenate[S, P], R]]:
    """Give a method taking ``(self, *args, **kwargs)`` the parameters of method ``source``.

    Type checkers and IDEs see ``source``'s parameters (its first, ``self``,
    aside), and so does :func:`inspect.signature`; the method keeps its own
    return type and docstring. The method hands its arguments to whatever
    checks them (``source`` itself, or the options class whose ``__init__``
    it is), so the two cannot drift apart.
    """

    def give(method: Callable[Concatenate[S, ...], R]) -> Callable[Concatenate[S, P], R]:
        own = inspect.signature(method)
        theirs = inspect.signature(source)
        self_parameter = next(iter(own.parameters.values()))
        method.__signature__ = theirs.replace(  # type: ignore[attr-defined]
            parameters=[self_parameter, *list(theirs.parameters.values())[1:]],
            return_annotation=own.return_annotation,
        )
        return method

    return give
