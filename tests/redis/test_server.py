"""The suite's own redis-server: started on loopback, empty for each test, stopped afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.redis import REQUIRE_REDIS_ENV, RedisServer


def test_the_server_answers_and_starts_each_test_empty(
    redis_server: RedisServer, redis_url: str
) -> None:
    """The session's server answers PING on loopback and holds no key when a test begins."""
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.inspector.ping()
    assert redis_server.everything() == {}
    redis_server.inspector.set("left-behind", "1")  # the next test must not see it


def test_a_server_of_its_own_stops_when_asked(start_redis: Callable[..., RedisServer]) -> None:
    """start_redis gives a server with its own port and password, and stop() ends its process."""
    server = start_redis(password="pw-of-this-test")
    assert server.url.startswith("redis://:pw-of-this-test@127.0.0.1:")
    assert server.inspector.ping()
    server.stop()
    assert server.process.poll() is not None


def test_ci_fails_rather_than_skips_the_redis_tests() -> None:
    """.ci/run installs redis-server if missing and sets the variable; nox passes it on."""
    root = Path(__file__).parents[2]
    ci = (root / ".ci" / "run").read_text()
    assert "apt-get install -y -qq redis-server" in ci
    assert f"export {REQUIRE_REDIS_ENV}=1" in ci.splitlines()
    assert ci.index(f"export {REQUIRE_REDIS_ENV}=1") < ci.index("python -m coverage run")
    noxfile = (root / "noxfile.py").read_text()
    assert f'PASSED_ENV = ("{REQUIRE_REDIS_ENV}",)' in noxfile
