"""``fake-server``: a seeded FakeFathom on a port of your choice, until interrupted.

Anything that speaks HTTP (a test suite in any language) can point at it. It
prints one line when it is ready, with its base URL, then the ``export`` lines
that point a shell at it (``FATHOM_API_BASE_URL``, and ``FATHOM_API_TOKEN``
unless ``--token`` gave one of your own), and stops cleanly on
Ctrl-C or SIGTERM (exit code 0). ``--rate-limit N/SECONDS`` gives each token
Fathom's kind of budget; ``--fault SPEC`` (a JSON fault description, see
``FakeFathom.inject_spec``) injects faults before it serves, and its control
endpoint (``/_fake/faults``, beside ``/v1``) takes more, or clears them, while
it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from fathom_events.testing import FakeFathom

from ._output import Output, tally
from ._text import PROG, UsageError

__all__ = ["fake_server", "run_fake_server", "serve_on"]

_SHUTDOWN_TIMEOUT = 5.0


@contextlib.asynccontextmanager
async def serve_on(fake: FakeFathom, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``fake`` on ``host:port`` (0: a free port); yield the base URL, ".../v1"."""
    runner = web.AppRunner(fake.app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}/v1"
    finally:
        await runner.cleanup()


async def run_fake_server(args: argparse.Namespace, out: Output, stop: asyncio.Event) -> int:
    """Seed a fake from the arguments and serve it until ``stop`` is set."""
    token = FakeFathom.DEFAULT_TOKEN if args.token is None else args.token
    budget = args.fake_rate_limit
    fake = FakeFathom(
        {token: ["*"]}, latency=args.latency, rate_limit=budget, control_endpoint=True
    )
    for spec in args.faults:
        _inject(fake, spec)
    site_ids = fake.seed(args.sites, args.events_per_site)
    named = [site for site in dict.fromkeys(args.named_sites) if site not in site_ids]
    for site in named:
        fake.add_site(site)
    async with serve_on(fake, args.host, args.port) as base_url:
        faults_url = base_url.removesuffix("/v1") + FakeFathom.CONTROL_PATH
        # The fake's well-known token is printed; a token of your own is not.
        shown_token = token if args.token is None else None
        # What a shell needs to point the client and the command line here.
        env = {"FATHOM_API_BASE_URL": base_url}
        if shown_token:
            env["FATHOM_API_TOKEN"] = shown_token
        if out.json_mode:
            out.json(
                {
                    "serving": base_url,
                    "sites": site_ids + named,
                    "events_per_site": args.events_per_site,
                    "token": shown_token,
                    "rate_limit": None if budget is None else list(budget),
                    "faults": faults_url,
                    "pending_faults": fake.pending_faults(),
                    "env": env,
                },
                compact=True,
            )
        else:
            seeded = [f"{site_ids[0]}..{site_ids[-1]}"] if site_ids else []
            sites = ", ".join(seeded + named) or "none"
            token_text = f"token {shown_token}" if shown_token else "the token given with --token"
            parts = [
                (
                    f"serving a fake Fathom API at {base_url}: {len(site_ids) + len(named)} sites"
                    f" ({sites}),"
                    f" {args.events_per_site} events each"
                ),
                token_text,
            ]
            if budget is not None:
                parts.append(f"at most {budget[0]} requests per {budget[1]:g} s per token")
            out.result("; ".join([*parts, f"faults: {faults_url}", "Ctrl-C stops it"]))
            for name, value in env.items():  # to paste into a shell
                out.result(f"export {name}={shlex.quote(value)}")
        await stop.wait()
    if out.json_mode:
        out.json({"stopped": True, "requests": len(fake.requests)}, compact=True)
    else:
        out.result(f"stopped after {tally(len(fake.requests), 'request')}")
    return 0


def _inject(fake: FakeFathom, spec: str) -> None:
    """Inject one ``--fault SPEC``; a description the fake cannot read is a usage error."""
    try:
        fake.inject_spec(spec)
    except ValueError as error:
        raise UsageError(f"{PROG} fake-server: --fault {spec!r:.200}: {error}") from None


def fake_server(args: argparse.Namespace, out: Output) -> int:
    """Run the fake until SIGINT or SIGTERM."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for signum in signals:
            # Not on Windows: there Ctrl-C arrives as KeyboardInterrupt instead.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        try:
            return await run_fake_server(args, out, stop)
        finally:
            for signum in signals:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)

    return asyncio.run(main())
