"""`--redis-url` and $FATHOM_EVENTS_REDIS_URL: the command line's rate limit shared through Redis.

Which commands take the option, where the URL comes from, what is refused
(exit 2, the password never shown), and, against the tests' real redis-server
and a port where none listens, that the budget is kept in Redis, or that the
command says once that it cannot be. What the shared budget itself does is
tested in tests/redis.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fathom_events import RateLimit, _redis_limiter
from fathom_events._cli import main
from fathom_events._cli._app import _parse
from fathom_events._cli._text import REDIS_URL_ENV
from fathom_events.testing import FakeFathom
from tests.support.redis import RedisServer, free_port

PASSWORD = "hunter2-s3cret"
URL = f"redis://:{PASSWORD}@redis.example:6379/0"
OTHER_URL = "redis://redis.example:6380/1"
TOKEN = "cli-budget-token"
# Every command that sends requests to the API, with the arguments it needs.
SENDING = [
    ["list", "S"],
    ["get", "S", "E"],
    ["create", "S", "N"],
    ["update", "S", "E", "--name", "N"],
    ["delete", "S", "E"],
    ["pull", "S"],
    ["sync", "sync.toml"],
    ["sites"],
    ["token"],
    ["export", "S"],
]


@pytest.fixture(autouse=True)
def _no_url_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)


@pytest.mark.parametrize("command", SENDING, ids=lambda command: command[0])
def test_every_command_that_sends_takes_redis_url(command: list[str]) -> None:
    """Each command that sends requests takes --redis-url, after or before it, into its limit."""
    shared = _parse([*command, "--redis-url", URL])
    assert shared.redis_url == URL
    assert shared.rate_limit == RateLimit(2000, 3600, redis_url=URL)
    assert _parse(["--redis-url", URL, *command, "--rate-limit", "60/6"]).rate_limit == RateLimit(
        60, 6, redis_url=URL
    )
    alone = _parse(command)
    assert (alone.redis_url, alone.rate_limit) == (None, RateLimit(2000, 3600))


def test_the_environment_gives_the_url_and_the_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """$FATHOM_EVENTS_REDIS_URL is the default; --redis-url wins over it; empty is unset."""
    monkeypatch.setenv(REDIS_URL_ENV, URL)
    assert _parse(["list", "S"]).rate_limit == RateLimit(2000, 3600, redis_url=URL)
    assert _parse(["list", "S", "--redis-url", OTHER_URL]).redis_url == OTHER_URL
    monkeypatch.setenv(REDIS_URL_ENV, "")
    assert _parse(["list", "S"]).redis_url is None


@pytest.mark.parametrize("command", [["demo"], ["fake-server"]])
def test_commands_that_do_not_call_the_api_refuse_redis_url(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`demo` and `fake-server` (no API of Fathom's) refuse --redis-url: exit 2, one line."""
    assert main(["--redis-url", URL, *command]) == 2
    err = capsys.readouterr().err
    assert err == f"fathom-events {command[0]}: --redis-url does not apply to {command[0]}\n"


def test_the_environment_is_not_read_by_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """$FATHOM_EVENTS_REDIS_URL does not make `demo` (an in-process fake) share a budget."""
    monkeypatch.setenv(REDIS_URL_ENV, URL)
    assert _parse(["demo"]).redis_url is None


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["list", "S", "--redis-url", URL, "--rate-limit", "off"],
            None,
            (
                "fathom-events list: --redis-url shares the rate limit through Redis, but"
                " --rate-limit off sets none: give --rate-limit N/SECONDS, or drop --redis-url"
            ),
        ),
        (
            ["--rate-limit", "off", "pull", "S"],
            URL,
            (
                "fathom-events pull: $FATHOM_EVENTS_REDIS_URL shares the rate limit through Redis,"
                " but --rate-limit off sets none: give --rate-limit N/SECONDS, or unset"
                " FATHOM_EVENTS_REDIS_URL"
            ),
        ),
        (
            ["list", "S", "--redis-url", f"http://user:{PASSWORD}@redis.example"],
            None,
            (
                "fathom-events list: --redis-url: must be a redis://, rediss:// or unix:// URL,"
                " such as redis://localhost:6379/0; got 'http://user:********@redis.example'"
            ),
        ),
        (
            ["sites"],
            f"redis://:{PASSWORD}@redis.example:99999",
            (
                "fathom-events sites: $FATHOM_EVENTS_REDIS_URL: must have a port from 1 to"
                " 65535 if any, got 'redis://:********@redis.example:99999'"
            ),
        ),
        (
            ["list", "S", "--redis-url", ""],
            None,
            (
                "fathom-events list: argument --redis-url: must not be empty (leave --redis-url"
                " out, and FATHOM_EVENTS_REDIS_URL unset, for a budget of this process's own)"
                " (see fathom-events list --help)"
            ),
        ),
    ],
)
def test_refusals_are_usage_errors_without_the_password(
    args: list[str],
    env: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A budget to share with no rate limit, a bad or empty URL: exit 2, one line, no password."""
    if env is not None:
        monkeypatch.setenv(REDIS_URL_ENV, env)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n"
    assert captured.out == ""


@pytest.mark.parametrize("command", [[], *SENDING], ids=lambda command: " ".join(command[:1]))
def test_help_names_the_option_and_never_the_url(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--help names --redis-url and its variable, and shows nothing of the variable's value."""
    monkeypatch.setenv(REDIS_URL_ENV, URL)
    assert main([*command[:1], "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--redis-url URL" in shown
    assert "$FATHOM_EVENTS_REDIS_URL" in shown
    assert "redis.example" not in shown
    assert PASSWORD not in shown


# -- against a real Redis, and one that is not there ---------------------------------------


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(1, 3)  # SITE1, three events
    return fake


@pytest.fixture(name="url")
def _url(fake: FakeFathom) -> Iterator[str]:
    with fake.serve_in_thread() as url:
        yield url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``main(args)`` with the tests' token: its exit code, stdout and stderr."""
    code = main([*args, "--token", TOKEN])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_budget_is_kept_in_redis(
    url: str, redis_url: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list --redis-url URL` takes its place in the budget in Redis, and lists as ever."""
    code, out, err = run(capsys, "list", "SITE1", "--base-url", url, "--redis-url", redis_url)
    assert (code, len(out.splitlines()), err) == (0, 3, "")
    places = [value for value in redis_server.everything().values() if isinstance(value, list)]
    assert [len(held) for held in places] == [1]


def test_without_redis_the_command_says_so_once_and_goes_on(
    fake: FakeFathom, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening at the URL: one warning on stderr (no password), and exit 0."""
    nowhere = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    code, out, err = run(capsys, "list", "SITE1", "--base-url", url, "--redis-url", nowhere)
    assert (code, len(out.splitlines()), len(fake.requests)) == (0, 3, 1)
    assert err.startswith(
        "fathom-events: warning: the shared rate budget in Redis"
        f" (redis://:********@127.0.0.1:{nowhere.rsplit(':', 1)[1]}) cannot be used: "
    )
    assert "this process keeps the budget (2000 per 3600s) by itself" in err
    assert err.count("\n") == 1
    assert PASSWORD not in err


def test_without_redis_py_the_command_says_what_to_install(
    fake: FakeFathom,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without the redis extra, --redis-url is a usage error naming the extra; nothing sent."""
    monkeypatch.setattr(_redis_limiter, "HAVE_REDIS", False)
    code, _, err = run(capsys, "list", "SITE1", "--base-url", url, "--redis-url", URL)
    assert code == 2
    assert err == (
        "fathom-events: --redis-url: a budget kept in Redis needs redis-py, which is not"
        " installed: pip install 'fathom-events[redis]'\n"
    )
    assert fake.requests == []
