"""Certificates for the TLS tests, made by trustme: a CA, a server's and a client's.

:class:`Certificates` holds one test CA and what it issued: the server's
certificate (for ``127.0.0.1`` and ``localhost``), a client's, and the
contexts each side uses. :class:`TlsServed` serves a :class:`FakeFathom`
with one of them, wherever a face wants it (``serve()`` or
``serve_in_thread()``), so that both faces reach it over real TLS.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import pytest
import trustme

from fathom_events.testing import FakeFathom

__all__ = ["Certificates", "TlsServed", "certificates_fixture"]


@attrs.frozen
class Certificates:
    """A test CA, the server and client certificates it issued, as files and contexts."""

    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert
    folder: Path

    @property
    def ca_file(self) -> Path:
        """The CA's certificate, PEM: what ``--ca-bundle`` takes."""
        return self._written("ca.pem", self.ca.cert_pem)

    @property
    def client_cert_file(self) -> Path:
        """The client's certificate chain and key in one PEM file: what ``--client-cert`` takes."""
        return self._written("client.pem", self.client.private_key_and_cert_chain_pem)

    def _written(self, name: str, blob: trustme.Blob) -> Path:
        path = self.folder / name
        if not path.exists():
            blob.write_to_path(path)
        return path

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        """What the server presents; with ``require_client_cert``, it asks for ours (mTLS)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(context)
        return context

    def client_context(self, *, with_client_cert: bool = False) -> ssl.SSLContext:
        """A client's context trusting the test CA (and presenting the client's certificate)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_client_cert:
            self.client.configure_cert(context)
        return context


@pytest.fixture(name="certificates", scope="session")
def certificates_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """One test CA for the session, and what it issued (import it to use it)."""
    ca = trustme.CA()
    return Certificates(
        ca,
        ca.issue_cert("127.0.0.1", "localhost"),
        ca.issue_cert("client@fathom-events.test"),
        tmp_path_factory.mktemp("tls"),
    )


@attrs.frozen
class TlsServed:
    """A fake served over TLS with ``context``, where either face reaches it."""

    fake: FakeFathom
    context: ssl.SSLContext

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        async with self.fake.serve(ssl=self.context) as url:
            yield url

    @contextlib.contextmanager
    def serve_in_thread(self) -> Iterator[str]:
        with self.fake.serve_in_thread(ssl=self.context) as url:
            yield url
