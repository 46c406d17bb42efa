"""A lent session that cannot work is refused with a clear error, never a bare aiohttp one."""

from __future__ import annotations

import warnings
from pathlib import Path

import aiohttp
import pytest

from fathom_events import AsyncClient, ClientClosedError, InvalidRequestError
from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, TOKEN


async def test_a_closed_session_is_refused_at_construction(base_url: str) -> None:
    """Lending a session that is already closed is InvalidRequestError naming session."""
    session = aiohttp.ClientSession()
    await session.close()
    with pytest.raises(InvalidRequestError) as info:
        AsyncClient(TOKEN, base_url, session=session)
    assert info.value.field == "session"


async def test_a_session_closed_later_is_client_closed(fake: FakeFathom, base_url: str) -> None:
    """A lent session closed by its owner gives ClientClosedError; nothing is sent."""
    session = aiohttp.ClientSession()
    client = AsyncClient(TOKEN, base_url, session=session)
    await client.events.list(SITE)
    await session.close()
    with pytest.raises(ClientClosedError, match="session="):
        await client.events.create(SITE, "Signed up")
    assert [r.method for r in fake.requests] == ["GET"]


async def test_a_session_with_its_own_auth_is_refused(base_url: str) -> None:
    """A session made with auth= would clash with the token's header: refused up front."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp deprecates auth=
        session = aiohttp.ClientSession(auth=aiohttp.BasicAuth("user", "pass"))
    async with session:
        with pytest.raises(InvalidRequestError) as info:
            AsyncClient(TOKEN, base_url, session=session)
    assert info.value.field == "session"


async def test_not_a_session_is_refused(base_url: str) -> None:
    """session= must be an aiohttp.ClientSession."""
    with pytest.raises(InvalidRequestError, match="session"):
        AsyncClient(TOKEN, base_url, session="http://elsewhere")  # type: ignore[arg-type]


async def test_a_netrc_login_for_the_host_is_a_typed_error(
    fake: FakeFathom, base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trust_env session finding a .netrc login for the API's host: typed, nothing sent."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password pass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with aiohttp.ClientSession(trust_env=True) as session:
        client = AsyncClient(TOKEN, base_url, session=session)
        with pytest.raises(InvalidRequestError) as info:
            await client.events.list(SITE)
    assert info.value.field == "session"
    assert fake.requests == []
