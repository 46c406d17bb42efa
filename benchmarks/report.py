"""Turning runs into medians, ratios, the targets' verdicts, a markdown table and JSON."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import shared_budget
from .registry import FLOOR_KEY

if TYPE_CHECKING:
    from .registry import ClientSpec
    from .workloads import Workload

MEMORY_GROWTH_LIMIT_MIB = 5.0
W6_BOUND_LIMIT = 1.15  # a bulk job's wall time, at most this times its bound
_PACKAGES = ("aiohttp", "httpx", "requests", "orjson", "uvloop", "cattrs", "attrs", "anyio")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(*, server_cpu: int | None, client_cpu: int | None) -> dict[str, Any]:
    """The machine, the interpreter, the libraries and the pinning of one run."""
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in _PACKAGES},
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
    }


def _median(values: list[float]) -> float:
    return statistics.median(values)


def summarise(
    *,
    workloads: list[Workload],
    clients: list[ClientSpec],
    missing: dict[str, str | None],
    results: dict[tuple[str, str], list[dict[str, Any]]],
    settings: dict[str, Any],
    machine: dict[str, Any],
) -> dict[str, Any]:
    """Everything the table and the JSON file show, computed once."""
    rows: list[dict[str, Any]] = []
    peaks: dict[tuple[str, str], float] = {}
    for workload in workloads:
        bound = workload.bound()
        for spec in clients:
            runs = results.get((workload.name, spec.key), [])
            row: dict[str, Any] = {
                "workload": workload.name,
                "client": spec.key,
                "client_name": spec.name,
                "runs": runs,
                "not_installed": missing.get(spec.key),
            }
            if runs:
                rate = _median([run["requests"] / run["seconds"] for run in runs])
                peaks[workload.name, spec.key] = max(run["peak_rss_mib"] for run in runs)
                row["requests_per_second"] = rate
                row["peak_rss_mib"] = peaks[workload.name, spec.key]
                row["client_cpu"] = _median([run["cpu_seconds"] / run["seconds"] for run in runs])
                row["client_cpu_us_per_request"] = _median(
                    [1e6 * run["cpu_seconds"] / run["requests"] for run in runs]
                )
                server = [
                    run["server_cpu_per_request"] * run["requests"] / run["seconds"]
                    for run in runs
                    if "server_cpu_per_request" in run
                ]
                row["server_busy"] = _median(server) if server else None
                row["seconds"] = _median([run["seconds"] for run in runs])
                if bound:
                    row["bound_seconds"] = bound
                    row["times_bound"] = _median([run["seconds"] / bound for run in runs])
            rows.append(row)
    by_repeat = {
        (row["workload"], row["client"]): {
            run["repeat"]: run["requests"] / run["seconds"] for run in row["runs"]
        }
        for row in rows
    }
    for row in rows:
        row["ratio_to_floor"] = paired_ratio(by_repeat, row["workload"], row["client"], FLOOR_KEY)
    return {
        "machine": machine,
        "settings": settings,
        "workloads": [w.summary() for w in workloads],
        "clients": [
            {"key": spec.key, "name": spec.name, "not_installed": missing.get(spec.key)}
            for spec in clients
        ],
        "results": rows,
        "targets": targets(by_repeat, peaks, _times_bound(rows)),
    }


def _times_bound(rows: list[dict[str, Any]]) -> dict[str, float]:
    """W6's wall time over its bound, by client (median over repeats)."""
    return {row["client"]: row["times_bound"] for row in rows if "times_bound" in row}


def paired_ratio(
    by_repeat: dict[tuple[str, str], dict[int, float]], workload: str, client: str, other: str
) -> float | None:
    """The median, over the repeats both ran in, of ``client``'s rate over ``other``'s.

    Pairing runs of the same repeat (run moments apart) keeps a slow minute on a
    shared machine from weighing on one side of a ratio only.
    """
    mine, theirs = by_repeat.get((workload, client), {}), by_repeat.get((workload, other), {})
    ratios = [mine[repeat] / theirs[repeat] for repeat in mine if theirs.get(repeat)]
    return _median(ratios) if ratios else None


def targets(
    by_repeat: dict[tuple[str, str], dict[int, float]],
    peaks: dict[tuple[str, str], float],
    times_bound: dict[str, float],
) -> list[dict[str, Any]]:
    """The issue's targets, each judged for the plain install and with the speedups."""
    verdicts: list[dict[str, Any]] = []

    def judge(
        target: str, variant: str, value: float | None, goal: float, *, most: bool, unit: str = "x"
    ) -> None:
        met = None if value is None else (value <= goal if most else value >= goal)
        verdicts.append(
            {
                "target": target,
                "variant": variant,
                "value": value,
                "goal": goal,
                "met": met,
                "most": most,
                "unit": unit,
            }
        )

    for variant, suffix in (("plain", ""), ("speedups", "-speedups")):
        fathom_async, blocking = f"fathom-async{suffix}", f"fathom-blocking{suffix}"
        judge(
            "W2@32: AsyncClient / raw aiohttp",
            variant,
            paired_ratio(by_repeat, "W2@32", fathom_async, FLOOR_KEY),
            0.95,
            most=False,
        )
        judge(
            "W3: AsyncClient / raw aiohttp",
            variant,
            paired_ratio(by_repeat, "W3", fathom_async, FLOOR_KEY),
            0.93,
            most=False,
        )
        judge(  # issue 13, item 4 (the row above is the earlier issue's goal)
            "W3: AsyncClient / raw aiohttp (issue 13)",
            variant,
            paired_ratio(by_repeat, "W3", fathom_async, FLOOR_KEY),
            0.95,
            most=False,
        )
        judge(
            "W5: AsyncClient pull / raw aiohttp",
            variant,
            paired_ratio(by_repeat, "W5", fathom_async, FLOOR_KEY),
            0.85,
            most=False,
        )
        judge(
            "W2@64: AsyncClient / raw aiohttp",
            variant,
            paired_ratio(by_repeat, "W2@64", fathom_async, FLOOR_KEY),
            0.90,
            most=False,
        )
        judge(
            "W1: blocking Client / AsyncClient",
            variant,
            paired_ratio(by_repeat, "W1", blocking, fathom_async),
            0.75,
            most=False,
        )
        judge(
            "W1: blocking Client / requests",
            variant,
            paired_ratio(by_repeat, "W1", blocking, "requests"),
            1.5,
            most=False,
        )
        for client in (fathom_async, blocking):
            growth = None
            if ("MEM", client) in peaks and ("W3", client) in peaks:
                growth = peaks["MEM", client] - peaks["W3", client]
            judge(
                f"Memory: peak RSS growth, MEM over W3 ({client}), MiB",
                variant,
                growth,
                MEMORY_GROWTH_LIMIT_MIB,
                most=True,
                unit="MiB",
            )
        judge(
            "W6: AsyncClient wall time / bound",
            variant,
            times_bound.get(fathom_async),
            W6_BOUND_LIMIT,
            most=True,
        )
        judge(
            "W6: AsyncClient / hand-written aiohttp script",
            variant,
            paired_ratio(by_repeat, "W6", fathom_async, FLOOR_KEY),
            1.0,
            most=False,
        )
    return verdicts


def _number(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def markdown(summary: dict[str, Any]) -> str:
    """The results and the targets as markdown tables, with the machine above them."""
    machine, settings = summary["machine"], summary["settings"]
    packages = ", ".join(
        f"{name} {version}" for name, version in machine["packages"].items() if version
    )
    pinning = (
        f"server pinned to CPU {machine['server_cpu']}, clients to CPU {machine['client_cpu']}"
        if machine["client_cpu"] is not None
        else "no pinning"
    )
    how = "one process per client" if settings["batch"] else "a fresh process per measurement"
    malloc = {
        "fixed": "malloc thresholds fixed",
        "default": "glibc's default malloc thresholds",
    }.get(settings.get("malloc", ""), "malloc thresholds not recorded")
    lines = [
        (
            f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['system']},"
            f" {machine['python']}; {packages}."
        ),
        (
            f"Server: {settings['server']}; {pinning}; {how}; medians of"
            f" {settings['repeats']} interleaved repeat(s) (MEM: one run); max_in_flight"
            f" {settings['max_in_flight']}; {malloc}; {settings['seconds']} s in all."
        ),
        "",
        "| Workload | Client | req/s | x raw aiohttp | CPU us/req | peak RSS MiB | server busy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    titles = {w["name"]: w["title"] for w in summary["workloads"]}
    for row in summary["results"]:
        title = titles[row["workload"]]
        if row["not_installed"]:
            lines.append(
                f"| {title} | {row['client_name']} | not installed ({row['not_installed']})"
                " | - | - | - | - |"
            )
            continue
        if not row["runs"]:
            lines.append(f"| {title} | {row['client_name']} | not run | - | - | - | - |")
            continue
        lines.append(
            f"| {title} | {row['client_name']}"
            f" | {_number(row['requests_per_second'], ',.0f')}"
            f" | {_number(row['ratio_to_floor'], '.2f', 'x')}"
            f" | {_number(row['client_cpu_us_per_request'], ',.0f')}"
            f" | {_number(row['peak_rss_mib'], '.0f')}"
            f" | {_number(_percent(row['server_busy']), '.0f', '%')} |"
        )
    lines += [
        "",
        "| Target | Variant | Measured | Goal | Met |",
        "|---|---|---:|---:|---|",
    ]
    for verdict in summary["targets"]:
        ratio = verdict["unit"] == "x"
        suffix = "x" if ratio else ""
        goal = f"{'<=' if verdict['most'] else '>='} {verdict['goal']:g}{suffix}"
        met = {True: "yes", False: "**no**", None: "not measured"}[verdict["met"]]
        value = _number(verdict["value"], ".2f" if ratio else ".1f", suffix)
        lines.append(f"| {verdict['target']} | {verdict['variant']} | {value} | {goal} | {met} |")
    lines += _bulk_table(summary)
    if "shared_budget" in summary:
        lines += shared_budget.markdown(summary["shared_budget"])
    return "\n".join(lines)


def _bulk_table(summary: dict[str, Any]) -> list[str]:
    """W6's wall time against its bound and against the hand-written script, if it ran."""
    bulk = next((w for w in summary["workloads"] if w.get("bound_seconds")), None)
    rows = [r for r in summary["results"] if bulk and r["workload"] == bulk["name"] and r["runs"]]
    if bulk is None or not rows:
        return []
    lines = [
        "",
        (
            f"{bulk['title']}: {bulk['requests']:,} requests, so a bound of"
            f" {bulk['requests']:,} x {bulk['delay'] * 1000:g} ms / {bulk['in_flight']}"
            f" = {bulk['bound_seconds']:.3f} s. The raw aiohttp row is the hand-written"
            " script (a semaphore around each request)."
        ),
        "",
        "| Client | wall s (median) | x bound | x hand-written script (speed) |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {row['client_name']} | {row['seconds']:.3f} | {row['times_bound']:.2f}x"
        f" | {_number(row['ratio_to_floor'], '.2f', 'x')} |"
        for row in rows
    ]
    return lines


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction
