"""`--redis-url` and $FATHOM_EVENTS_REDIS_URL: the rate limit shared through Redis, as parsed.

What the shared budget does is tested against a real Redis in tests/redis; here
is only what the command line makes of the option: which commands take it, where
it comes from, what it refuses, and that the URL's password never shows.
"""

from __future__ import annotations

import pytest

from fathom_events._cli import main
from fathom_events._cli._app import _parse
from fathom_events._cli._text import REDIS_URL_ENV

PASSWORD = "hunter2-s3cret"
URL = f"redis://:{PASSWORD}@redis.example:6379/0"
OTHER_URL = "redis://redis.example:6380/1"
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
    """Each command that sends requests takes --redis-url, after the command or before it."""
    assert _parse([*command, "--redis-url", URL]).redis_url == URL
    assert _parse(["--redis-url", URL, *command]).redis_url == URL
    assert _parse(command).redis_url is None


def test_the_environment_gives_the_url_and_the_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """$FATHOM_EVENTS_REDIS_URL is the default; --redis-url wins over it; empty is unset."""
    monkeypatch.setenv(REDIS_URL_ENV, URL)
    assert _parse(["list", "S"]).redis_url == URL
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
    """A budget to share with no rate limit, or an empty URL: exit 2, one line, no password."""
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
