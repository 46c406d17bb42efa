"""proxy= and trust_env=, through a real HTTP proxy on loopback, on both faces.

The proxy (tests/support/proxy.py) records what it saw: an https:// API is
reached through a CONNECT tunnel, so it sees the CONNECT line, its own
credentials and encrypted bytes, never the token; a plain http:// API is
reached through it in the clear (on loopback only, unless the caller allows
it).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fathom_events import APIConnectionError, AsyncClient, InvalidRequestError
from fathom_events.testing import FakeFathom
from tests.support.faces import Face, Opened, face_fixture
from tests.support.helpers import SITE, TOKEN
from tests.support.proxy import Proxy
from tests.support.secrecy import assert_token_free
from tests.support.tls import Certificates, TlsServed, certificates_fixture

__all__ = ["certificates_fixture", "face_fixture"]

USER, PASSWORD = "proxy-user", "pr0xy-pa55word"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, BASIC.removeprefix("Basic "))
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


def with_credentials(url: str, user: str = USER, password: str = PASSWORD) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{password}@{rest}"


@contextlib.asynccontextmanager
async def tunnelled(
    face: Face, fake: FakeFathom, certificates: Certificates, proxy: Proxy
) -> AsyncIterator[Opened]:
    """``fake`` served over TLS, ``proxy`` served, and a client of ``face`` through it."""
    served = TlsServed(fake, certificates.server_context())
    async with face.serve(proxy) as proxy_url:
        proxied = with_credentials(proxy_url)
        async with face.opened(served, proxy=proxied, ssl=certificates.client_context()) as opened:
            yield opened


def port_of(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


async def test_https_tunnels_through_the_proxy_which_never_sees_the_token(
    face: Face, fake: FakeFathom, certificates: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    """The proxy sees one CONNECT, its credentials and TLS bytes; the API, no credentials."""
    caplog.set_level(logging.DEBUG, logger="fathom_events")
    proxy = Proxy(credentials=(USER, PASSWORD))
    async with tunnelled(face, fake, certificates, proxy) as opened:
        created = await opened.events.create(SITE, "Through a tunnel")
        await opened.events.get(SITE, created.id)
        assert PASSWORD not in "".join(opened.reprs())
    host = port_of(opened.base_url)
    assert proxy.seen.lines == [f"CONNECT {host} HTTP/1.1"]  # one tunnel, kept alive
    assert proxy.seen.headers[0]["proxy-authorization"] == BASIC
    assert proxy.seen.tunnelled[:1] == b"\x16"  # a TLS handshake record: all it carries
    assert TOKEN.encode() not in proxy.seen.tunnelled
    assert b"Through a tunnel" not in proxy.seen.tunnelled
    assert [request.method for request in fake.requests] == ["POST", "GET"]
    for request in fake.requests:
        assert request.token == TOKEN
        assert "proxy-authorization" not in request.headers
    said = [record.getMessage() for record in caplog.records]
    assert re.search(r"go through the proxy http://127\.0\.0\.1:\d+ \(proxy=\)$", said[0])
    assert not [line for line in said if any(secret in line for secret in SECRETS)]
    assert not [line for line in said if TOKEN in line]


async def test_plain_http_goes_through_the_proxy_with_its_credentials(
    face: Face, fake: FakeFathom
) -> None:
    """A plain http:// API on loopback is reached through the proxy, which gets the credentials."""
    proxy = Proxy(credentials=(USER, PASSWORD))
    async with (
        face.serve(proxy) as proxy_url,
        face.opened(fake, proxy=with_credentials(proxy_url)) as opened,
    ):
        await opened.events.list(SITE)
        await opened.events.create(SITE, "In the clear, on loopback")
    base = opened.base_url
    assert proxy.seen.lines == [
        f"GET {base}/sites/{SITE}/events HTTP/1.1",
        f"POST {base}/sites/{SITE}/events HTTP/1.1",
    ]
    assert {headers["proxy-authorization"] for headers in proxy.seen.headers} == {BASIC}
    assert [request.method for request in fake.requests] == ["GET", "POST"]
    assert all("proxy-authorization" not in request.headers for request in fake.requests)


async def test_a_proxy_refusing_the_credentials_is_a_typed_error_that_hides_them(
    face: Face, fake: FakeFathom, certificates: Certificates
) -> None:
    """A 407 to CONNECT, quoting the credentials: APIConnectionError saying so, none shown."""
    proxy = Proxy(credentials=(USER, "another-password"), echo=True)
    async with tunnelled(face, fake, certificates, proxy) as opened:
        with pytest.raises(APIConnectionError) as refused:
            await opened.events.create(SITE, "Never sent")
    error = refused.value
    assert "the proxy refused the tunnel with 407" in error.message
    assert not error.request_sent
    assert not error.may_have_been_applied
    assert fake.requests == []
    assert_token_free(error, TOKEN, *SECRETS)


async def test_a_proxy_that_cannot_be_reached_is_not_sent_to(face: Face, fake: FakeFathom) -> None:
    """A proxy nobody listens on: APIConnectionError saying so, the request not sent."""
    proxy = Proxy()
    async with face.serve(proxy) as proxy_url:
        pass  # served, then stopped: its port is free now
    async with face.opened(fake, proxy=with_credentials(proxy_url)) as opened:
        with pytest.raises(APIConnectionError) as refused:
            await opened.events.list(SITE)
    assert "could not connect to the proxy" in refused.value.message
    assert not refused.value.request_sent
    assert_token_free(refused.value, TOKEN, *SECRETS)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TLS inside TLS needs Python 3.11")
async def test_an_https_proxy_carries_the_tunnel_inside_tls(
    face: Face, fake: FakeFathom, certificates: Certificates
) -> None:
    """An https:// proxy: TLS to the proxy, and the API's own TLS inside the tunnel."""
    proxy = Proxy(credentials=(USER, PASSWORD), ssl=certificates.server_context())
    async with tunnelled(face, fake, certificates, proxy) as opened:
        await opened.events.list(SITE)
    assert proxy.seen.lines == [f"CONNECT {port_of(opened.base_url)} HTTP/1.1"]
    assert TOKEN.encode() not in proxy.seen.tunnelled  # decrypted by the proxy: still TLS
    assert len(fake.requests) == 1


async def test_trust_env_takes_the_proxy_from_https_proxy(
    face: Face, fake: FakeFathom, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env=True sends through $HTTPS_PROXY (credentials and all)."""
    proxy = Proxy(credentials=(USER, PASSWORD))
    served = TlsServed(fake, certificates.server_context())
    async with face.serve(proxy) as proxy_url:
        monkeypatch.setenv("HTTPS_PROXY", with_credentials(proxy_url))
        settings: dict[str, Any] = {"trust_env": True, "ssl": certificates.client_context()}
        async with face.opened(served, **settings) as opened:
            await opened.events.list(SITE)
    assert proxy.seen.lines == [f"CONNECT {port_of(opened.base_url)} HTTP/1.1"]
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("trust_env", "no_proxy"),
    [(True, "localhost,127.0.0.1"), (False, None)],
    ids=["no_proxy-names-the-host", "without-trust_env"],
)
async def test_the_environment_s_proxy_is_passed_by(
    trust_env: bool,
    no_proxy: str | None,
    face: Face,
    fake: FakeFathom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$HTTP_PROXY is not used without trust_env, nor when $NO_PROXY names the API's host."""
    proxy = Proxy()
    async with face.serve(proxy) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        if no_proxy is not None:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        async with face.opened(fake, trust_env=trust_env) as opened:
            await opened.events.list(SITE)
    assert proxy.seen.lines == []
    assert len(fake.requests) == 1


async def test_plain_http_through_a_proxy_off_loopback_needs_allow_insecure_http(
    fake: FakeFathom,
) -> None:
    """A proxy not on loopback (0.0.0.0 here) carries plain http only with allow_insecure_http."""
    proxy = Proxy()
    async with proxy.serve() as proxy_url, fake.serve() as base_url:
        off_loopback = proxy_url.replace("127.0.0.1", "0.0.0.0")  # noqa: S104 - a client's target
        with pytest.raises(InvalidRequestError) as refused:
            AsyncClient(TOKEN, base_url, proxy=off_loopback)
        assert refused.value.field == "proxy"
        client = AsyncClient(TOKEN, base_url, proxy=off_loopback, allow_insecure_http=True)
        async with client:
            await client.events.list(SITE)
    assert proxy.seen.lines == [f"GET {base_url}/sites/{SITE}/events HTTP/1.1"]


async def test_a_lent_session_sends_through_the_proxy_too(
    fake: FakeFathom, certificates: Certificates
) -> None:
    """proxy= and ssl= apply to each request on a lent session as on the client's own."""
    proxy = Proxy(credentials=(USER, PASSWORD))
    served = TlsServed(fake, certificates.server_context())
    async with (
        proxy.serve() as proxy_url,
        served.serve() as base_url,
        aiohttp.ClientSession() as session,
    ):
        client = AsyncClient(
            TOKEN,
            base_url,
            session=session,
            proxy=with_credentials(proxy_url),
            ssl=certificates.client_context(),
        )
        async with client:
            await client.events.list(SITE)
    assert proxy.seen.lines == [f"CONNECT {port_of(base_url)} HTTP/1.1"]
    assert len(fake.requests) == 1
