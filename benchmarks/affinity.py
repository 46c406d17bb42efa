"""Pinning processes to CPUs, reading a process's CPU time where the OS allows, stopping one."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order (all of them where unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin(cpu: int | None) -> None:
    """Keep this process (and the threads it starts) on one CPU, where the OS allows it."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of another process so far (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Fields 14 and 15 of stat(5), counted from after the command name's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """End a process we started: SIGTERM, and SIGKILL if it is still there 10 s later."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
