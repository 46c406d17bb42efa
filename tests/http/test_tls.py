"""ssl=: a CA of your own and client certificates, over real TLS sockets, on both faces."""

from __future__ import annotations

import sys

import pytest

from fathom_events import APIConnectionError, FathomError
from fathom_events.testing import FakeFathom
from tests.support.faces import Face, face_fixture
from tests.support.helpers import SITE, TOKEN
from tests.support.secrecy import assert_token_free
from tests.support.tls import Certificates, TlsServed, certificates_fixture

__all__ = ["certificates_fixture", "face_fixture"]


async def test_a_server_whose_ca_is_trusted_is_reached(
    face: Face, fake: FakeFathom, certificates: Certificates
) -> None:
    """ssl= a context trusting the test CA: the client talks to the TLS server."""
    served = TlsServed(fake, certificates.server_context())
    async with face.opened(served, ssl=certificates.client_context()) as opened:
        assert opened.base_url.startswith("https://127.0.0.1:")
        created = await opened.events.create(SITE, "Over TLS")
    assert [event["id"] for event in fake.events(SITE)] == [created.id]
    assert fake.requests[0].token == TOKEN


async def test_a_server_whose_ca_is_not_trusted_is_refused_as_a_certificate_problem(
    face: Face, fake: FakeFathom, certificates: Certificates, every_error_token_free: None
) -> None:
    """Without the CA the call raises a typed error saying the certificate is not trusted."""
    served = TlsServed(fake, certificates.server_context())
    async with face.opened(served) as opened:
        with pytest.raises(APIConnectionError) as refused:
            await opened.events.list(SITE)
        assert opened.client.requests_sent == 1  # a TLS failure is not retried
    error = refused.value
    assert error.tls_failure
    assert not error.request_sent
    assert "certificate" in error.message
    assert "not trusted" in error.message
    assert "ssl=" in error.message
    assert fake.requests == []  # nothing reached the API


async def test_a_client_certificate_is_presented_when_the_server_asks(
    face: Face, fake: FakeFathom, certificates: Certificates
) -> None:
    """A context holding the client's certificate gets through a server that requires one."""
    served = TlsServed(fake, certificates.server_context(require_client_cert=True))
    context = certificates.client_context(with_client_cert=True)
    async with face.opened(served, ssl=context) as opened:
        assert (await opened.events.list(SITE)).data == []
    assert len(fake.requests) == 1


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="before 3.11, asyncio's server side leaks its TLS transport when a handshake fails",
)
async def test_no_client_certificate_when_the_server_requires_one_is_a_typed_error(
    face: Face, fake: FakeFathom, certificates: Certificates
) -> None:
    """Without a client certificate, a server that requires one is never reached: a typed error.

    Under TLS 1.3 the server checks the client's certificate after the client's
    side of the handshake is done, and an asyncio server then just closes the
    connection: the client can only say the server closed it without answering.
    """
    served = TlsServed(fake, certificates.server_context(require_client_cert=True))
    async with face.opened(served, ssl=certificates.client_context()) as opened:
        with pytest.raises(FathomError) as refused:
            await opened.events.list(SITE)
    assert isinstance(refused.value, APIConnectionError)
    assert "closed the connection" in str(refused.value) or refused.value.tls_failure
    assert fake.requests == []
    assert_token_free(refused.value, TOKEN)
