"""The documented examples under examples/ run, each with its framework, against FakeFathom.

``examples/fastapi_traced.py`` needs FastAPI, which the test extra installs.
"""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, FakeTime
from tests.support.otel import Otel
from tests.support.otel import _otel as otel_fixture  # noqa: F401 - `otel`
from tests.support.readme import point_at_the_fake

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The caller's trace, as a W3C traceparent header: version, trace id, parent span id, sampled.
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


def test_every_example_is_run_here() -> None:
    """Each file under examples/ has its test in this module."""
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == ["fastapi_traced.py"]


def test_the_fastapi_app_is_traced_end_to_end(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeFathom,
    thread_url: str,
    fake_time: FakeTime,
    otel: Otel,
) -> None:
    """A request carrying a traceparent: FastAPI's SERVER span goes on with that trace, the
    client's call is inside it, and the HTTP attempt to Fathom is the call's child."""
    with warnings.catch_warnings():  # see test_recipes.py: Starlette's test client on 3.10
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", Warning)
        from starlette.testclient import TestClient  # noqa: PLC0415

    point_at_the_fake(monkeypatch, thread_url, fake_time)
    fake.add_event(SITE, "Signed up")
    names: dict[str, Any] = runpy.run_path(str(EXAMPLES / "fastapi_traced.py"), run_name="example")
    with TestClient(names["app"]) as http:
        answer = http.get(f"/sites/{SITE}/events", headers={"traceparent": TRACEPARENT})
    assert answer.json() == ["Signed up"]

    spans = {span.context.span_id: span for span in otel.spans() if span.context is not None}
    (attempt,) = otel.attempts()
    chain = [attempt]  # the attempt, its parent, and so on up to the caller's span
    while (parent := chain[-1].parent) is not None and parent.span_id in spans:
        chain.append(spans[parent.span_id])
    assert chain[-1].parent is not None
    assert chain[-1].parent.span_id == PARENT_ID  # the caller's, from the traceparent
    assert {span.context.trace_id for span in chain if span.context} == {TRACE_ID}
    assert chain[1].name == "fathom_events.events.list"
    assert chain[-1].kind is SpanKind.SERVER
    assert chain[-1].name == "GET /sites/{site_id}/events"
    assert (attempt.attributes or {})["url.full"] == f"{thread_url}/sites/{SITE}/events"
