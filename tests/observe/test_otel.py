"""OpenTelemetry: each call a span, each attempt an HTTP client span, through the real SDK.

Each test configures the SDK's tracer and meter providers for itself (the ``otel``
fixture: an in-memory span exporter and metric reader), serves a FakeFathom over
real HTTP and drives either face. Spans are read as an exporter would see them.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from fathom_events import (
    APIConnectionError,
    AsyncClient,
    BadRequestError,
    CallFinished,
    CallRecord,
    NotFoundError,
    RetryPolicy,
)
from fathom_events._observe import _otel
from fathom_events._observe._observer import _Found
from fathom_events._protocol import build_list
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import ASYNC, Face, face_fixture  # noqa: F401 - `face`: both faces
from tests.support.helpers import SITE, TOKEN
from tests.support.otel import Otel
from tests.support.otel import _otel as otel_fixture  # noqa: F401 - `otel`
from tests.support.secrecy import assert_records_token_free

pytestmark = pytest.mark.usefixtures("every_error_token_free")


def server_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether ``span``'s parent is ``parent``, in the same trace."""
    assert span.parent is not None
    assert span.context is not None
    assert parent.context is not None
    return (span.parent.span_id, span.context.trace_id) == (
        parent.context.span_id,
        parent.context.trace_id,
    )


async def test_a_call_is_a_span_with_an_http_attempt_as_its_child(
    face: Face, fake: FakeFathom, otel: Otel
) -> None:
    """events.create: a span named after it, with the site; one CLIENT child per the conventions."""
    async with face.opened(fake) as client:
        await client.events.create(SITE, "Signed up")
    (call,) = otel.calls()
    (attempt,) = otel.attempts()
    address, port = server_of(client.base_url)
    assert call.name == "fathom_events.events.create"
    assert call.kind is SpanKind.INTERNAL
    assert call.attributes is not None
    assert call.attributes["fathom.site_id"] == SITE
    assert call.attributes["fathom.attempts"] == 1
    assert call.status.status_code is StatusCode.UNSET
    assert child_of(attempt, call)
    assert attempt.name == "POST"
    assert dict(attempt.attributes or {}) == {
        "http.request.method": "POST",
        "server.address": address,
        "server.port": port,
        "url.full": f"{client.base_url}/sites/{SITE}/events",
        "http.response.status_code": 200,
    }
    assert attempt.status.status_code is StatusCode.UNSET


async def test_a_429_then_success_is_two_attempts_and_a_retry_event(
    face: Face, fake: FakeFathom, otel: Otel
) -> None:
    """A 429 then a 200: two attempt spans (the second a resend), a retry event, no error."""
    fake.inject(Fault.rate_limited("2"))
    async with face.opened(fake) as client:
        await client.events.list(SITE)
    (call,) = otel.calls()
    first, second = otel.attempts()
    assert child_of(first, call)
    assert child_of(second, call)
    assert first.attributes is not None
    assert second.attributes is not None
    assert (first.attributes["http.response.status_code"], first.attributes["error.type"]) == (
        429,
        "429",
    )
    assert "http.request.resend_count" not in first.attributes
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    (retry,) = [event for event in call.events if event.name == "fathom.retry"]
    assert dict(retry.attributes or {}) == {
        "fathom.retry.reason": "429 rate or concurrency limit",
        "fathom.retry.delay": 2.0,
        "fathom.attempt": 2,
    }
    assert call.status.status_code is StatusCode.UNSET
    assert (call.attributes or {})["fathom.attempts"] == 2


FAILURES = {
    "404": (Fault.respond(404, json={"error": "no"}), NotFoundError, "404", 404),
    "drop": (Fault.disconnect(), APIConnectionError, "APIConnectionError", None),
}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
async def test_a_failed_call_sets_the_span_status_to_error(
    face: Face,
    fake: FakeFathom,
    otel: Otel,
    failure: tuple[Fault, type[Exception], str, int | None],
) -> None:
    """A call that fails: its span and its attempt's are ERROR, with error.type on each."""
    fault, raised, error_type, status = failure
    fake.inject(fault)
    async with face.opened(fake, retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(raised):
            await client.events.list(SITE)
    (call,) = otel.calls()
    (attempt,) = otel.attempts()
    assert call.status.status_code is StatusCode.ERROR
    assert (call.attributes or {})["error.type"] == raised.__name__
    assert attempt.status.status_code is StatusCode.ERROR
    assert (attempt.attributes or {})["error.type"] == error_type
    assert (attempt.attributes or {}).get("http.response.status_code") == status


async def test_waits_are_events_on_the_calls_span(fake: FakeFathom, otel: Otel) -> None:
    """A wait for the cool-down is an event on the call's span, with its reason and length."""
    async with ASYNC.opened(fake) as opened:
        client = opened.client
        assert isinstance(client, AsyncClient)
        await client._limits.cool_down(30)
        await client.events.list(SITE)
    (call,) = otel.calls()
    (wait,) = call.events
    assert wait.name == "fathom.wait"
    assert dict(wait.attributes or {}) == {
        "fathom.wait.reason": "cool_down",
        "fathom.wait.seconds": 30.0,
        "fathom.attempt": 1,
    }


async def test_the_request_duration_is_a_histogram(
    face: Face, fake: FakeFathom, otel: Otel
) -> None:
    """http.client.request.duration: a point per kind of answer, in seconds, with its attributes."""
    fake.inject(Fault.rate_limited("1"))
    async with face.opened(fake) as client:
        await client.events.list(SITE)
        await client.events.list(SITE)
    address, port = server_of(client.base_url)
    common = {"http.request.method": "GET", "server.address": address, "server.port": port}
    points = otel.durations()
    ok = tuple(sorted({**common, "http.response.status_code": 200}.items()))
    refused = tuple(
        sorted({**common, "http.response.status_code": 429, "error.type": "429"}.items())
    )
    assert set(points) == {ok, refused}
    assert (points[ok].count, points[refused].count) == (2, 1)
    assert points[ok].explicit_bounds[:3] == (0.005, 0.01, 0.025)


async def test_a_calls_span_is_a_child_of_the_callers(
    face: Face, fake: FakeFathom, otel: Otel
) -> None:
    """A call made inside the application's span is its child, on both faces (the blocking one
    runs the call in its own thread)."""
    tracer = otel.tracer_provider.get_tracer("the application")
    async with face.opened(fake) as client:
        with tracer.start_as_current_span("handle a request"):
            await client.run(lambda c: c.events.list(SITE))
        assert trace.get_current_span() is trace.INVALID_SPAN  # the call left no span current
    (call,) = otel.calls()
    (handler,) = [span for span in otel.spans() if span.name == "handle a request"]
    assert child_of(call, handler)


async def test_bulk_work_is_a_span_per_request(face: Face, fake: FakeFathom, otel: Otel) -> None:
    """events.pull over two sites: one call span per listing, each with its site."""
    fake.add_site("WXYZ")
    async with face.opened(fake) as client:
        await client.run(lambda c: c.events.pull([SITE, "WXYZ"]))
    calls = otel.calls()
    assert {span.name for span in calls} == {"fathom_events.events.list"}
    assert {(span.attributes or {})["fathom.site_id"] for span in calls} == {SITE, "WXYZ"}


async def test_the_callback_and_opentelemetry_see_the_same_call(
    face: Face, fake: FakeFathom, otel: Otel
) -> None:
    """With both, the callback gets its records and OpenTelemetry its spans."""
    seen: list[CallRecord] = []
    async with face.opened(fake, on_event=seen.append) as client:
        await client.events.list(SITE)
    assert len(otel.calls()) == 1
    assert isinstance(seen[-1], CallFinished)


async def test_a_failing_bridge_changes_nothing(
    fake: FakeFathom, otel: Otel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bridge that raises (an exporter gone wrong) is logged once; the call succeeds."""

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("exporter down")

    monkeypatch.setattr(otel.tracer_provider.get_tracer("x").__class__, "start_span", broken)
    async with fake.serve() as url, AsyncClient(TOKEN, url) as client:
        assert (await client.events.list(SITE)).data == []
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(" at ")[0] for r in warned] == [
        "the OpenTelemetry bridge raised RuntimeError"
    ]


async def test_the_token_is_in_no_span_metric_or_log(
    face: Face, fake: FakeFathom, otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever happens (retries, an answer quoting the token, a callback quoting it), no span,
    attribute, event, metric or log record holds the token."""
    caplog.set_level(logging.DEBUG)
    seen: list[CallRecord] = []

    def quoting(record: CallRecord) -> None:
        seen.append(record)
        raise ValueError(f"the token is {TOKEN}")

    fake.inject(Fault.rate_limited("1"))
    fake.inject(Fault.respond(400, json={"error": f"Bearer {TOKEN} may not"}), method="POST")
    async with face.opened(fake, on_event=quoting) as client:
        await client.events.list(SITE)
        with pytest.raises(BadRequestError):
            await client.events.create(SITE, "Signed up")
    exported = [span.to_json() for span in otel.spans()]
    assert len(exported) == 5  # two calls, three attempts
    assert all(TOKEN not in text for text in exported)
    assert TOKEN not in repr(otel.reader.get_metrics_data())
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert_records_token_free(seen, TOKEN)


async def test_without_a_provider_no_call_is_watched(fake: FakeFathom) -> None:
    """OpenTelemetry imported but not configured: no bridge, and a call without on_event has
    no watch (nothing is made per call)."""
    async with fake.serve() as url, AsyncClient(TOKEN, url) as client:
        assert (await client.events.list(SITE)).data == []
        observer = client._observer
        assert observer is not None  # OpenTelemetry is installed here
        assert observer.watch(build_list(SITE), url) is None
    assert _Found.telemetry is None


async def test_an_unusable_opentelemetry_is_said_once_and_left_alone(
    fake: FakeFathom,
    otel: Otel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An OpenTelemetry the bridge cannot use (too old an API, say) is logged once; the calls
    succeed untraced, and it is not tried again."""
    tried = 0

    def too_old() -> None:
        nonlocal tried
        tried += 1
        raise TypeError("create_histogram() got an unexpected keyword argument")

    monkeypatch.setattr(_otel, "Telemetry", too_old)
    async with fake.serve() as url, AsyncClient(TOKEN, url) as client:
        for _ in range(3):
            assert (await client.events.list(SITE)).data == []
    assert tried == 1
    assert otel.spans() == []
    (warned,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warned.getMessage().startswith("OpenTelemetry cannot be used (TypeError at ")


async def test_a_bridge_failing_as_a_span_ends_leaves_no_span_current(
    fake: FakeFathom, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans that fail to end (an exporter gone wrong) still leave the caller's context as it
    was: the call's span is not left current."""
    span_class = type(otel.tracer_provider.get_tracer("x").start_span("probe"))

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("exporter down")

    monkeypatch.setattr(span_class, "end", broken)
    async with fake.serve() as url, AsyncClient(TOKEN, url) as client:
        assert (await client.events.list(SITE)).data == []
        assert trace.get_current_span() is trace.INVALID_SPAN
