"""ClientOptions: every setting written once, checked once, kept secret, shared by both faces."""

from __future__ import annotations

import copy
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from fathom_events import AsyncClient, Client, InvalidRequestError, RateLimit, RetryPolicy
from fathom_events._options import AsyncClientOptions, ClientOptions
from tests.support.helpers import SITE, TOKEN

URL = "https://api.example.test/v1"
COPIERS: dict[str, Callable[[Any], object]] = {
    "pickle": pickle.dumps,
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}
# One bad value for each setting that has a rule, and the field the error must name.
BAD_SETTINGS: list[tuple[str, Any]] = [
    ("token", ""),
    ("token", "has space"),
    ("base_url", "ftp://x/v1"),
    ("base_url", "http://api.example.com/v1"),
    ("timeout", 0),
    ("connect_timeout", float("nan")),
    ("retry", 3),
    ("max_in_flight", 0),
    ("rate_limit", 2000),
    ("max_response_bytes", True),
    ("clock", 1.0),
    ("sleep", "soon"),
    ("on_event", [print]),
]


def settings_of(signature: inspect.Signature) -> dict[str, inspect.Parameter]:
    return {name: p for name, p in signature.parameters.items() if name != "self"}


def test_both_faces_take_exactly_the_options() -> None:
    """Client takes ClientOptions' parameters, AsyncClient those and session: kinds and defaults."""
    options = settings_of(inspect.signature(ClientOptions))
    assert settings_of(inspect.signature(Client)) == options
    assert settings_of(inspect.signature(AsyncClient)) == {
        **options,
        "session": inspect.signature(AsyncClientOptions).parameters["session"],
    }
    assert list(options)[:3] == ["token", "base_url", "timeout"]  # still positional


def test_with_options_has_one_signature_on_both_faces() -> None:
    """Client.with_options takes AsyncClient.with_options' parameters and returns a Client."""
    async_signature = inspect.signature(AsyncClient.with_options)
    blocking_signature = inspect.signature(Client.with_options)
    assert blocking_signature.parameters == async_signature.parameters
    assert blocking_signature.return_annotation == "Client"
    assert list(async_signature.parameters) == [
        "self",
        "max_retries",
        "timeout",
        "retry",
        "retry_ambiguous_creates",
    ]


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
def test_evolve_checks_as_the_constructor_does(field: str, value: Any) -> None:
    """A bad setting is refused naming its field, whether made new or changed by evolve."""
    with pytest.raises(InvalidRequestError) as made:
        ClientOptions(**{"token": TOKEN, "base_url": URL, field: value})
    options = ClientOptions(TOKEN, URL)
    with pytest.raises(InvalidRequestError) as evolved:
        attrs.evolve(options, **{field: value})
    assert made.value.field == evolved.value.field == field
    assert str(made.value) == str(evolved.value)
    assert TOKEN not in str(evolved.value)


def test_options_are_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is read from the environment once; evolve keeps it and each checked value."""
    monkeypatch.setenv("FATHOM_API_TOKEN", "first-token")
    options = ClientOptions(base_url=URL + "/", timeout=2, rate_limit=RateLimit(10))
    monkeypatch.setenv("FATHOM_API_TOKEN", "second-token")
    changed = attrs.evolve(options, connect_timeout=1)
    assert changed.token.reveal() == "first-token"
    assert changed.base_url == URL
    assert changed.retry == RetryPolicy()
    assert (changed.timeout, changed.connect_timeout) == (2.0, 1.0)
    assert (changed.timeouts.total, changed.timeouts.connect) == (2.0, 1.0)
    assert changed.rate_limit is options.rate_limit


def test_options_never_show_the_token() -> None:
    """No repr of the options, of an evolved copy, or of their fields as a dict holds the token."""
    options = ClientOptions(TOKEN, URL)
    changed = attrs.evolve(options, timeout=1.5)
    for shown in (options, changed, attrs.asdict(options), attrs.asdict(changed)):
        assert TOKEN not in repr(shown)
        assert TOKEN not in str(shown)
    assert changed.token.reveal() == TOKEN  # hidden, not lost


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
def test_options_refuse_pickle_and_copy(copier: Callable[[Any], object]) -> None:
    """Options refuse pickle and copies as the clients do, without showing the token."""
    for options in (ClientOptions(TOKEN, URL), AsyncClientOptions(TOKEN, URL)):
        with pytest.raises(TypeError, match="cannot be pickled or copied") as info:
            copier(options)
        assert TOKEN not in str(info.value)


async def test_async_with_options_is_checked_like_the_constructor(client: AsyncClient) -> None:
    """AsyncClient.with_options refuses what the constructor refuses, naming the field."""
    with pytest.raises(InvalidRequestError) as info:
        client.with_options(retry=3)  # type: ignore[arg-type]
    assert info.value.field == "retry"
    with pytest.raises(InvalidRequestError) as info:
        client.with_options(timeout=-1)
    assert info.value.field == "timeout"
    with pytest.raises(InvalidRequestError) as info:
        client.with_options(max_retries=-1)
    assert info.value.field == "max_retries"


async def test_async_twin_holds_evolved_options(client: AsyncClient) -> None:
    """A twin's options are the original's with the changes; its session and gate are shared."""
    policy = RetryPolicy(max_retries=5, deadline=None)
    twin = client.with_options(retry=policy, max_retries=1, timeout=2.5)
    assert twin.retry_policy == attrs.evolve(policy, max_retries=1)
    assert twin._options.timeouts.total == 2.5
    assert twin._options.token is client._options.token
    assert twin._limits is client._limits
    assert twin._sender is client._sender
    await twin.events.list(SITE)
    assert client.requests_sent == twin.requests_sent == 1


def test_blocking_with_options_is_checked_like_the_constructor(sync_client: Client) -> None:
    """Client.with_options refuses a bad setting naming it, and its twin holds the new options."""
    with pytest.raises(InvalidRequestError) as info:
        sync_client.with_options(retry="3")  # type: ignore[arg-type]
    assert info.value.field == "retry"
    twin = sync_client.with_options(timeout=4.0)
    assert twin._options is twin._async._options
    assert twin._options.timeouts.total == 4.0
    assert twin._limits is sync_client._limits


@pytest.mark.parametrize("value", ["no", 1, None])
def test_allow_insecure_http_must_be_a_bool(value: object) -> None:
    """allow_insecure_http takes True or False only: a truthy string never lets the token out."""
    with pytest.raises(InvalidRequestError, match="allow_insecure_http"):
        ClientOptions(TOKEN, "http://api.example.com/v1", allow_insecure_http=value)  # type: ignore[arg-type]
