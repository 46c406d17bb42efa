"""Decoding answers into types, against json.loads alone (what raw aiohttp code does)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks.micro.conftest import EVENT, PAGE
from fathom_events._protocol import Answer, decode
from fathom_events.types import Event, EventPage

orjson: Any
try:
    import orjson
except ImportError:  # pragma: no cover - the speedups are optional
    orjson = None


@pytest.mark.benchmark(group="decode a 100-event page")
def test_page_json_loads(benchmark: Any) -> None:
    """The floor: json.loads of the page, no types."""
    assert len(benchmark(json.loads, PAGE)["data"]) == 100


@pytest.mark.benchmark(group="decode a 100-event page")
@pytest.mark.skipif(orjson is None, reason="orjson is not installed")
def test_page_orjson_loads(benchmark: Any) -> None:
    """orjson.loads of the page, no types."""
    assert len(benchmark(orjson.loads, PAGE)["data"]) == 100


@pytest.mark.benchmark(group="decode a 100-event page")
def test_page_into_types(benchmark: Any) -> None:
    """The library's decode: JSON (orjson when installed), then an EventPage of Events."""
    answer = Answer(200, {}, PAGE)
    page = benchmark(decode, answer, EventPage, method="GET", url="u")
    assert len(page.data) == 100


@pytest.mark.benchmark(group="decode one event")
def test_event_json_loads(benchmark: Any) -> None:
    """The floor: json.loads of one event."""
    assert benchmark(json.loads, EVENT)["id"]


@pytest.mark.benchmark(group="decode one event")
def test_event_into_type(benchmark: Any) -> None:
    """The library's decode of one event."""
    answer = Answer(200, {}, EVENT)
    assert benchmark(decode, answer, Event, method="GET", url="u").id
