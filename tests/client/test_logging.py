"""FATHOM_EVENTS_LOG: the library's records on stderr, one line each, never the token."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator

import pytest

from fathom_events import AsyncClient, BadRequestError, Client
from fathom_events import _logs as logs
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import Face, face_fixture
from tests.support.helpers import SITE, TOKEN

__all__ = ["face_fixture"]

ENV = "FATHOM_EVENTS_LOG"
URL = "https://api.example.test/v1"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) fathom_events")


@pytest.fixture(autouse=True)
def _unread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a process that has not read FATHOM_EVENTS_LOG; ends as it began."""
    logger = logging.getLogger("fathom_events")
    handlers, level = list(logger.handlers), logger.level
    monkeypatch.setattr(logs, "_read", False)
    monkeypatch.delenv(ENV, raising=False)
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def was_read() -> bool:
    """Whether this process has read FATHOM_EVENTS_LOG."""
    return logs._read


class Logged:
    """FATHOM_EVENTS_LOG set for the test, and the lines our handler wrote to stderr."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def switch(self, value: str) -> None:
        self._monkeypatch.setenv(ENV, value)

    def lines(self) -> list[str]:
        return [line for line in self._capsys.readouterr().err.splitlines() if LINE.match(line)]


@pytest.fixture(name="logged")
def _logged(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Logged:
    return Logged(monkeypatch, capsys)


async def test_debug_writes_each_request_and_answer_on_one_line(
    face: Face, fake: FakeFathom, logged: Logged
) -> None:
    """FATHOM_EVENTS_LOG=debug: a line per request and answer (method, URL, status, time)."""
    logged.switch("debug")
    async with face.opened(fake) as opened:
        await opened.events.create(SITE, "Logged\nacross lines")
        base = opened.base_url
    lines = logged.lines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(f" DEBUG fathom_events.http: request POST {base}/sites/{SITE}/events")
    assert re.search(
        rf" DEBUG fathom_events\.http: answer 200 to POST {re.escape(base)}/sites/{SITE}/events"
        r" in \d+\.\d{3} s$",
        lines[1],
    )
    assert "Logged" not in "".join(lines)  # no body, no header
    assert TOKEN not in "".join(lines)


async def test_info_shows_retries_but_not_each_request(
    face: Face, fake: FakeFathom, logged: Logged
) -> None:
    """FATHOM_EVENTS_LOG=info: a retry's WARNING is written; request lines are not."""
    logged.switch("INFO ")
    fake.inject(Fault.respond(503, headers={"Retry-After": "0"}))
    async with face.opened(fake) as opened:
        await opened.events.list(SITE)
    lines = logged.lines()
    assert len(lines) == 1, lines
    assert " WARNING fathom_events: retrying GET " in lines[0]


async def test_a_failure_is_one_line_too(face: Face, fake: FakeFathom, logged: Logged) -> None:
    """An attempt that gets no answer is logged with its error's class, on one line."""
    logged.switch("debug")
    fake.inject(Fault.disconnect())
    async with face.opened(fake, retry=None) as opened:
        await opened.events.list(SITE)
    lines = logged.lines()
    assert any(" no answer to GET " in line and "APIConnectionError" in line for line in lines)
    assert all("\n" not in line for line in lines)


def test_an_unknown_value_is_ignored_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """FATHOM_EVENTS_LOG=verbose warns once, when the first client is made, and adds nothing."""
    monkeypatch.setenv(ENV, "verbose")
    logger = logging.getLogger("fathom_events")
    before = list(logger.handlers)
    with pytest.warns(RuntimeWarning, match="FATHOM_EVENTS_LOG='verbose' is not 'info' or 'debug'"):
        AsyncClient(TOKEN, URL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncClient(TOKEN, URL)
    assert logger.handlers == before


def test_it_is_read_once_when_the_first_client_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset when the first client is made: setting it later changes nothing; nor importing."""
    import fathom_events  # noqa: PLC0415 - importing again must not read it

    logger = logging.getLogger("fathom_events")
    before = list(logger.handlers)
    monkeypatch.setenv(ENV, "debug")
    assert fathom_events.AsyncClient is AsyncClient
    assert not was_read()
    monkeypatch.delenv(ENV)
    with Client(TOKEN, URL):
        pass
    assert was_read()
    monkeypatch.setenv(ENV, "debug")
    AsyncClient(TOKEN, URL)
    assert logger.handlers == before


async def test_no_record_holds_the_token(
    face: Face, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At DEBUG, with a server that echoes the token in its errors, no record shows it."""
    monkeypatch.setenv(ENV, "debug")
    caplog.set_level(logging.DEBUG, logger="fathom_events")
    fake = FakeFathom()
    echo = {"error": f"bad token {TOKEN}", "token": TOKEN}
    fake.inject(Fault.respond(503, json=echo, headers={"Retry-After": "0"}), times=2)
    fake.inject(Fault.respond(400, json=echo))
    async with face.opened(fake) as opened:
        with pytest.raises(BadRequestError, match="bad token"):
            await opened.events.list(SITE)
    assert len(caplog.records) >= 6
    handler = logs.stderr_handler()
    for record in caplog.records:
        assert TOKEN not in handler.format(record)
        assert TOKEN not in record.getMessage()


def test_the_format_keeps_an_exception_on_the_same_line() -> None:
    """A record with an exception is one line: the exception's class and words at its end."""
    error = ValueError("first line\nsecond line")
    record = logging.LogRecord("fathom_events", logging.DEBUG, __file__, 1, "failed", (), None)
    record.exc_info = (type(error), error, None)
    text = logs.stderr_handler().format(record)
    assert "\n" not in text
    assert text.endswith("DEBUG fathom_events: failed (ValueError: first line second line)")
