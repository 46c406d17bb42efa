"""A short walk through every endpoint against an in-process FakeFathom."""

from __future__ import annotations

import asyncio
import warnings

from . import AsyncClient, Currency, GoneError


async def walk_every_endpoint(out: list[str] | None = None) -> list[str]:
    """Start a fake Fathom, call each endpoint once, and return (and print) what happened."""
    from .testing import FakeFathom  # noqa: PLC0415 - the demo alone needs the fake

    lines = out if out is not None else []

    def say(text: str) -> None:
        lines.append(text)
        print(text)  # noqa: T201 - the demo's output is its point

    fake = FakeFathom()
    fake.add_site("CDBUGS", "Demo site")
    fake.add_event("CDBUGS", "Signed up to newsletter")
    async with fake.serve() as base_url:
        say(f"FakeFathom serving at {base_url}")
        async with AsyncClient(FakeFathom.DEFAULT_TOKEN, base_url) as client:
            created = await client.events.create("CDBUGS", "Purchased product", Currency.EURO)
            say(f"create  -> {created.id} {created.name!r} currency={created.currency}")
            page = await client.events.list("CDBUGS", limit=10)
            say(f"list    -> {len(page.data)} events, has_more={page.has_more}")
            got = await client.events.get("CDBUGS", created.id)
            say(f"get     -> {got.name!r} (Fathom answers currency=None on get: {got.currency})")
            updated = await client.events.update("CDBUGS", created.id, name="Purchased (live)")
            say(f"update  -> {updated.name!r}")
            names = [event.name async for event in client.events.paginate("CDBUGS")]
            say(f"paginate-> {names}")
            gone = await client.events.delete("CDBUGS", created.id)
            say(f"delete  -> deleted={gone.deleted}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    await client.events.wipe("CDBUGS", got.id)
                except GoneError as error:
                    say(f"wipe    -> GoneError {error.status}: {error.message}")
            say(f"requests sent: {client.requests_sent}, retries: {client.retries}")
    return lines


def main() -> None:
    """Run the walk."""
    asyncio.run(walk_every_endpoint())
