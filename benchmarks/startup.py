"""``python -m benchmarks.startup``: the cold start of the command line and of the import.

Each case is a new interpreter, timed from launch to exit against a bare
``python -c pass``. The cases take turns (one run of each, then again) so
that a busy machine slows them all alike; the median of each is printed,
and its excess over the bare interpreter.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "fathom-events"
COMMAND_LINE = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "fathom_events"]
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import fathom_events": [sys.executable, "-c", "import fathom_events"],
    "fathom-events --version": [*COMMAND_LINE, "--version"],
    "fathom-events --help": [*COMMAND_LINE, "--help"],
    "fathom-events list --help": [*COMMAND_LINE, "list", "--help"],
    "fathom-events list (a usage error)": [*COMMAND_LINE, "list"],
    "import fathom_events; AsyncClient, Client": [
        sys.executable,
        "-c",
        "import fathom_events; fathom_events.AsyncClient; fathom_events.Client",
    ],
}


def measure(runs: int) -> dict[str, list[float]]:
    """Seconds from launch to exit of each case, ``runs`` times, the cases taking turns."""
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, command in CASES.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False)  # noqa: S603
            times[name].append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs of each case (10)")
    args = parser.parse_args(argv)
    times = measure(args.runs)
    bare = statistics.median(times["python -c pass"])
    print(f"{platform.python_implementation()} {platform.python_version()}, {args.runs} runs each")
    print("| Case | Median | Over bare python |\n|---|---:|---:|")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"| `{name}` | {median * 1000:.0f} ms | +{(median - bare) * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
