"""One of W7's processes: ``python -m benchmarks.budget_worker JOB_JSON``.

It builds an ``AsyncClient`` whose ``RateLimit`` is kept in Redis (or, without
``redis_url``, in this process alone), prints ``ready``, and waits for a line
on stdin, so that the runner starts every process's share of the job at once.
Then it GETs its share of the events, every call started at once under the
client's limits (``max_in_flight`` is the whole budget, so a burst is never
held back by the cap), and prints one JSON line: the calls that failed (by
error type), the requests the client sent and retried, and its CPU seconds.
A call that fails is counted, not raised: a job without Redis is expected to
meet 429s, and its retries may run out. As with the other workloads' plain
rows, orjson and uvloop are hidden from the process.
"""

from __future__ import annotations

import asyncio
import collections
import json
import resource
import sys
from typing import Any

from .worker import hide_speedups


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def play(job: dict[str, Any]) -> dict[str, Any]:
    """Build the client, wait for the go, then make every call of this process's share."""
    from fathom_events import AsyncClient, RateLimit  # noqa: PLC0415 - after pinning

    shared = {} if job["redis_url"] is None else {"redis_url": job["redis_url"], "key": job["key"]}
    rate_limit = RateLimit(job["budget"], job["per_seconds"], **shared)
    client = AsyncClient(
        job["token"], job["base_url"], rate_limit=rate_limit, max_in_flight=job["budget"]
    )
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        cpu = _cpu()
        outcomes = await asyncio.gather(
            *(client.events.get(site, event) for site, event in job["items"]),
            return_exceptions=True,
        )
        cpu = _cpu() - cpu
        failed = collections.Counter(
            type(outcome).__name__ for outcome in outcomes if isinstance(outcome, BaseException)
        )
        return {
            "calls": len(outcomes),
            "failed": dict(failed),
            "requests_sent": client.requests_sent,
            "retries": client.retries,
            "cpu_seconds": cpu,
        }
    finally:
        await client.aclose()


def main() -> int:
    job = json.loads(sys.argv[1])
    if job.get("cpu") is not None:
        from .affinity import pin  # noqa: PLC0415

        pin(job["cpu"])
    hide_speedups()
    print(json.dumps(asyncio.run(play(job))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
