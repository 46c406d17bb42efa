"""``python -m benchmarks``: every client through every workload, side by side.

One lean server process (pinned to the first usable CPU) answers every
client; each measurement runs in a fresh client process pinned to another
CPU. Repeats are interleaved (every client once per workload per repeat, the
order rotating), then the medians are compared with raw aiohttp's from the
same run. See README.md in this folder.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import attrs

from . import chart, report, shared_budget
from .affinity import cpu_seconds, pin, stop, usable_cpus
from .dataset import Dataset
from .registry import CLIENTS, ClientSpec
from .shared_budget import BudgetSettings
from .workloads import Workload, standard

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results.json"
DEFAULT_CHART = HERE / "results.png"
MAX_IN_FLIGHT = 64  # every client may have all of W2@64 in flight

#: glibc's malloc thresholds, fixed for the server and every client process. asyncio reads
#: each answer with ``recv(256 KiB)``: with glibc's defaults, whether that buffer comes from
#: the heap or from a fresh ``mmap`` (then ``mremap`` and ``munmap``, three system calls and
#: page faults per read) depends on what the process allocated before, so two processes of
#: the same client differed by 15-20 us of CPU a request (W2: raw aiohttp 86 against 103 us,
#: the library 118 against 138; see "The allocator" in benchmarks/README.md). Fixed, every
#: process reads from the heap and the ratios compare the clients, not the allocator's luck.
MALLOC_FIXED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(8 << 20)}


def process_environment(malloc: str) -> dict[str, str]:
    """The environment for the server and the clients: ours, with the allocator as chosen."""
    environment = dict(os.environ)
    for name in MALLOC_FIXED:
        environment.pop(name, None)
    if malloc == "fixed":
        environment.update(MALLOC_FIXED)
    return environment


BUDGET_NAME = "W7"  # not a client's workload: processes sharing a budget (shared_budget.py)
_SERVER_START_TIMEOUT = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark fathom_events against raw aiohttp, httpx and requests.",
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (3)")
    parser.add_argument(
        "--workloads",
        default="",
        help="comma-separated subset of W1,W2@32,W2@64,W3,W4,W5,MEM,W6,W7 (default: all)",
    )
    parser.add_argument(
        "--clients",
        default="",
        help=f"comma-separated subset of {','.join(CLIENTS)} (default: all)",
    )
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--w1", type=int, default=2000, help="W1: sequential GETs (2000)")
    sizes.add_argument("--w2", type=int, default=5000, help="W2: concurrent GETs (5000)")
    sizes.add_argument(
        "--w3-events", type=int, default=10_000, help="W3: events in the site (10000)"
    )
    sizes.add_argument(
        "--w3-rounds", type=int, default=10, help="W3: walks through it per measurement (10)"
    )
    sizes.add_argument("--w4", type=int, default=2000, help="W4: creates (2000)")
    sizes.add_argument("--sites", type=int, default=50, help="small sites: W2's and W5's (50)")
    sizes.add_argument(
        "--events-per-site", type=int, default=500, help="events in each small site (500)"
    )
    sizes.add_argument(
        "--w5-concurrency", type=int, default=16, help="W5: sites pulled at once (16)"
    )
    sizes.add_argument(
        "--memory-events", type=int, default=100_000, help="MEM: events to page through"
    )
    sizes.add_argument(
        "--w6-sites", type=int, default=200, help="W6: remote sites pulled and synced (200)"
    )
    sizes.add_argument(
        "--w6-delay",
        type=float,
        default=40.0,
        help="W6: milliseconds the server holds each remote site's answer back (40)",
    )
    sizes.add_argument(
        "--w6-sites-at-once",
        type=int,
        default=0,
        help="W6: the concurrency= the fathom clients pass to pull/plan/apply"
        " (default: the library's, max_in_flight)",
    )
    sizes.add_argument(
        "--w7-processes",
        default="2,4,8",
        help="W7: the numbers of processes sharing the budget, one job each (2,4,8)",
    )
    sizes.add_argument("--w7-requests", type=int, default=400, help="W7: GETs per job (400)")
    sizes.add_argument(
        "--w7-rate-limit",
        metavar="N/SECONDS",
        default="100/2",
        help="W7: the budget the server allows and every process's RateLimit (100/2)",
    )
    sizes.add_argument(
        "--w7-delay",
        type=float,
        default=20.0,
        help="W7: milliseconds the server holds each answer back (20)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, one repeat, one process per client: checks that it all runs",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="one process per client and repeat, playing every workload (faster, less clean)",
    )
    parser.add_argument(
        "--server",
        choices=("lean", "fake"),
        default="lean",
        help="the benchmark's lean server, or fathom_events.testing.FakeFathom",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--malloc",
        choices=("fixed", "default"),
        default="fixed",
        help="glibc's malloc thresholds fixed for every process (the default), or as glibc"
        " sets them",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the numbers ({DEFAULT_JSON.name})",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=DEFAULT_CHART,
        help=f"where to draw the chart, if matplotlib is installed ({DEFAULT_CHART.name})",
    )
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per client process")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
        args.batch = True
        args.w1, args.w2, args.w4 = 40, 128, 64
        args.w3_events, args.w3_rounds = 300, 1
        args.sites, args.events_per_site = 4, 150
        args.w5_concurrency = 2
        args.memory_events = 500
        args.w6_sites, args.w6_delay = 6, 1.0
        args.w7_requests, args.w7_rate_limit, args.w7_delay = 30, "10/0.25", 1.0
    return args


def budget_settings(args: argparse.Namespace) -> BudgetSettings:
    """W7's sizes from the command line."""
    budget, _, per_seconds = args.w7_rate_limit.partition("/")
    processes = tuple(int(n) for n in args.w7_processes.split(",") if n.strip())
    return BudgetSettings(
        processes=processes,
        requests=args.w7_requests,
        budget=int(budget),
        per_seconds=float(per_seconds),
        delay=args.w7_delay / 1000,
    )


def _pick(names: str, known: list[str], what: str) -> list[str]:
    if not names:
        return known
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return [name for name in known if name in chosen]


@attrs.define
class Server:
    """The server process: its base URL and a reading of its CPU time."""

    process: subprocess.Popen[str]
    base_url: str

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.process.pid)


@contextmanager
def serve(
    data: Dataset, kind: str, cpu: int | None, malloc: str, extra: list[str] | None = None
) -> Iterator[Server]:
    """Start the server in its own process (``extra``: more flags); stop it on the way out."""
    command = [sys.executable, "-m", "benchmarks.server", *data.as_args(), *(extra or [])]
    if cpu is not None:
        command.append(f"--cpu={cpu}")
    if kind == "fake":
        command.append("--fake")
    process = subprocess.Popen(  # noqa: S603 - our own module, with our own arguments
        command, cwd=HERE.parent, stdout=subprocess.PIPE, text=True, env=process_environment(malloc)
    )
    try:
        assert process.stdout is not None
        if os.name == "posix":
            ready, _, _ = select.select([process.stdout], [], [], _SERVER_START_TIMEOUT)
            if not ready:
                raise RuntimeError("the benchmark server did not start in time")
        line = process.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        yield Server(process, line.split()[1])
    finally:
        stop(process)


def run_client(
    spec: ClientSpec,
    workloads: list[Workload],
    *,
    server: Server,
    data: Dataset,
    cpu: int | None,
    timeout: float,
    malloc: str,
) -> list[dict[str, Any]]:
    """One client process playing ``workloads``; its results, with the server's CPU time."""
    job = {
        "client": spec.key,
        "speedups": spec.speedups,
        "workloads": [workload.as_json() for workload in workloads],
        "base_url": server.base_url,
        "dataset": attrs.asdict(data),
        "cpu": cpu,
        "max_in_flight": MAX_IN_FLIGHT,
    }
    before = server.cpu_seconds()
    finished = subprocess.run(  # noqa: S603 - our own module, with our own arguments
        [sys.executable, "-m", "benchmarks.worker", json.dumps(job)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=process_environment(malloc),
    )
    after = server.cpu_seconds()
    if finished.returncode != 0:
        raise RuntimeError(
            f"{spec.name} failed on {', '.join(w.name for w in workloads)}:\n{finished.stderr}"
        )
    results: list[dict[str, Any]] = json.loads(finished.stdout.strip().splitlines()[-1])
    if len(workloads) == 1 and before is not None and after is not None:
        # Requests the server answered for this process, warm-up included.
        sent = workloads[0].requests() + workloads[0].warmup().requests()
        results[0]["server_cpu_per_request"] = (after - before) / sent
    return results


def schedule(
    workloads: list[Workload], clients: list[ClientSpec], repeats: int, *, batch: bool
) -> Iterator[tuple[int, ClientSpec, list[Workload]]]:
    """Every (repeat, client, workloads) to run, interleaved, the client order rotating."""
    for repeat in range(repeats):
        shift = repeat % len(clients)
        order = clients[shift:] + clients[:shift]
        todo = [w for w in workloads if repeat == 0 or not w.once]
        if batch and todo:
            for spec in order:
                yield repeat, spec, todo
        else:
            for workload in todo:
                for spec in order:
                    yield repeat, spec, [workload]


def machine(pinned: tuple[int | None, int | None]) -> dict[str, Any]:
    """What the numbers were measured on."""
    return report.machine_info(server_cpu=pinned[0], client_cpu=pinned[1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = Dataset(
        args.sites,
        args.events_per_site,
        args.w3_events,
        args.memory_events,
        net_sites=args.w6_sites,
        net_delay=args.w6_delay / 1000,
    )
    every = standard(
        data,
        w1=args.w1,
        w2=args.w2,
        w3_rounds=args.w3_rounds,
        w4=args.w4,
        w5_concurrency=args.w5_concurrency,
        w6_in_flight=MAX_IN_FLIGHT,
        w6_sites_at_once=args.w6_sites_at_once,
    )
    names = _pick(args.workloads, [*(w.name for w in every), BUDGET_NAME], "workloads")
    with_budget = BUDGET_NAME in names
    if args.server == "fake" and "W6" in names:
        # FakeFathom keeps what a sync changes (so a repeat would find less to do) and
        # has no delay of its own: W6 needs the lean server.
        if args.workloads:
            raise SystemExit("W6 runs on the lean server only (drop --server fake)")
        names.remove("W6")
    workloads = [w for w in every if w.name in names]
    budget = budget_settings(args)
    keys = _pick(args.clients, list(CLIENTS), "clients")
    wanted = [CLIENTS[key] for key in keys]
    missing = {spec.key: spec.missing() for spec in wanted if spec.missing()}
    clients = [spec for spec in wanted if spec.key not in missing]
    cpus = usable_cpus()
    server_cpu, client_cpu = (None, None)
    if not args.no_pin and len(cpus) >= 2:
        server_cpu, client_cpu = cpus[0], cpus[1]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    started = time.monotonic()
    # The runner itself shares the client's CPU: it only waits while a client runs.
    pin(client_cpu)

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    serving = serve(data, args.server, server_cpu, args.malloc) if workloads else nullcontext()
    with serving as server:
        for repeat, spec, todo in schedule(workloads, clients, args.repeats, batch=args.batch):
            log(
                f"repeat {repeat + 1}/{args.repeats}:"
                f" {spec.name} - {', '.join(w.name for w in todo)}"
            )
            for result in run_client(
                spec,
                todo,
                server=server,
                data=data,
                cpu=client_cpu,
                timeout=args.timeout,
                malloc=args.malloc,
            ):
                result["repeat"] = repeat
                results.setdefault((result["workload"], spec.key), []).append(result)
    budget_section = None
    if with_budget:
        # W7 has a server of its own: the budget, and the delay on every answer.
        with serve(
            budget.dataset(), "lean", server_cpu, args.malloc, budget.server_args()
        ) as server:
            budget_section = shared_budget.run(
                budget,
                base_url=server.base_url,
                server_cpu=server_cpu,
                client_cpu=client_cpu,
                timeout=args.timeout,
                log=log,
            )
    summary = report.summarise(
        workloads=workloads,
        clients=wanted,
        missing=missing,
        results=results,
        settings={
            "repeats": args.repeats,
            "batch": args.batch,
            "server": args.server,
            "max_in_flight": MAX_IN_FLIGHT,
            "malloc": args.malloc,
            "seconds": round(time.monotonic() - started, 1),
        },
        machine=machine((server_cpu, client_cpu)),
    )
    if budget_section is not None:
        summary["shared_budget"] = budget_section
    print(report.markdown(summary))
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nNumbers written to {args.json}", file=sys.stderr)
    if not args.no_chart:
        print(chart.draw_if_possible(summary, args.chart), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
