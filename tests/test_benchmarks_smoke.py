"""The benchmark runner still runs end to end (tiny sizes; nothing here is timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = (
    "aiohttp (raw)",
    "fathom async",
    "fathom async +speedups",
    "fathom blocking",
    "fathom blocking +speedups",
    "httpx async",
    "requests",
)
WORKLOADS = ("W1", "W2@32", "W2@64", "W3", "W4", "W5", "MEM")
ALWAYS_INSTALLED = {"aiohttp", "fathom-async", "fathom-blocking"}


@pytest.fixture(scope="module", name="run")
def _run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    finished = subprocess.run(  # noqa: S603 - our own module, with our own arguments
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout, json.loads(output.read_text())


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
