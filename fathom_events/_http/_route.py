"""Where a client's requests go, each setting checked before anything is sent.

* The base URL: ``base_url=`` as given, else ``$FATHOM_API_BASE_URL``, else
  Fathom's own (:func:`base_url_from`); the same checks whichever it is.
* The proxy: ``proxy=`` as given, else (with ``trust_env=True``) the one the
  environment names for the base URL's scheme, ``$HTTPS_PROXY`` or
  ``$HTTP_PROXY``, unless ``$NO_PROXY`` names its host; never ``.netrc``
  (:func:`proxy_from_environment`). A :class:`Proxy` holds its URL without
  credentials (what is ever shown) and the ``Proxy-Authorization`` they make,
  in a :class:`Secret`: no message, repr or log shows a proxy's credentials.
* The TLS context (``ssl=``): an ``ssl.SSLContext`` that verifies the server.
* Plain http's rule over them (:func:`refuse_plain_http`): the token travels
  unencrypted to no host but a loopback one, proxy included, unless
  ``allow_insecure_http=True``.

The settings are the built-in transport's; the options hold them checked and
the client hands them to :class:`~fathom_events._http._aiohttp.AiohttpTransport`.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import ssl
import sys
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

import attrs

from fathom_events._checks import check_url_port, shown
from fathom_events._defaults import DEFAULT_BASE_URL
from fathom_events.exceptions import InvalidRequestError

from ._secrecy import Secret

__all__ = [
    "BASE_URL_ENV",
    "Proxy",
    "base_url_from",
    "check_base_url",
    "check_proxy",
    "check_ssl",
    "is_loopback",
    "proxy_from_environment",
    "refuse_plain_http",
    "refuse_tls_in_tls",
]

BASE_URL_ENV: Final = "FATHOM_API_BASE_URL"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# Characters a URL never holds raw: parsers disagree on a backslash (WHATWG reads it as
# "/"), and whitespace is either stripped or sent, so either way the URL would change.
_URL_FORBIDDEN = re.compile(r"[\s\\]").search
#: Whether asyncio can run TLS inside TLS (an https:// API through an https:// proxy).
TLS_IN_TLS = sys.version_info >= (3, 11)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_url(field: str, value: object, seen: str) -> tuple[str, SplitResult]:
    """``value`` and its parts, once it is an http(s) URL with a host and a valid port.

    ``seen`` is how the value may appear in a message (a proxy's, credentials hidden).
    """
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, got {type(value).__name__}")
    if not value.isascii() or not value.isprintable() or _URL_FORBIDDEN(value):
        raise InvalidRequestError(
            field,
            "must be printable ASCII with no whitespace or backslash (percent-encode anything"
            f" else), got {seen:.100}",
        )
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequestError(field, f"must be an http(s) URL with a host, got {seen}")
    check_url_port(field, parts, seen)
    return value, parts


def check_base_url(value: object) -> str:
    """``value`` without its trailing slash, once it passed every rule but plain http's."""
    text, parts = _http_url("base_url", value, shown(value, 100))
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidRequestError(
            "base_url",
            "must not carry a query, a fragment or credentials: the token goes in a header",
        )
    return text.rstrip("/")


def base_url_from(base_url: str | None) -> str:
    """The base URL: as given, else ``$FATHOM_API_BASE_URL``'s, else Fathom's; checked."""
    if base_url is not None:
        return check_base_url(base_url)
    found = os.environ.get(BASE_URL_ENV)
    if found is None:
        return DEFAULT_BASE_URL
    try:
        return check_base_url(found)
    except InvalidRequestError as error:
        # An empty variable is refused too: falling back to Fathom's own URL, with a
        # token meant for a fake, is what the variable was set to avoid.
        raise InvalidRequestError("base_url", f"${BASE_URL_ENV} {error.rule}") from None


@attrs.frozen
class Proxy:
    """A checked proxy: where it is, and the credentials it was given (never shown).

    ``url`` is ``scheme://host[:port]``, without credentials; ``authorization``
    the ``Proxy-Authorization`` header's value they make (Basic), or None;
    ``source`` the setting it came from (``proxy=``, ``$HTTPS_PROXY``).
    """

    url: str
    host: str
    authorization: Secret | None
    source: str


def _without_credentials(text: str) -> str:
    """A proxy URL as a message may show it: anything before an ``@`` is hidden."""
    head, at, tail = text.rpartition("@")
    if not at:
        return shown(text, 100)
    scheme = head.partition("://")[0] + "://" if "://" in head else ""
    return shown(f"{scheme}***@{tail}", 100)


def check_proxy(value: object, source: str = "proxy=") -> Proxy | None:
    """``value`` as a :class:`Proxy` (None: no proxy), once it passed every rule.

    A message about it never shows its credentials.
    """
    if value is None:
        return None
    where = "" if source == "proxy=" else f"{source} "
    seen = _without_credentials(value) if isinstance(value, str) else shown(value)
    try:
        _, parts = _http_url("proxy", value, seen)
    except InvalidRequestError as error:
        raise InvalidRequestError("proxy", f"{where}{error.rule}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidRequestError(
            "proxy", f"{where}must be only scheme://[user:password@]host[:port], got {seen}"
        )
    authorization = None
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = Secret("Basic " + base64.b64encode(pair.encode()).decode("ascii"))
    netloc = parts.netloc.rpartition("@")[2]
    return Proxy(f"{parts.scheme}://{netloc}", parts.hostname or "", authorization, source)


def proxy_from_environment(base_url: str) -> Proxy | None:
    """The proxy the environment names for ``base_url`` (``trust_env=True``), or None.

    ``$HTTPS_PROXY`` for an https:// base URL, ``$HTTP_PROXY`` for http:// (either
    case, as curl reads them; a value without a scheme is http://), unless
    ``$NO_PROXY`` names the host. ``.netrc`` is never read.
    """
    import urllib.request  # noqa: PLC0415 - only with trust_env (aiohttp has loaded it)

    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(base_url)
    found = proxies.get(parts.scheme)
    # With a proxy in the environment, proxy_bypass reads $NO_PROXY on every platform.
    if not found or urllib.request.proxy_bypass(parts.netloc):
        return None
    source = f"${parts.scheme.upper()}_PROXY (trust_env=True)"
    return check_proxy(found if "://" in found else f"http://{found}", source)


def check_ssl(value: object) -> ssl.SSLContext | None:
    """``ssl=``: None, or an ``ssl.SSLContext`` that verifies the server it talks to."""
    if value is None:
        return None
    if not isinstance(value, ssl.SSLContext):
        raise InvalidRequestError(
            "ssl",
            "must be an ssl.SSLContext, such as ssl.create_default_context(cafile=...),"
            f" got {shown(value)}",
        )
    if value.verify_mode != ssl.CERT_REQUIRED or not value.check_hostname:
        raise InvalidRequestError(
            "ssl",
            "must verify the server's certificate and name (verify_mode=ssl.CERT_REQUIRED and"
            " check_hostname=True, as ssl.create_default_context() makes it): TLS"
            " verification is never switched off",
        )
    return value


def refuse_tls_in_tls(base_url: str, proxy: Proxy | None) -> None:
    """Refuse an https:// API through an https:// proxy where asyncio cannot nest TLS."""
    if TLS_IN_TLS or proxy is None or not proxy.url.startswith("https:"):
        return
    if urlsplit(base_url).scheme == "https":
        raise InvalidRequestError(
            "proxy",
            f"{proxy.url} ({proxy.source}) is an https:// proxy: reaching an https:// API"
            " through it needs TLS inside TLS, which asyncio has from Python 3.11; use an"
            " http:// proxy (the tunnel to the API is encrypted all the same)",
        )


def refuse_plain_http(base_url: str, proxy: Proxy | None, *, allow_insecure_http: bool) -> None:
    """Refuse to send the token unencrypted to a host (or through a proxy) not on loopback."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or allow_insecure_http:
        return
    if not is_loopback(parts.hostname or ""):
        raise InvalidRequestError(
            "base_url",
            "plain http:// would send the API token unencrypted; use https://, a loopback host,"
            " or pass allow_insecure_http=True if you really mean it",
        )
    if proxy is not None and not is_loopback(proxy.host):
        raise InvalidRequestError(
            "proxy",
            f"{proxy.url} ({proxy.source}) is not on loopback: a plain http:// base URL"
            " through it would show the API token to the proxy and the network on the way;"
            " use https://, a proxy on loopback, or pass allow_insecure_http=True if you"
            " really mean it",
        )
