"""proxy=, trust_env= and ssl=: checked as the client is made, credentials never shown."""

from __future__ import annotations

import pickle
import ssl
from typing import Any

import attrs
import pytest

from fathom_events import AsyncClient, Client, InvalidRequestError
from fathom_events._http import _route
from fathom_events._options import ClientOptions
from fathom_events.testing import FakeFathom, MemoryTransport
from tests.support.helpers import TOKEN

URL = "https://api.example.test/v1"
PASSWORD = "pr0xy-pa55word"
PROXY = f"http://proxy-user:{PASSWORD}@proxy.example.test:3128"
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


def verifying() -> ssl.SSLContext:
    return ssl.create_default_context()


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (3128, "must be a string, got int"),
        ("socks5://proxy.example.test:1080", "must be an http(s) URL with a host"),
        (f"socks5://u:{PASSWORD}@proxy.example.test", "got 'socks5://***@proxy.example.test'"),
        ("proxy.example.test:3128", "must be an http(s) URL with a host"),
        ("http://proxy.example.test:0", "must have a port from 1 to 65535"),
        (f"http://u:{PASSWORD}@proxy.example.test:99999", "got 'http://***@proxy.example"),
        (f"http://u:{PASSWORD}@proxy.example.test/path", "must be only scheme://"),
        (f"http://u:{PASSWORD}@proxy.example.test?q=1", "must be only scheme://"),
        (f"http://u:{PASSWORD} @proxy.example.test", "must be printable ASCII"),
        (f"http://u:{PASSWORD}\\@proxy.example.test", "got 'http://***@proxy.example.test'"),
    ],
)
def test_a_bad_proxy_is_refused_naming_it_without_its_credentials(value: object, rule: str) -> None:
    """A proxy that is not an http(s) URL with a host is refused; no message shows its password."""
    with pytest.raises(InvalidRequestError) as refused:
        ClientOptions(TOKEN, URL, proxy=value)  # type: ignore[arg-type]
    assert refused.value.field == "proxy"
    assert rule in refused.value.rule
    assert PASSWORD not in str(refused.value)
    assert PASSWORD not in repr(refused.value)


def test_a_proxy_is_held_without_its_credentials_showing() -> None:
    """The options keep the proxy's URL and its Proxy-Authorization; no repr or dict shows them."""
    options = ClientOptions(TOKEN, URL, proxy=PROXY)
    assert options.proxy is not None
    assert options.proxy.url == "http://proxy.example.test:3128"
    assert options.proxy.authorization is not None
    # Basic base64("proxy-user:pr0xy-pa55word")
    assert options.proxy.authorization.reveal() == "Basic cHJveHktdXNlcjpwcjB4eS1wYTU1d29yZA=="
    assert options.proxy_in_use is options.proxy
    changed = attrs.evolve(options, timeout=3)
    assert changed.proxy is options.proxy
    for shown in (options, changed, attrs.asdict(options), options.proxy):
        assert PASSWORD not in repr(shown)
        assert "cHJveHktdXNlcjpwcjB4eS1wYTU1d29yZA" not in repr(shown)
    with pytest.raises(TypeError):
        pickle.dumps(options.proxy)


def test_percent_encoded_credentials_are_decoded_once() -> None:
    """A user or password holding '@' or ':' is given percent-encoded, and sent decoded."""
    options = ClientOptions(TOKEN, URL, proxy="http://me%40corp:p%3Ass@proxy.example.test")
    assert options.proxy is not None
    assert options.proxy.url == "http://proxy.example.test"
    assert options.proxy.authorization is not None
    assert options.proxy.authorization.reveal() == "Basic bWVAY29ycDpwOnNz"  # me@corp:p:ss


@pytest.mark.parametrize("make", [AsyncClient, Client])
def test_both_faces_refuse_a_bad_proxy_before_sending(make: Any) -> None:
    """AsyncClient(...) and Client(...) refuse a bad proxy as they are made."""
    with pytest.raises(InvalidRequestError, match="proxy: must be an http"):
        make(TOKEN, URL, proxy="ftp://proxy.example.test")


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy"])
def test_trust_env_takes_the_proxy_the_environment_names(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trust_env, $HTTPS_PROXY (either case) is the proxy of an https:// base URL."""
    monkeypatch.setenv(name, PROXY)
    options = ClientOptions(TOKEN, URL, trust_env=True)
    assert options.proxy is None
    assert options.proxy_in_use is not None
    assert options.proxy_in_use.url == "http://proxy.example.test:3128"
    assert options.proxy_in_use.source == "$HTTPS_PROXY (trust_env=True)"
    assert PASSWORD not in repr(options)
    assert ClientOptions(TOKEN, URL).proxy_in_use is None  # off by default


def test_trust_env_reads_http_proxy_for_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """An http:// base URL takes $HTTP_PROXY, not $HTTPS_PROXY; a bare host:port is http://."""
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy.example.test")
    monkeypatch.setenv("HTTP_PROXY", "127.0.0.1:8888")
    options = ClientOptions(TOKEN, "http://127.0.0.1:9/v1", trust_env=True)
    assert options.proxy_in_use is not None
    assert options.proxy_in_use.url == "http://127.0.0.1:8888"


@pytest.mark.parametrize("no_proxy", ["api.example.test", ".example.test", "*", "x, example.test"])
def test_no_proxy_naming_the_host_means_no_proxy(
    no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$NO_PROXY naming the API's host (or its domain, or '*') sends straight to the API."""
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert ClientOptions(TOKEN, URL, trust_env=True).proxy_in_use is None


def test_an_explicit_proxy_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """proxy= is used whatever $HTTPS_PROXY says, trust_env or not."""
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.example.test")
    options = ClientOptions(TOKEN, URL, proxy=PROXY, trust_env=True)
    assert options.proxy_in_use is options.proxy


def test_a_bad_proxy_in_the_environment_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A $HTTPS_PROXY that is no proxy URL is refused, naming the variable, credentials hidden."""
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://u:{PASSWORD}@proxy.example.test")
    with pytest.raises(InvalidRequestError) as refused:
        ClientOptions(TOKEN, URL, trust_env=True)
    assert refused.value.field == "proxy"
    assert refused.value.rule.startswith("$HTTPS_PROXY (trust_env=True) must be an http(s) URL")
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_trust_env_must_be_a_bool(value: object) -> None:
    """trust_env takes True or False only."""
    with pytest.raises(InvalidRequestError, match="trust_env"):
        ClientOptions(TOKEN, URL, trust_env=value)  # type: ignore[arg-type]


def test_ssl_must_be_a_verifying_context() -> None:
    """ssl= takes an SSLContext that checks the server's certificate and name, nothing else."""
    with pytest.raises(InvalidRequestError, match=r"ssl: must be an ssl\.SSLContext"):
        ClientOptions(TOKEN, URL, ssl=False)  # type: ignore[arg-type]
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(InvalidRequestError, match="ssl: must verify the server"):
        ClientOptions(TOKEN, URL, ssl=lax)
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(InvalidRequestError, match="never switched off"):
        ClientOptions(TOKEN, URL, ssl=lax)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(InvalidRequestError, match="ssl: must verify"):
        ClientOptions(TOKEN, URL, ssl=server_side)
    context = verifying()
    assert ClientOptions(TOKEN, URL, ssl=context).ssl is context


def test_ssl_with_nothing_https_is_refused() -> None:
    """ssl= with an http:// base URL and no https:// proxy would be unused: refused."""
    with pytest.raises(InvalidRequestError, match="ssl: is for TLS"):
        ClientOptions(TOKEN, "http://127.0.0.1:9/v1", ssl=verifying())
    through_tls = ClientOptions(
        TOKEN, "http://127.0.0.1:9/v1", proxy="https://127.0.0.1:8443", ssl=verifying()
    )
    assert through_tls.ssl is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [("proxy", PROXY), ("trust_env", True), ("ssl", ssl.create_default_context())],
    ids=["proxy", "trust_env", "ssl"],
)
def test_a_transport_of_your_own_refuses_the_built_in_settings(field: str, value: object) -> None:
    """proxy, trust_env and ssl with transport= are refused, naming the setting."""
    with pytest.raises(InvalidRequestError, match="built-in \\(aiohttp\\) transport") as refused:
        ClientOptions(TOKEN, URL, transport=MemoryTransport(FakeFathom()), **{field: value})  # type: ignore[arg-type]
    assert refused.value.field == field
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize(
    ("base_url", "proxy", "field"),
    [
        ("http://127.0.0.1:9/v1", "http://proxy.example.test:3128", "proxy"),
        ("http://127.0.0.1:9/v1", "https://proxy.example.test:3128", "proxy"),
        ("http://api.example.test/v1", "http://127.0.0.1:3128", "base_url"),
    ],
)
def test_plain_http_through_a_proxy_not_on_loopback_is_refused(
    base_url: str, proxy: str, field: str
) -> None:
    """A plain http:// base URL through a proxy not on loopback needs allow_insecure_http."""
    with pytest.raises(InvalidRequestError, match="allow_insecure_http=True") as refused:
        ClientOptions(TOKEN, base_url, proxy=proxy)
    assert refused.value.field == field
    allowed = ClientOptions(TOKEN, base_url, proxy=proxy, allow_insecure_http=True)
    assert allowed.proxy_in_use is not None


def test_plain_http_through_a_proxy_on_loopback_needs_nothing() -> None:
    """A loopback base URL through a loopback proxy keeps the token on this machine: allowed."""
    options = ClientOptions(TOKEN, "http://localhost:9/v1", proxy="http://u:p@[::1]:3128")
    assert options.proxy_in_use is not None
    assert options.proxy_in_use.url == "http://[::1]:3128"


def test_plain_http_through_an_environment_proxy_keeps_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$HTTP_PROXY not on loopback, for a loopback http:// base URL, is refused naming it."""
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    with pytest.raises(InvalidRequestError) as refused:
        ClientOptions(TOKEN, "http://127.0.0.1:9/v1", trust_env=True)
    assert refused.value.field == "proxy"
    assert "$HTTP_PROXY (trust_env=True)" in refused.value.rule
    assert PASSWORD not in str(refused.value)


def test_an_https_proxy_for_an_https_api_needs_tls_inside_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before Python 3.11 (no TLS inside TLS), https through an https proxy is refused."""
    monkeypatch.setattr(_route, "TLS_IN_TLS", False)
    with pytest.raises(InvalidRequestError, match="needs TLS inside TLS") as refused:
        ClientOptions(TOKEN, URL, proxy=f"https://u:{PASSWORD}@proxy.example.test")
    assert refused.value.field == "proxy"
    assert PASSWORD not in str(refused.value)
    assert ClientOptions(TOKEN, URL, proxy="http://proxy.example.test").proxy_in_use is not None
    plain = ClientOptions(TOKEN, "http://127.0.0.1:9/v1", proxy="https://127.0.0.1:8443")
    assert plain.proxy_in_use is not None


async def test_a_twin_keeps_the_proxy_its_original_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """with_options does not read the environment again: the twin shows the proxy in use."""
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    async with AsyncClient(TOKEN, URL, trust_env=True) as client:
        monkeypatch.setenv("HTTPS_PROXY", "socks5://not-a-proxy-we-take")
        twin = client.with_options(timeout=3)
        assert twin._options.proxy_in_use is client._options.proxy_in_use
        assert twin._options.proxy_in_use is not None
