"""Separate OS processes against one served FakeFathom: what the fake answered, and when.

The acceptance tests of the shared budget (tests/redis/test_acceptance.py) run
several ``fathom-events`` commands, or :mod:`tests.support.pull_worker`
scripts, at once, each its own OS process, against a FakeFathom served over
HTTP on loopback by the test's own event loop. :func:`served` records every
request the fake receives, with its token, its status and when it came and
went (``time.monotonic``, this process's clock); :func:`windows` counts them
as the fake's throttle does. :func:`run_all` runs the processes, each with a
bound on its time, so that no test can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler

from fathom_events.testing import FakeFathom

ROOT = Path(__file__).resolve().parents[2]


@attrs.define
class Seen:
    """A request the fake received: its token and path, when it came, and (once answered) how."""

    token: str
    path: str
    arrived: float
    status: int | None = None  # None while it is in flight
    answered: float | None = None


@contextlib.asynccontextmanager
async def served(fake: FakeFathom) -> AsyncIterator[tuple[str, list[Seen]]]:
    """Serve ``fake`` on a free loopback port: its base URL, and each request as it is seen."""
    seen: list[Seen] = []

    @web.middleware
    async def clock(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        entry = Seen(token, request.path, time.monotonic())
        seen.append(entry)
        response = await handler(request)
        entry.status, entry.answered = response.status, time.monotonic()
        return response

    app = fake.app
    app.middlewares.append(clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    finally:
        await runner.cleanup()


def windows(seen: Sequence[Seen], seconds: float) -> list[int]:
    """The requests each of the fake's fixed windows counted, in order.

    As Laravel's throttle counts (the fake's ``Throttle``): a window opens with
    the first request after the last one closed, lasts ``seconds``, and a
    refused request (429) counts in none. (Times are arrivals; the fake is
    served without latency, so it counts a request when it arrives.)
    """
    counts: list[int] = []
    closes = float("-inf")
    for entry in sorted(seen, key=lambda entry: entry.arrived):
        if entry.status == 429:
            continue
        if entry.arrived >= closes:
            counts.append(0)
            closes = entry.arrived + seconds
        counts[-1] += 1
    return counts


@attrs.frozen
class Finished:
    """A process that ended: its exit code (negative: the signal that ended it) and output."""

    code: int
    out: str
    err: str


def environment(token: str) -> dict[str, str]:
    """This process's environment with ``token`` as the API token, and no URL of Redis."""
    ignored = ("FATHOM_API_TOKEN", "FATHOM_EVENTS_REDIS_URL", "TTY_COMPATIBLE")
    env = {name: value for name, value in os.environ.items() if name not in ignored}
    return {**env, "FATHOM_API_TOKEN": token}


def cli(*args: str) -> list[str]:
    """The command line, as ``python -m fathom_events ARGS``."""
    return [sys.executable, "-m", "fathom_events", *args]


async def start(command: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``command`` from the repository's root, its output piped."""
    return await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float) -> Finished:
    """Wait for ``process`` at most ``timeout`` seconds; past that it is killed, and that fails."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(
            f"a process ran longer than {timeout} s and was killed; its stderr:\n{err.decode()}"
        ) from None
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def run_all(
    commands: Sequence[tuple[list[str], dict[str, str]]], timeout: float
) -> list[Finished]:
    """Run every (command, environment) at once; each must end within ``timeout`` seconds."""
    processes = [await start(command, env) for command, env in commands]
    try:
        return list(await asyncio.gather(*(finish(p, timeout) for p in processes)))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Return once ``condition()`` holds (checked every 10 ms); fail past ``timeout`` seconds."""
    gives_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < gives_up, f"not so within {timeout} s"
        await asyncio.sleep(0.01)
