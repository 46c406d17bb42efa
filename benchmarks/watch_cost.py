"""What watching a client costs: N sequential GETs in one set-up, counted under valgrind.

Wall-clock timings on a shared two-core machine are noise at this scale, so this
script is run under cachegrind, twice per set-up (N and a larger N), and the
difference in instructions divided by the difference in GETs is the cost of one
GET (start-up and the warm-up cancel out)::

    python -m benchmarks.server --port 8765 --sites 2 &
    for n in 200 1200; do
      valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        python -m benchmarks.watch_cost http://127.0.0.1:8765/v1 $n callback
    done

The set-ups (the last argument):

* ``none``: no ``on_event``, OpenTelemetry hidden (as without the ``otel`` extra);
  the code before the hooks is measured the same way with ``none`` on its tree;
* ``installed``: no ``on_event``, OpenTelemetry installed but never imported;
* ``callback``: an ``on_event`` that does nothing, OpenTelemetry hidden;
* ``no-provider``: OpenTelemetry imported by the application, no provider set;
* ``sdk``: the SDK's tracer provider (an in-memory exporter behind a simple
  processor) and meter provider (an in-memory reader) set.
"""

from __future__ import annotations

import asyncio
import sys

from . import dataset

SETUPS = ("none", "installed", "callback", "no-provider", "sdk")
WARM_UP = 50


class _HideOpenTelemetry:
    """A finder that makes OpenTelemetry unimportable, as it is without the otel extra."""

    @staticmethod
    def find_spec(name: str, *_: object) -> None:
        if name.partition(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(name)


def _configure_sdk() -> None:
    from opentelemetry import metrics, trace  # noqa: PLC0415
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


async def _gets(base_url: str, count: int, setup: str) -> None:
    from fathom_events import AsyncClient  # noqa: PLC0415 - after OpenTelemetry is set up

    options: dict[str, object] = {}
    if setup == "callback":
        options["on_event"] = lambda _record: None
    site = dataset.site_id(1)
    event = dataset.event_id(site, 0)
    async with AsyncClient(dataset.TOKEN, base_url, **options) as client:  # type: ignore[arg-type]
        for _ in range(WARM_UP + count):
            await client.events.get(site, event)


def main(argv: list[str]) -> None:
    """``python -m benchmarks.watch_cost BASE_URL COUNT SETUP``."""
    base_url, count, setup = argv[0], int(argv[1]), argv[2]
    if setup not in SETUPS:
        raise SystemExit(f"the set-up is one of {', '.join(SETUPS)}; got {setup!r}")
    if setup in {"none", "callback"}:
        sys.meta_path.insert(0, _HideOpenTelemetry)
    elif setup == "no-provider":
        import opentelemetry.metrics  # noqa: PLC0415
        import opentelemetry.trace  # noqa: F401, PLC0415
    elif setup == "sdk":
        _configure_sdk()
    asyncio.run(_gets(base_url, count, setup))


if __name__ == "__main__":
    main(sys.argv[1:])
