"""OpenTelemetry configured for one test: the real SDK, its in-memory span exporter and reader.

An application sets its tracer and meter providers once per process. A test sets
them for itself and puts the API's globals back when it ends, as OpenTelemetry's
own test utilities do (``reset_trace_globals``), so that every other test runs
with OpenTelemetry imported but not configured. The client's bridge, found once
per process, is forgotten before and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_globals
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fathom_events._observe._observer import _Found


@attrs.frozen
class Otel:
    """What a test configured: the spans ended so far, the metrics read, the tracer."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def spans(self) -> list[ReadableSpan]:
        """Every span ended so far, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def calls(self) -> list[ReadableSpan]:
        """The spans of the library's calls (``fathom_events.*``), in the order they ended."""
        return [span for span in self.spans() if span.name.startswith("fathom_events.")]

    def attempts(self) -> list[ReadableSpan]:
        """The HTTP client spans, one per attempt, in the order they ended."""
        return [span for span in self.spans() if span.kind is SpanKind.CLIENT]

    def durations(self) -> dict[tuple[tuple[str, Any], ...], HistogramDataPoint]:
        """The ``http.client.request.duration`` points, by their attributes (sorted pairs)."""
        data = self.reader.get_metrics_data()
        points: dict[tuple[tuple[str, Any], ...], HistogramDataPoint] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "http.client.request.duration":
                        assert metric.unit == "s"
                        for point in metric.data.data_points:
                            assert isinstance(point, HistogramDataPoint)
                            points[tuple(sorted((point.attributes or {}).items()))] = point
        return points


@pytest.fixture(name="otel")
def _otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    """A tracer provider and a meter provider of the SDK, set for this test only."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", tracer_provider)
    monkeypatch.setattr(metrics_globals, "_METER_PROVIDER", meter_provider)
    monkeypatch.setattr(_Found, "telemetry", None)
    monkeypatch.setattr(_Found, "usable", True)
    monkeypatch.setattr(_Found, "none_set", None)
    yield Otel(exporter, reader, tracer_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()
