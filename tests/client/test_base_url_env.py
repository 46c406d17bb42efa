"""$FATHOM_API_BASE_URL: the base URL when none is given, on both faces, checked as an argument."""

from __future__ import annotations

import pytest

from fathom_events import DEFAULT_BASE_URL, AsyncClient, Client, InvalidRequestError
from fathom_events._options import ClientOptions
from fathom_events.testing import FakeFathom
from tests.support.faces import Face, face_fixture
from tests.support.helpers import SITE, TOKEN

__all__ = ["face_fixture"]

ENV = "FATHOM_API_BASE_URL"
ELSEWHERE = "https://elsewhere.example.test/v1"


async def test_the_environment_names_the_base_url_when_none_is_given(
    face: Face, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no base_url, the client sends to $FATHOM_API_BASE_URL (over real HTTP)."""
    async with face.serve(fake) as url:
        monkeypatch.setenv(ENV, url + "/")
        async with face.open(TOKEN, None, timeout=5.0) as opened:
            assert opened.base_url == url
            assert (await opened.events.list(SITE)).data == []
    assert [request.path for request in fake.requests] == [f"/v1/sites/{SITE}/events"]


async def test_an_argument_wins_over_the_environment(
    face: Face, fake: FakeFathom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """base_url= given is used whatever $FATHOM_API_BASE_URL says."""
    monkeypatch.setenv(ENV, ELSEWHERE)
    async with face.serve(fake) as url, face.open(TOKEN, url, timeout=5.0) as opened:
        await opened.events.list(SITE)
        assert opened.base_url == url
    assert len(fake.requests) == 1


@pytest.mark.parametrize("make", [AsyncClient, Client, ClientOptions])
def test_the_default_when_neither_is_given(make: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without base_url and without $FATHOM_API_BASE_URL, Fathom's own URL is used."""
    monkeypatch.delenv(ENV, raising=False)
    made = make(TOKEN)
    try:
        assert made.base_url == DEFAULT_BASE_URL
    finally:
        if isinstance(made, Client):
            made.close()


def test_the_environment_is_read_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to $FATHOM_API_BASE_URL after the options are made changes nothing they hold."""
    monkeypatch.setenv(ENV, ELSEWHERE)
    options = ClientOptions(TOKEN)
    monkeypatch.setenv(ENV, "https://third.example.test/v1")
    assert options.base_url == ELSEWHERE


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "must be an http(s) URL with a host, got ''"),
        ("ftp://x/v1", "must be an http(s) URL with a host, got 'ftp://x/v1'"),
        ("https://x:0/v1", "must have a port from 1 to 65535"),
        ("https://x/v1 ", "must be printable ASCII with no whitespace"),
        ("https://user:pw@x/v1", "must not carry a query, a fragment or credentials"),
    ],
)
def test_a_bad_base_url_in_the_environment_is_refused_naming_it(
    value: str, rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$FATHOM_API_BASE_URL gets the checks base_url= gets; the error names the variable."""
    monkeypatch.setenv(ENV, value)
    with pytest.raises(InvalidRequestError) as refused:
        ClientOptions(TOKEN)
    assert refused.value.field == "base_url"
    assert refused.value.rule.startswith(f"${ENV} {rule}")
    assert "pw" not in str(refused.value)


def test_plain_http_from_the_environment_keeps_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """An http:// $FATHOM_API_BASE_URL to a host not on loopback needs allow_insecure_http."""
    monkeypatch.setenv(ENV, "http://api.example.test/v1")
    with pytest.raises(InvalidRequestError, match="plain http://") as refused:
        ClientOptions(TOKEN)
    assert refused.value.field == "base_url"
    assert ClientOptions(TOKEN, allow_insecure_http=True).base_url == "http://api.example.test/v1"
