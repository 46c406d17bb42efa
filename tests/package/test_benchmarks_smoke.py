"""The benchmark runner still runs end to end (tiny sizes; nothing here is timed)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.dataset import Dataset
from benchmarks.runner import serve
from benchmarks.watch_cost import SETUPS

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = (
    "aiohttp (raw)",
    "fathom async",
    "fathom async +speedups",
    "fathom blocking",
    "fathom blocking +speedups",
    "httpx async",
    "requests",
)
WORKLOADS = ("W1", "W2@32", "W2@64", "W3", "W4", "W5", "MEM", "W6")
ALWAYS_INSTALLED = {"aiohttp", "fathom-async", "fathom-blocking"}


HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", name="folder")
def _folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS`` from the repository's root; it must succeed."""
    finished = subprocess.run(  # noqa: S603 - our own module, with our own arguments
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished


@pytest.fixture(scope="module", name="finished")
def _finished(folder: Path) -> subprocess.CompletedProcess[str]:
    return run_module(
        "benchmarks",
        "--quick",
        "--json",
        str(folder / "results.json"),
        "--chart",
        str(folder / "chart.png"),
    )


@pytest.fixture(scope="module", name="run")
def _run(folder: Path, finished: subprocess.CompletedProcess[str]) -> tuple[str, dict[str, Any]]:
    return finished.stdout, json.loads((folder / "results.json").read_text())


def test_table_names_every_client_and_workload(run: tuple[str, dict[str, Any]]) -> None:
    """The printed table has a row for every client in every workload, and the targets."""
    table, summary = run
    titles = {w["name"]: w["title"] for w in summary["workloads"]}
    assert set(titles) == set(WORKLOADS)
    for title in titles.values():
        for client in CLIENTS:
            assert f"| {title} | {client} |" in table
    assert "| Target |" in table


def test_json_has_numbers_for_every_installed_client(run: tuple[str, dict[str, Any]]) -> None:
    """Every installed client has a rate and a ratio in every workload; others say why not."""
    _, summary = run
    rows = {(row["workload"], row["client"]): row for row in summary["results"]}
    assert len(rows) == len(WORKLOADS) * len(CLIENTS)
    for row in rows.values():
        if row["not_installed"]:
            assert row["client"] not in ALWAYS_INSTALLED
            assert not row["runs"]
        else:
            assert row["runs"]
            assert row["requests_per_second"] > 0
            assert row["ratio_to_floor"] > 0
            assert row["peak_rss_mib"] > 0
    assert summary["targets"]
    assert summary["machine"]["python"]


def test_w6_is_shown_against_its_bound(run: tuple[str, dict[str, Any]]) -> None:
    """W6 has a bound, each client's wall time over it, and its own table and targets."""
    table, summary = run
    bulk = next(w for w in summary["workloads"] if w["name"] == "W6")
    assert bulk["bound_seconds"] > 0
    assert bulk["bound_seconds"] == pytest.approx(
        bulk["requests"] * bulk["delay"] / bulk["in_flight"]
    )
    for row in summary["results"]:
        if row["workload"] == "W6" and row["runs"]:
            assert row["times_bound"] == pytest.approx(row["seconds"] / bulk["bound_seconds"])
    assert "The raw aiohttp row is the hand-written script" in table
    assert {t["target"] for t in summary["targets"]} >= {
        "W6: AsyncClient wall time / bound",
        "W6: AsyncClient / hand-written aiohttp script",
    }


def test_chart_is_drawn_or_its_absence_explained(
    folder: Path, finished: subprocess.CompletedProcess[str]
) -> None:
    """With matplotlib the run leaves a PNG; without it, a note says why there is none."""
    chart = folder / "chart.png"
    if HAS_MATPLOTLIB:
        assert chart.read_bytes().startswith(PNG_SIGNATURE)
        assert f"Chart drawn at {chart}" in finished.stderr
    else:
        assert not chart.exists()
        assert "No chart drawn: matplotlib is not installed" in finished.stderr


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is in the bench extra only")
def test_chart_redraws_from_the_json(folder: Path, run: tuple[str, dict[str, Any]]) -> None:
    """`python -m benchmarks.chart RESULTS.json -o PNG` draws a chart from a run's JSON."""
    out = folder / "again.png"
    run_module("benchmarks.chart", str(folder / "results.json"), "-o", str(out), "--label", "x")
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_every_process_runs_with_the_same_allocator_settings() -> None:
    """Server and clients run with glibc's malloc thresholds fixed, unless --malloc default."""
    from benchmarks import runner  # noqa: PLC0415 - the runner, not its command line

    fixed = runner.process_environment(runner.parse_args([]).malloc)
    assert fixed["MALLOC_MMAP_THRESHOLD_"] == str(1 << 20)
    assert fixed["MALLOC_TRIM_THRESHOLD_"] == str(8 << 20)
    default = runner.process_environment(runner.parse_args(["--malloc", "default"]).malloc)
    assert "MALLOC_MMAP_THRESHOLD_" not in default


def test_the_report_says_how_malloc_was_set(finished: subprocess.CompletedProcess[str]) -> None:
    """The run's report names the allocator setting it ran with."""
    assert "malloc thresholds fixed" in finished.stdout


@pytest.fixture(scope="module", name="lean_server")
def _lean_server() -> Iterator[str]:
    """The lean benchmark server with a few small sites: its base URL."""
    data = Dataset(sites=2, events_per_site=5, big_site_events=1, huge_site_events=1)
    with serve(data, "lean", None, "default") as server:
        yield server.base_url
    assert server.process.stdout is not None
    server.process.stdout.close()  # the runner leaves its pipe to the process's end


@pytest.mark.parametrize("setup", SETUPS)
def test_the_watching_cost_script_runs_in_each_set_up(lean_server: str, setup: str) -> None:
    """benchmarks/watch_cost.py makes its GETs in each set-up (nothing is counted here)."""
    run_module("benchmarks.watch_cost", lean_server, "3", setup)


def test_w7_jobs_are_shown_against_the_least_time(run: tuple[str, dict[str, Any]]) -> None:
    """W7 runs each N with and without Redis: 429s without it, none with it, timed by its least."""
    table, summary = run
    section = summary["shared_budget"]
    jobs = {(job["processes"], job["redis"]): job for job in section["jobs"]}
    assert set(jobs) == {(n, redis) for n in (2, 4, 8) for redis in (False, True)}
    settings = section["settings"]
    assert section["least_seconds"] == pytest.approx(
        (-(-settings["requests"] // settings["budget"]) - 1) * settings["per_seconds"]
    )
    for (_, redis), job in jobs.items():
        if "not_run" in job:  # only with Redis, and only where it cannot run, saying why
            assert redis
            assert job["not_run"] == section["redis_missing"]
            continue
        assert job["times_least"] == pytest.approx(job["seconds"] / section["least_seconds"])
        assert job["answered"] >= settings["requests"] - sum(job["failed_calls"].values())
        # Each process alone believes it has the whole budget; shared, the budget holds.
        assert job["refused_429"] > 0 if not redis else job["refused_429"] == 0
    assert section["title"] in table
