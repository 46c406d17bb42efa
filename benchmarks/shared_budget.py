"""W7: N processes sharing one rate budget, with and without Redis.

A job of ``requests`` GETs is split between ``N`` processes
(:mod:`benchmarks.budget_worker`), each an ``AsyncClient`` with
``RateLimit(budget, per_seconds)``: kept in one Redis (a ``redis-server`` this
module starts on a free loopback port), or each in its own process, as every
process believes today. W7's own lean server (``--rate-limit``) allows the
token ``budget`` requests per ``per_seconds``, counted as FakeFathom counts
(Laravel's fixed window, opened by the first request), and holds every answer
back ``delay`` seconds, a network's delay.

The least time the budget allows is that of bursts of ``budget`` at 0, S, 2S,
...: ``(ceil(requests / budget) - 1) x per_seconds``. Each job's time is the
server's, from the first request's arrival to the last answer's writing;
the 429s are the server's count. CPU is the client processes' own, during
their share of the job.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from . import dataset
from .affinity import cpu_seconds, stop

HERE = Path(__file__).resolve().parent
#: A job with Redis must finish within this many times the least time, with no 429.
GOAL = 1.03
_READY_TIMEOUT = 60.0
_REDIS_START_TIMEOUT = 10.0


@attrs.frozen
class BudgetSettings:
    """W7's sizes: the processes of each job, the job, the budget and the network's delay."""

    processes: tuple[int, ...] = (2, 4, 8)
    requests: int = 400
    budget: int = 100
    per_seconds: float = 2.0
    delay: float = 0.020
    sites: int = 10  # the remote sites whose events the job GETs

    def least_seconds(self) -> float:
        """The least time the budget allows: bursts of ``budget`` at 0, S, 2S, ..."""
        return (math.ceil(self.requests / self.budget) - 1) * self.per_seconds

    def title(self) -> str:
        return (
            f"W7: {self.requests:,} GETs from N processes sharing {self.budget} requests per"
            f" {self.per_seconds:g} s, {self.delay * 1000:g} ms a request"
        )

    def items(self) -> list[tuple[str, str]]:
        """The job's GETs: (site, event id), round the remote sites, then on to their next event."""
        sites = [dataset.net_site_id(number) for number in range(1, self.sites + 1)]
        return [
            (
                sites[index % self.sites],
                dataset.event_id(sites[index % self.sites], index // self.sites % 40),
            )
            for index in range(self.requests)
        ]

    def dataset(self) -> dataset.Dataset:
        """What W7's server holds: the remote sites only, each answer ``delay`` late."""
        return dataset.Dataset(0, 0, 0, 0, net_sites=self.sites, net_delay=self.delay)

    def server_args(self) -> list[str]:
        return [f"--rate-limit={self.budget}/{self.per_seconds!r}"]


def redis_missing() -> str | None:
    """Why W7 cannot run with Redis here (no server binary, no client library), or None."""
    if shutil.which("redis-server") is None:
        return "redis-server not found (apt-get install redis-server)"
    try:
        import redis  # noqa: F401, PLC0415 - only asked whether it is there
    except ImportError:
        return "redis-py not installed (pip install -e '.[bench]')"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server(cpu: int | None) -> Iterator[tuple[str, int]]:
    """A fresh ``redis-server`` on a free loopback port, keeping nothing on disk: URL, pid."""
    binary = shutil.which("redis-server")
    assert binary is not None
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - the system's redis-server, our arguments
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, {cpu})
        deadline = time.monotonic() + _REDIS_START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        stop(process)


def _scripts_run(redis_url: str) -> int:
    """The Lua scripts the Redis server has run so far (``INFO commandstats``)."""
    import redis  # noqa: PLC0415 - only with Redis

    with redis.Redis.from_url(redis_url) as client:
        stats = client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {})
    return int(
        evalsha.get("calls", 0)
        - evalsha.get("failed_calls", 0)  # NOSCRIPT: sent again whole, as EVAL
        + stats.get("cmdstat_eval", {}).get("calls", 0)
    )


@contextlib.contextmanager
def _redis_spent(redis: tuple[str, int] | None) -> Iterator[dict[str, float]]:
    """What Redis spent while the block ran: ``cpu`` seconds and ``scripts`` run (where known)."""
    spent: dict[str, float] = {}
    if redis is None:
        yield spent
        return
    url, pid = redis
    cpu, scripts = cpu_seconds(pid), _scripts_run(url)
    yield spent
    after = cpu_seconds(pid)
    if cpu is not None and after is not None:
        spent["cpu"] = after - cpu
    spent["scripts"] = _scripts_run(url) - scripts


def _budget_control(base_url: str, method: str) -> dict[str, Any]:
    """The W7 server's counts (``DELETE``: reset them first)."""
    url = base_url.removesuffix("/v1") + "/_bench/budget"
    request = urllib.request.Request(url, method=method)  # noqa: S310 - our own loopback server
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        found: dict[str, Any] = json.loads(answer.read())
    return found


def _start(job: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own module, with our own arguments
        [sys.executable, "-m", "benchmarks.budget_worker", json.dumps(job)],
        cwd=HERE.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], _READY_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "ready":
        process.kill()
        _, err = process.communicate()
        raise RuntimeError(f"a W7 process did not start: {line!r}\n{err}")


def run_job(
    settings: BudgetSettings,
    processes: int,
    *,
    base_url: str,
    redis: tuple[str, int] | None,
    cpu: int | None,
    timeout: float,
) -> dict[str, Any]:
    """One job: ``processes`` processes share the GETs, through ``redis`` (URL, pid) or not."""
    _budget_control(base_url, "DELETE")
    items = settings.items()
    key = f"w7-{uuid.uuid4().hex}"  # a budget of its own, whatever an earlier job left
    workers = [
        _start(
            {
                "base_url": base_url,
                "token": dataset.TOKEN,
                "items": items[share::processes],
                "budget": settings.budget,
                "per_seconds": settings.per_seconds,
                "redis_url": None if redis is None else redis[0],
                "key": key,
                "cpu": cpu,
            }
        )
        for share in range(processes)
    ]
    results = []
    try:
        for worker in workers:
            _wait_ready(worker)
        with _redis_spent(redis) as spent:
            for worker in workers:  # the go: every process starts its share now
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            for worker in workers:
                out, err = worker.communicate(timeout=timeout)
                if worker.returncode != 0:
                    raise RuntimeError(f"a W7 process failed:\n{err}")
                results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    seen = _budget_control(base_url, "GET")
    least = settings.least_seconds()
    cpu_used = sum(result["cpu_seconds"] for result in results)
    failed: dict[str, int] = {}
    for result in results:
        for name, count in result["failed"].items():
            failed[name] = failed.get(name, 0) + count
    done = settings.requests - sum(failed.values())
    return {
        "processes": processes,
        "redis": redis is not None,
        "seconds": seen["seconds"],
        "least_seconds": least,
        "times_least": seen["seconds"] / least if least else None,
        "answered": seen["answered"],
        "refused_429": seen["refused"],
        "failed_calls": failed,
        "retries": sum(result["retries"] for result in results),
        "client_cpu_seconds": cpu_used,
        "calls_per_cpu_second": done / cpu_used if cpu_used else None,
        "redis_cpu_seconds": spent.get("cpu"),
        "redis_scripts_per_call": (
            None if spent.get("scripts") is None else spent["scripts"] / settings.requests
        ),
    }


def run(
    settings: BudgetSettings,
    *,
    base_url: str,
    server_cpu: int | None,
    client_cpu: int | None,
    timeout: float,
    log: Any,
) -> dict[str, Any]:
    """Every job of W7: for each N, without Redis, then with it (where Redis can run)."""
    missing = redis_missing()
    jobs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        redis = None if missing else stack.enter_context(redis_server(server_cpu))
        for processes in settings.processes:
            for shared in (False, True):
                if shared and redis is None:
                    jobs.append({"processes": processes, "redis": True, "not_run": missing})
                    continue
                log(f"W7: {processes} processes, {'with' if shared else 'without'} Redis")
                jobs.append(
                    run_job(
                        settings,
                        processes,
                        base_url=base_url,
                        redis=redis if shared else None,
                        cpu=client_cpu,
                        timeout=timeout,
                    )
                )
    return {
        "title": settings.title(),
        "settings": attrs.asdict(settings),
        "least_seconds": settings.least_seconds(),
        "goal": GOAL,
        "redis_missing": missing,
        "jobs": jobs,
    }


def met(job: dict[str, Any]) -> bool | None:
    """Whether a job with Redis met W7's goal (None: without Redis, or not run)."""
    if not job["redis"] or "not_run" in job or job["times_least"] is None:
        return None
    return bool(job["times_least"] <= GOAL and job["refused_429"] == 0 and not job["failed_calls"])


def markdown(section: dict[str, Any]) -> list[str]:
    """W7's table: each job's time against the least the budget allows, its 429s, its CPU."""
    settings = section["settings"]
    lines = [
        "",
        (
            f"{section['title']}: least time {section['least_seconds']:g} s (bursts of"
            f" {settings['budget']} at 0, {settings['per_seconds']:g} s, ...). Goal: every job"
            f" with Redis within {GOAL:g}x of it, with no 429."
        ),
        "",
        (
            "| Processes | Budget | wall s | x least | 429s | failed calls | retries"
            " | calls per CPU s | Redis scripts per call | Redis CPU ms | goal |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for job in section["jobs"]:
        where = "Redis" if job["redis"] else "each process its own"
        if "not_run" in job:
            lines.append(
                f"| {job['processes']} | {where} | not run ({job['not_run']})"
                " | - | - | - | - | - | - | - | - |"
            )
            continue
        verdict = {True: "met", False: "**not met**", None: "-"}[met(job)]
        redis_ms = job["redis_cpu_seconds"]
        lines.append(
            f"| {job['processes']} | {where} | {job['seconds']:.3f}"
            f" | {job['times_least']:.3f}x | {job['refused_429']:,}"
            f" | {sum(job['failed_calls'].values()):,} | {job['retries']:,}"
            f" | {_number(job['calls_per_cpu_second'], ',.0f')}"
            f" | {_number(job['redis_scripts_per_call'], '.2f')}"
            f" | {_number(None if redis_ms is None else redis_ms * 1000, '.0f')} | {verdict} |"
        )
    return lines


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else f"{value:{spec}}"
