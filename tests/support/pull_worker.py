"""One worker process of the acceptance tests: ``python -m tests.support.pull_worker JOB_JSON``.

It pulls the job's sites through an ``AsyncClient`` whose ``RateLimit`` is
kept in Redis, as a worker of a deployment would, with the settings the
command line does not offer (``on_redis_error``, ``timeout``). The token is
``$FATHOM_API_TOKEN``. The library's log records of WARNING and above go to
stderr, one line each (``WARNING fathom_events: ...``). It prints one JSON
line: the events pulled, each site that failed with its error's class, and
the seconds the pull took.

JOB_JSON: ``base_url``, ``sites``, ``rate_limit`` ([N, S]), ``redis_url``,
``on_redis_error`` and ``timeout``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from fathom_events import AsyncClient, RateLimit


async def pull(job: dict[str, Any]) -> dict[str, Any]:
    """Pull the job's sites; what came of it."""
    requests, per_seconds = job["rate_limit"]
    rate_limit = RateLimit(
        requests,
        per_seconds,
        redis_url=job["redis_url"],
        on_redis_error=job["on_redis_error"],
    )
    async with AsyncClient(
        base_url=job["base_url"], rate_limit=rate_limit, timeout=job["timeout"]
    ) as client:
        started = time.monotonic()
        result = await client.events.pull(job["sites"])
        return {
            "events": sum(len(events) for events in result.values()),
            "failed": {site: type(error).__name__ for site, error in result.failed.items()},
            "seconds": time.monotonic() - started,
        }


def main() -> int:
    job = json.loads(sys.argv[1])
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    print(json.dumps(asyncio.run(pull(job))), flush=True)  # noqa: T201 - its one result
    return 0


if __name__ == "__main__":
    sys.exit(main())
