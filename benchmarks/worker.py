"""Measurements in a fresh process: ``python -m benchmarks.worker JOB_JSON``.

The process pins itself to the client CPU, hides orjson and uvloop unless the
job asks for the speedups (so the plain install is what runs), builds one
driver, and for each workload of the job plays a warm-up and then times one
play. It prints one JSON line: a list with, per workload, the seconds, the
requests, the client's CPU seconds and its peak RSS.

The runner gives each measurement a process of its own; with ``--batch`` one
process plays every workload in turn, and the peak RSS is reset between them
where Linux allows (``/proc/self/clear_refs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPEEDUPS = ("orjson", "uvloop")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def hide_speedups() -> None:
    """Make ``import orjson`` and ``import uvloop`` fail, as on a plain install."""
    for name in SPEEDUPS:
        sys.modules[name] = None  # type: ignore[assignment]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reset_peak_rss() -> bool:
    """Start a new peak-RSS measurement, where the OS allows it (Linux 4.0+)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """This process's peak resident set (since the last reset, on Linux), in MiB."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def settle_garbage() -> None:
    """Collect what start-up and the warm-up left, before the timed play, for every client.

    Importing a client's modules promotes thousands of objects, and the full
    collection they are owed lands wherever the tenth young collection after
    them falls: inside one client's timed play of a tenth of a second and not
    another's (15-25 ms of W5's 100 ms, measured). The collector stays on
    during the play, so what the play itself costs it is measured.
    """
    gc.collect()


@contextlib.contextmanager
def collector_time() -> Iterator[list[float]]:
    """The seconds each garbage collection took while the block ran (``gc.callbacks``)."""
    spent: list[float] = []
    started = [0.0]

    def clock(phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent.append(time.perf_counter() - started[0])

    gc.callbacks.append(clock)
    try:
        yield spent
    finally:
        gc.callbacks.remove(clock)


def run(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Play each of the job's workloads (warm-up, then timed) and measure it."""
    from .dataset import Dataset  # noqa: PLC0415 - after the speedups are hidden
    from .registry import CLIENTS  # noqa: PLC0415
    from .workloads import (  # noqa: PLC0415
        Workload,
        items_for,
        play_async,
        play_blocking,
        prepared,
    )

    client = CLIENTS[job["client"]]
    data = Dataset(**job["dataset"])
    workloads = [Workload.from_json(each) for each in job["workloads"]]
    results: list[dict[str, Any]] = []

    def measured(
        workload: Workload, seconds: float, cpu: float, seen: int, spent: list[float]
    ) -> None:
        expected = workload.expected_events()
        if seen != expected:
            raise AssertionError(
                f"{client.name} saw {seen} events in {workload.name}, not {expected}"
            )
        results.append(
            {
                "workload": workload.name,
                "seconds": seconds,
                "requests": workload.requests(),
                "cpu_seconds": cpu,
                "gc_seconds": sum(spent),
                "peak_rss_mib": peak_rss_mib(),
            }
        )

    if client.is_async:

        async def main() -> None:
            driver = client.make(job["base_url"], job["max_in_flight"])
            try:
                for workload in workloads:
                    if len(workloads) > 1:
                        reset_peak_rss()
                    warm = workload.warmup()
                    await play_async(driver, warm, prepared(driver, warm, items_for(warm, data)))
                    items = prepared(driver, workload, items_for(workload, data))
                    settle_garbage()
                    cpu, start = _cpu(), time.perf_counter()
                    with collector_time() as spent:
                        seen = await play_async(driver, workload, items)
                    measured(workload, time.perf_counter() - start, _cpu() - cpu, seen, spent)
            finally:
                await driver.aclose()

        asyncio.run(main())
    else:
        driver = client.make(job["base_url"], job["max_in_flight"])
        try:
            for workload in workloads:
                if len(workloads) > 1:
                    reset_peak_rss()
                warm = workload.warmup()
                play_blocking(driver, warm, prepared(driver, warm, items_for(warm, data)))
                items = prepared(driver, workload, items_for(workload, data))
                settle_garbage()
                cpu, start = _cpu(), time.perf_counter()
                with collector_time() as spent:
                    seen = play_blocking(driver, workload, items)
                measured(workload, time.perf_counter() - start, _cpu() - cpu, seen, spent)
        finally:
            driver.close()
    return results


def main() -> int:
    job = json.loads(sys.argv[1])
    if job.get("cpu") is not None:
        from .affinity import pin  # noqa: PLC0415

        pin(job["cpu"])
    if not job["speedups"]:
        hide_speedups()
    print(json.dumps(run(job)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
