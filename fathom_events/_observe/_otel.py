"""The OpenTelemetry bridge: each call a span, each attempt an HTTP client span, a histogram.

Imported only once the application has imported OpenTelemetry (see
``Observer.watch``), and used only once it has configured a tracer or a
meter provider. It reads the same records as the ``on_event`` callback:

* a call (``CallStarted`` .. ``CallFinished``) is a span named
  ``fathom_events.<operation>`` (``fathom_events.events.create``), current
  while the call runs, with ``fathom.site_id`` where the call has one; its
  status is ERROR, with ``error.type`` the error's class, when the call fails;
* each attempt (``RequestSent`` .. ``AnswerReceived``) is its child, a CLIENT
  span named after the method, with the attributes of OpenTelemetry's HTTP
  client conventions: ``http.request.method``, ``server.address``,
  ``server.port``, ``url.full``, ``http.request.resend_count`` on a resend,
  ``http.response.status_code``, and ``error.type`` (the status, as text, for
  a 4xx or 5xx; the error's class when no answer could be read), status ERROR
  then;
* waits and retries are events on the call's span (``fathom.wait``,
  ``fathom.retry``);
* each attempt's duration goes to the ``http.client.request.duration``
  histogram (seconds), with the conventions' attributes.

No attribute holds the token: URLs are the ones sent, which never carry it,
and errors appear by class name only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from opentelemetry import context, metrics, trace
from opentelemetry.environment_variables import (
    OTEL_PYTHON_METER_PROVIDER,
    OTEL_PYTHON_TRACER_PROVIDER,
)
from opentelemetry.metrics import _internal as metrics_globals
from opentelemetry.trace import SpanKind, Status, StatusCode

from fathom_events._version import __version__

from ._records import (
    AnswerReceived,
    CallFinished,
    CallRecord,
    CallStarted,
    RequestSent,
    RetryScheduled,
    Waited,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.util.types import AttributeValue

__all__ = ["CallSpans", "Telemetry", "configured"]

#: The instrumentation scope the spans and the histogram are made under.
SCOPE = "fathom_events"
#: The buckets OpenTelemetry's HTTP conventions advise for http.client.request.duration (s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

try:  # what get_meter_provider() gives until one is set; the API gives it no public name
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _UnsetMeters
except ImportError:  # pragma: no cover - an API without it: a tracer provider decides alone
    _UnsetMeters = None  # type: ignore[assignment, misc]

#: Whether the environment names a provider for the API to load when first asked
#: (read once: asking ``os.environ`` costs an exception per name absent).
_NAMED_BY_ENVIRONMENT = any(
    name in os.environ for name in (OTEL_PYTHON_TRACER_PROVIDER, OTEL_PYTHON_METER_PROVIDER)
)


def _none_set_publicly() -> bool:
    """No tracer or meter provider set, as the API's getters say (2.6 us a look here)."""
    unset_meters = _UnsetMeters is None or isinstance(metrics.get_meter_provider(), _UnsetMeters)
    return unset_meters and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _none_set_in_globals() -> bool:
    """No tracer or meter provider set: the API's globals, which its own proxies read (50 ns)."""
    return (
        trace._TRACER_PROVIDER is None  # noqa: SLF001
        and metrics_globals._METER_PROVIDER is None  # noqa: SLF001
    )


#: Asked once a call until a provider is set, so it must cost nothing: the globals where the
#: API has them (every version since 1.0), its getters otherwise.
none_set = (
    _none_set_in_globals
    if hasattr(trace, "_TRACER_PROVIDER") and hasattr(metrics_globals, "_METER_PROVIDER")
    else _none_set_publicly  # pragma: no cover - an API that moved its globals
)


def configured() -> Telemetry | None:
    """The bridge, if the application has set a tracer provider or a meter provider."""
    if none_set() and not _NAMED_BY_ENVIRONMENT:
        return None
    return Telemetry()


class Telemetry:
    """The tracer and the histogram of the process: one bridge, whichever client calls."""

    def __init__(self) -> None:
        # Through the API's globals: a provider set later still gets what is made here.
        self.tracer = trace.get_tracer(SCOPE, __version__)
        self.duration = metrics.get_meter(SCOPE, __version__).create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def follow(self, server: tuple[str, int]) -> CallSpans:
        """What makes the spans of one call to ``server`` (host, port), from its records."""
        return CallSpans(self, server)


class CallSpans:
    """The spans of one call, made and ended as its records come (in the call's own task)."""

    __slots__ = ("_attempt", "_measured", "_server", "_span", "_telemetry", "_token")

    def __init__(self, telemetry: Telemetry, server: tuple[str, int]) -> None:
        self._telemetry = telemetry
        self._server = server
        self._span: trace.Span = trace.INVALID_SPAN
        self._token: object = None
        self._attempt: trace.Span | None = None
        self._measured: dict[str, AttributeValue] = {}  # the attempt's histogram attributes

    def __call__(self, record: CallRecord) -> None:
        _READERS[type(record)](self, record)

    def _started(self, record: CallStarted) -> None:
        attributes: dict[str, AttributeValue] = {"fathom.operation": record.operation}
        if record.site_id is not None:
            attributes["fathom.site_id"] = record.site_id
        self._span = span = self._telemetry.tracer.start_span(
            f"fathom_events.{record.operation}", attributes=attributes
        )
        # Current while the call runs: its attempts (and any HTTP instrumentation below) are
        # its children. Detached by CallFinished, in the same task.
        self._token = context.attach(trace.set_span_in_context(span))

    def _waited(self, record: Waited) -> None:
        if self._span.is_recording():
            self._span.add_event(
                "fathom.wait",
                {
                    "fathom.wait.reason": record.reason,
                    "fathom.wait.seconds": record.seconds,
                    "fathom.attempt": record.attempt,
                },
            )

    def _sent(self, record: RequestSent) -> None:
        address, port = self._server
        self._measured = {
            "http.request.method": record.method,
            "server.address": address,
            "server.port": port,
        }
        attributes = {**self._measured, "url.full": record.url}
        if record.attempt > 1:
            attributes["http.request.resend_count"] = record.attempt - 1
        self._attempt = self._telemetry.tracer.start_span(
            record.method, kind=SpanKind.CLIENT, attributes=attributes
        )

    def _answered(self, record: AnswerReceived) -> None:
        attributes = self._measured
        if record.status is not None:
            attributes["http.response.status_code"] = record.status
        error_type = (
            str(record.status)
            if record.status is not None and record.status >= 400
            else record.error
        )
        if error_type is not None:
            attributes["error.type"] = error_type
        self._end_attempt(error_type, attributes)
        self._telemetry.duration.record(record.elapsed, attributes)

    def _end_attempt(self, error_type: str | None, attributes: dict[str, AttributeValue]) -> None:
        span, self._attempt = self._attempt, None
        if span is None:
            return
        if span.is_recording():
            span.set_attributes(attributes)
            if error_type is not None:
                span.set_status(Status(StatusCode.ERROR))
        span.end()

    def _retrying(self, record: RetryScheduled) -> None:
        if self._span.is_recording():
            self._span.add_event(
                "fathom.retry",
                {
                    "fathom.retry.reason": record.reason,
                    "fathom.retry.delay": record.delay,
                    "fathom.attempt": record.attempt,
                },
            )

    def _finished(self, record: CallFinished) -> None:
        try:
            if self._attempt is not None:  # cut off while its request was out
                self._end_attempt(record.error, {**self._measured, "error.type": str(record.error)})
            span = self._span
            if span.is_recording():
                span.set_attributes(
                    {
                        "fathom.attempts": record.attempts,
                        "fathom.may_have_been_applied": record.may_have_been_applied,
                    }
                )
                if record.error is not None:
                    span.set_attribute("error.type", record.error)
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
        finally:  # whatever failed above, the caller's context is left as it was
            if self._token is not None:
                context.detach(self._token)  # type: ignore[arg-type]
                self._token = None


_READERS: dict[type[Any], Callable[[CallSpans, Any], None]] = {
    CallStarted: CallSpans._started,  # noqa: SLF001
    Waited: CallSpans._waited,  # noqa: SLF001
    RequestSent: CallSpans._sent,  # noqa: SLF001
    AnswerReceived: CallSpans._answered,  # noqa: SLF001
    RetryScheduled: CallSpans._retrying,  # noqa: SLF001
    CallFinished: CallSpans._finished,  # noqa: SLF001
}
