"""The chart of a run, drawn from its JSON: ``python -m benchmarks.chart RESULTS.json``.

    python -m benchmarks.chart benchmarks/results.json              # -> benchmarks/results.png
    python -m benchmarks.chart run.json -o chart.png --label "a short run"

The top panel shows each workload's speed relative to raw aiohttp, per
client (grouped bars: the median of the ratios paired within each repeat;
the whiskers span the lowest and the highest repeat). The next panel, when
the run has W6, shows W6's wall time per client against its bound
(``requests x delay / in flight``) and the goal (1.15x the bound); there the
raw aiohttp row is the hand-written script. The last, when the run has W7,
shows each W7 job's time as a multiple of the least time its budget allows,
with and without Redis, and its 429s. ``python -m benchmarks`` draws it
after every run (``--chart PATH``, ``--no-chart``).

Needs matplotlib (in the ``bench`` extra); the runner skips the chart, with a
note, where it is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .registry import FLOOR_KEY
from .report import W6_BOUND_LIMIT
from .shared_budget import GOAL as W7_GOAL

# One colour per client: fathom's blue (async) and orange (blocking), darker with
# the speedups; the rivals in muted tones.
COLOURS = {
    "aiohttp": "#7f7f7f",
    "fathom-async": "#6baed6",
    "fathom-async-speedups": "#08519c",
    "fathom-blocking": "#fdae6b",
    "fathom-blocking-speedups": "#d94801",
    "httpx": "#74c476",
    "requests": "#9e9ac8",
}
_DEFAULT_COLOUR = "#bdbdbd"
BULK_NAME = "W6"  # its raw aiohttp run is the hand-written script
_FAR = 3.0  # W6 bars past this many bounds are cut at the panel's edge


def _paired(rows: dict[tuple[str, str], dict[str, Any]], workload: str, client: str) -> list[float]:
    """``client``'s rate over raw aiohttp's, one ratio per repeat both ran in."""
    floor = rows.get((workload, FLOOR_KEY))
    mine = rows.get((workload, client))
    if floor is None or mine is None:
        return []
    theirs = {run["repeat"]: run["requests"] / run["seconds"] for run in floor["runs"]}
    return [
        (run["requests"] / run["seconds"]) / theirs[run["repeat"]]
        for run in mine["runs"]
        if theirs.get(run["repeat"])
    ]


def _subtitle(summary: dict[str, Any]) -> str:
    machine, settings = summary["machine"], summary["settings"]
    how = "one process per client" if settings["batch"] else "a process per measurement"
    return (
        f"{machine['cpu']}, {machine['cpus']} CPUs, {machine['python']};"
        f" {settings['server']} server; {how}; {settings['repeats']} interleaved repeat(s)"
    )


def draw(summary: dict[str, Any], path: Path, *, label: str | None = None) -> Path:
    """Draw the chart of ``summary`` (the runner's JSON) as a PNG at ``path``."""
    import matplotlib as mpl  # noqa: PLC0415 - optional, and slow to import

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = {(row["workload"], row["client"]): row for row in summary["results"]}
    names = [w["name"] for w in summary["workloads"]]
    clients = [
        c
        for c in summary["clients"]
        if c["key"] != FLOOR_KEY and any(rows.get((w, c["key"]), {}).get("runs") for w in names)
    ]
    bulk = next((w for w in summary["workloads"] if w.get("bound_seconds")), None)
    bulk_rows = [
        rows[bulk["name"], c["key"]]
        for c in summary["clients"]
        if bulk and rows.get((bulk["name"], c["key"]), {}).get("runs")
    ]
    budget = summary.get("shared_budget")
    # The panels drawn, top to bottom, each with its height in inches.
    panels: list[tuple[float, Callable[[Any], None]]] = []
    if clients:
        room = 0.2 if label else 0.0
        panels.append((6.0, lambda axis: _ratios(axis, rows, names, clients, room=room)))
    if bulk is not None and bulk_rows:
        panels.append((3.8, lambda axis: _bulk(axis, bulk, bulk_rows)))
    if budget is not None:
        panels.append((1.2 + 0.35 * len(budget["jobs"]), lambda axis: _budget(axis, budget)))
    heights = [height for height, _ in panels]
    figure = plt.figure(figsize=(13, sum(heights)), layout="constrained")
    subfigures = figure.subfigures(len(panels), 1, height_ratios=heights, squeeze=False)
    axes = [subfigure[0].subplots() for subfigure in subfigures]
    for axis, (_, panel) in zip(axes, panels, strict=True):
        panel(axis)
    top = axes[0]
    figure.suptitle(
        f"fathom_events against raw aiohttp\n{_subtitle(summary)}",
        fontsize=12,
        x=0.01,
        ha="left",
    )
    if label:  # above the bars, where it cannot be missed
        top.text(
            0.5,
            0.97,
            label,
            transform=top.transAxes,
            fontsize=13,
            fontweight="bold",
            color="#b2182b",
            ha="center",
            va="top",
            bbox={"facecolor": "#fddbc7", "edgecolor": "#b2182b", "boxstyle": "round"},
            zorder=5,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _ratios(
    axis: Any,
    rows: dict[tuple[str, str], dict[str, Any]],
    names: list[str],
    clients: list[dict[str, Any]],
    *,
    room: float,
) -> None:
    """Grouped bars: per workload, each client's speed as a multiple of raw aiohttp's.

    ``room``: head room above the tallest whisker (for a label).
    """
    width = 0.8 / max(1, len(clients))
    tallest = 1.0
    for index, client in enumerate(clients):
        xs, medians, low, high = [], [], [], []
        for position, name in enumerate(names):
            row = rows.get((name, client["key"]))
            paired = _paired(rows, name, client["key"])
            if row is None or row.get("ratio_to_floor") is None or not paired:
                continue
            median = row["ratio_to_floor"]
            xs.append(position - 0.4 + width * (index + 0.5))
            medians.append(median)
            low.append(median - min(paired))
            high.append(max(paired) - median)
            tallest = max(tallest, *paired)
        if not xs:
            continue
        axis.bar(
            xs,
            medians,
            width * 0.92,
            yerr=[low, high],
            error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#333333"},
            color=COLOURS.get(client["key"], _DEFAULT_COLOUR),
            label=client["name"],
            zorder=2,
        )
        for x, median in zip(xs, medians, strict=True):
            axis.text(
                x,
                0.02,
                f"{median:.2f}",
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=7,
                color="white" if median > 0.3 else "#333333",
                zorder=3,
            )
    axis.axhline(1.0, color="#333333", linewidth=1.2, linestyle="--", zorder=1)
    axis.text(len(names) - 0.45, 1.0, " raw aiohttp = 1", va="center", fontsize=8)
    ticks = [f"{name}\n(vs script)" if name == BULK_NAME else name for name in names]
    axis.set_xticks(range(len(names)), ticks, fontsize=10)
    axis.set_xlim(-0.5, len(names) - 0.5)
    axis.set_ylim(0, max(1.25, tallest * 1.05) + room)
    axis.set_ylabel("speed relative to raw aiohttp (higher is faster)")
    axis.grid(axis="y", color="#dddddd", zorder=0)
    axis.set_axisbelow(True)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=len(clients), fontsize=9)
    axis.set_title(
        "Speed of each client relative to raw aiohttp (median of paired repeats;"
        " whiskers: lowest and highest repeat)",
        fontsize=10,
        loc="left",
    )


def _bulk(axis: Any, bulk: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """W6: each client's wall time against the bound and the goal."""
    bound = bulk["bound_seconds"]
    names = [
        "hand-written aiohttp script" if row["client"] == FLOOR_KEY else row["client_name"]
        for row in rows
    ]
    seconds = [row["seconds"] for row in rows]
    # A client far off the bound (httpx) would squash the others: its bar is cut
    # at the panel's edge, its label kept.
    edge = max([bound * W6_BOUND_LIMIT, *(v for v in seconds if v <= _FAR * bound)]) * 1.35
    ys = list(range(len(rows)))[::-1]
    axis.barh(
        ys,
        [min(value, edge) for value in seconds],
        0.7,
        color=[COLOURS.get(row["client"], _DEFAULT_COLOUR) for row in rows],
        zorder=2,
    )
    for y, value in zip(ys, seconds, strict=True):
        text = f" {_seconds(value)} s ({value / bound:.2f}x bound)"
        if value > edge:
            axis.text(edge, y, f"{text.strip()} \u2192 ", ha="right", va="center", fontsize=8)
        else:
            axis.text(value, y, text, va="center", fontsize=8)
    axis.axvline(bound, color="#1a9850", linewidth=1.5, zorder=3)
    axis.axvline(bound * W6_BOUND_LIMIT, color="#d73027", linewidth=1.2, linestyle="--", zorder=3)
    top = len(rows) - 0.45
    axis.text(bound, top, "bound ", ha="right", va="bottom", fontsize=8, color="#1a9850")
    axis.text(
        bound * W6_BOUND_LIMIT,
        top,
        f" goal: {W6_BOUND_LIMIT:g}x bound",
        ha="left",
        va="bottom",
        fontsize=8,
        color="#d73027",
    )
    axis.set_yticks(ys, names, fontsize=9)
    axis.set_ylim(-0.6, len(rows) - 0.1)
    axis.set_xlim(0, edge)
    axis.set_xlabel("wall time, seconds (median; lower is better)")
    axis.grid(axis="x", color="#dddddd", zorder=0)
    axis.set_axisbelow(True)
    axis.set_title(
        f"{bulk['title']}: bound = {bulk['requests']:,} requests x"
        f" {bulk['delay'] * 1000:g} ms / {bulk['in_flight']} = {_seconds(bound)} s",
        fontsize=10,
        loc="left",
    )


def _budget(axis: Any, section: dict[str, Any]) -> None:
    """W7: each job's time over the least its budget allows, in percent, with and without Redis."""
    jobs = [job for job in section["jobs"] if "not_run" not in job]
    names = [
        f"{job['processes']} processes, {'Redis' if job['redis'] else 'each its own budget'}"
        for job in jobs
    ]
    over = [100 * (job["times_least"] - 1) for job in jobs]
    goal = 100 * (W7_GOAL - 1)
    # A job far over (a tiny --quick run without Redis) is cut at the panel's edge.
    edge = max([goal, *(value for value in over if value <= 10 * goal)]) * 1.4
    ys = list(range(len(jobs)))[::-1]
    colours = ["#08519c" if job["redis"] else "#bdbdbd" for job in jobs]
    axis.barh(ys, [min(max(value, 0), edge) for value in over], 0.7, color=colours, zorder=2)
    for y, job, value in zip(ys, jobs, over, strict=True):
        text = f" +{value:.1f}% ({job['seconds']:.2f} s), {job['refused_429']:,} 429s"
        if value > edge:
            axis.text(edge, y, f"{text.strip()} \u2192 ", ha="right", va="center", fontsize=8)
        else:
            axis.text(max(value, 0), y, text, va="center", fontsize=8)
    axis.axvline(goal, color="#d73027", linewidth=1.2, linestyle="--", zorder=3)
    axis.text(
        goal,
        len(jobs) - 0.45,
        f" goal with Redis: +{goal:g}%, no 429",
        fontsize=8,
        color="#d73027",
        va="bottom",
    )
    axis.set_yticks(ys, names, fontsize=9)
    axis.set_ylim(-0.6, len(jobs) - 0.1)
    axis.set_xlim(0, edge)
    axis.set_xlabel(
        f"wall time over the least time the budget allows ({section['least_seconds']:g} s),"
        " percent (one run each; lower is better)"
    )
    axis.grid(axis="x", color="#dddddd", zorder=0)
    axis.set_axisbelow(True)
    axis.set_title(section["title"], fontsize=10, loc="left")


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3g}"


def draw_if_possible(summary: dict[str, Any], path: Path) -> str:
    """Draw the chart where matplotlib is installed; say what happened either way."""
    if importlib.util.find_spec("matplotlib") is None:
        return "No chart drawn: matplotlib is not installed (pip install -e '.[bench]')."
    return f"Chart drawn at {draw(summary, path)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chart",
        description="Draw the chart of a run from the JSON that python -m benchmarks wrote.",
    )
    parser.add_argument("results", type=Path, help="the run's JSON (e.g. benchmarks/results.json)")
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="the PNG to write (default: beside the JSON)"
    )
    parser.add_argument("--label", default=None, help="a note stamped on the chart, in red")
    args = parser.parse_args(argv)
    summary = json.loads(args.results.read_text())
    out = args.out or args.results.with_suffix(".png")
    print(f"Chart drawn at {draw(summary, out, label=args.label)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
