"""RateLimit's shared-budget settings: redis_url, key and on_redis_error, checked and shown safely.

No Redis server is needed here: these are the checks made when a RateLimit is
built, and how it shows itself. The URL's password never appears in a repr or
a message.
"""

from __future__ import annotations

import pickle

import pytest

from fathom_events import InvalidRequestError, RateLimit
from fathom_events._limits import blot_password

PASSWORD = "s3cret-Redis-pw9X"


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://localhost:6379/0",
        "rediss://user:pw@redis.example.com:6380/2",
        "redis://:pw@10.0.0.5",
        "redis://[::1]:6379",
        "unix:///run/redis/redis.sock",
        "unix:///run/redis/redis.sock?db=1",
    ],
)
def test_redis_urls_of_each_scheme_are_taken_as_given(url: str) -> None:
    """A redis://, rediss:// or unix:// URL is kept as it was given."""
    assert RateLimit(10, 60, redis_url=url).redis_url == url


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://localhost:6379", "redis://, rediss:// or unix://"),
        ("localhost:6379", "redis://, rediss:// or unix://"),
        ("redis://", "a host"),
        ("redis://:pw@", "a host"),
        ("unix://", "a socket's path"),
        ("redis://localhost:0", "port"),
        ("redis://localhost:99999", "port"),
        ("redis://local host", "whitespace"),
        ("redis://localhöst", "printable ASCII"),
        ("", "redis://, rediss:// or unix://"),
    ],
)
def test_a_bad_redis_url_is_refused_naming_the_field_and_rule(url: str, rule: str) -> None:
    """A URL of another scheme, or without a host or path, or with a bad port, is refused."""
    with pytest.raises(InvalidRequestError, match=rule) as info:
        RateLimit(10, 60, redis_url=url)
    assert info.value.field == "redis_url"


def test_a_redis_url_that_is_not_a_string_is_refused() -> None:
    """redis_url must be a string (or None)."""
    with pytest.raises(InvalidRequestError, match="must be a redis://") as info:
        RateLimit(10, 60, redis_url=b"redis://localhost")  # type: ignore[arg-type]
    assert info.value.field == "redis_url"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@localhost:6379/0",
        f"rediss://worker:{PASSWORD}@redis.example.com:6380/2",
        f"redis://localhost:6379/0?password={PASSWORD}",
        f"unix://:{PASSWORD}@/run/redis.sock",
        f"unix:///run/redis.sock?db=0&password={PASSWORD}&x=1",
    ],
)
def test_the_repr_never_shows_the_password(url: str) -> None:
    """RateLimit's repr and str blot the URL's password out, wherever the URL holds it."""
    rate_limit = RateLimit(10, 60, redis_url=url)
    for shown in (repr(rate_limit), str(rate_limit)):
        assert PASSWORD not in shown
        assert "********" in shown


def test_blotting_keeps_the_rest_of_the_url() -> None:
    """Only the password is blotted: user, host, port and database stay readable."""
    blotted = blot_password(f"rediss://worker:{PASSWORD}@redis.example.com:6380/2")
    assert blotted == "rediss://worker:********@redis.example.com:6380/2"
    assert blot_password(f"redis://:{PASSWORD}@host:6379/0") == "redis://:********@host:6379/0"
    assert blot_password("redis://host:6379/0") == "redis://host:6379/0"
    assert blot_password(f"redis://h/0?db=1&password={PASSWORD}") == (
        "redis://h/0?db=1&password=********"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"http://:{PASSWORD}@localhost:6379",
        f"redis://:{PASSWORD}@localhost:0",
        f"redis://:{PASSWORD}@",
        f"redis://:{PASSWORD}@local host",
    ],
)
def test_a_refused_url_is_not_shown_with_its_password(url: str) -> None:
    """The message refusing a URL shows it with its password blotted out."""
    with pytest.raises(InvalidRequestError) as info:
        RateLimit(10, 60, redis_url=url)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value.args)


def test_the_key_is_a_short_plain_name() -> None:
    """key= takes letters, digits and . _ : - (and needs redis_url)."""
    assert RateLimit(5, redis_url="redis://localhost", key="shop:prod-1.a_b").key == (
        "shop:prod-1.a_b"
    )
    for bad in ("", "has space", "brace{tag}", "x" * 201, "naïve", 7):
        with pytest.raises(InvalidRequestError, match="letters, digits") as info:
            RateLimit(5, redis_url="redis://localhost", key=bad)  # type: ignore[arg-type]
        assert info.value.field == "key"


def test_a_key_without_a_redis_url_is_refused() -> None:
    """key= names a budget in Redis: without redis_url it would mean nothing, so it is refused."""
    with pytest.raises(InvalidRequestError, match="redis_url") as info:
        RateLimit(5, key="shop")
    assert info.value.field == "key"


def test_on_redis_error_is_fallback_or_raise() -> None:
    """on_redis_error defaults to "fallback", takes "raise", and refuses anything else."""
    assert RateLimit(5).on_redis_error == "fallback"
    assert RateLimit(5, redis_url="redis://h", on_redis_error="raise").on_redis_error == "raise"
    for bad in ("Raise", "ignore", None, True):
        with pytest.raises(InvalidRequestError, match='"fallback" or "raise"') as info:
            RateLimit(5, on_redis_error=bad)  # type: ignore[arg-type]
        assert info.value.field == "on_redis_error"


def test_the_shared_settings_are_keyword_only() -> None:
    """redis_url, key and on_redis_error are keywords: RateLimit(N, S) reads as before."""
    with pytest.raises(TypeError):
        RateLimit(5, 60, "redis://localhost")  # type: ignore[call-arg]


def test_a_rate_limit_without_redis_is_as_before() -> None:
    """With no redis_url the repr is the old one plus the defaults, and it still pickles."""
    rate_limit = RateLimit(2000, 3600)
    assert rate_limit.redis_url is None
    assert rate_limit.key is None
    assert pickle.loads(pickle.dumps(rate_limit)) == rate_limit  # noqa: S301 - our own bytes
    assert repr(rate_limit).startswith("RateLimit(requests=2000, per_seconds=3600")


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}/x@host:6379",
        f"redis://:{PASSWORD}?x@host:6379",
        f"redis://u:{PASSWORD}:more@host/0?password={PASSWORD}",
        f"redis://host/0?password={PASSWORD}&db=1",
        f"redis://host/0?PASSWORD={PASSWORD};db=1",
    ],
)
def test_a_password_in_a_malformed_url_is_blotted_whole(url: str) -> None:
    """A password holding a raw / or ?, or a second colon, never shows even in part."""
    blotted = blot_password(url)
    assert PASSWORD[:4] not in blotted
    assert PASSWORD[-4:] not in blotted
