"""A FastAPI app traced end to end with OpenTelemetry, calling Fathom through fathom-events.

One trace per request: the caller's trace (its ``traceparent`` header) goes on
in FastAPI's SERVER span for the request, the client's call
(``fathom_events.events.list``) is a span inside it, and each HTTP attempt to
Fathom (a CLIENT span) is the call's child. Neither FastAPI (0.142 and later)
nor fathom-events (with its ``otel`` extra) needs any code for it: both find
the tracer provider the application set at start-up.

Run it::

    pip install "fathom-events[otel]" "fastapi[standard]"
    export FATHOM_API_TOKEN=...
    python examples/fastapi_traced.py        # then: curl localhost:8000/sites/SITE/events

The spans print to the console. In production, send them to your collector
(``opentelemetry-exporter-otlp``'s ``OTLPSpanExporter`` in place of the console
exporter). With a FastAPI older than 0.142, add
``FastAPIInstrumentor.instrument_app(app)`` (``opentelemetry-instrumentation-fastapi``)
for the server spans. ``tests/docs/test_examples.py`` runs this app against
FakeFathom when FastAPI is installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from opentelemetry import trace

from fathom_events import AsyncClient


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, AsyncClient]]:
    """One client for the app's life (it reads FATHOM_API_TOKEN)."""
    async with AsyncClient() as fathom:
        yield {"fathom": fathom}  # request.state.fathom in every request


app = FastAPI(lifespan=lifespan)


@app.get("/sites/{site_id}/events")
async def events(site_id: str, request: Request) -> list[str]:
    """The names of a site's events: one call to Fathom, traced inside this request's span."""
    page = await request.state.fathom.events.list(site_id)
    return [event.name for event in page.data]


def configure_tracing() -> None:
    """What the application does once at start-up: a tracer provider that prints its spans."""
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - the SDK: the app's own
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
    )

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


if __name__ == "__main__":
    import uvicorn

    configure_tracing()
    uvicorn.run(app)
