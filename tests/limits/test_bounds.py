"""Every command is bounded: endless listings stop at a cap, failures and reports stay small.

The endless server is :class:`tests.hostile.RawServer` on loopback (pages of fresh items
with ``has_more: true``, up to a safety bound so that a missing cap fails instead of
hanging); the rest runs against FakeFathom over real HTTP.
"""

from __future__ import annotations

import gc
import itertools
import json
import pickle
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from fathom_events import AsyncClient, EventSpec, FathomError, Site, SyncReport
from fathom_events._bulk import KEPT_BODY_CHARS
from fathom_events._bulk_types import DEFAULT_MAX_EVENTS_PER_SITE
from fathom_events._cli import main
from fathom_events._cli._app import _parse
from fathom_events._sites import DEFAULT_MAX_SITES
from fathom_events.testing import FakeFathom, Fault
from tests.support.faces import Face, face_fixture, opened  # noqa: F401 - face_fixture: `face`
from tests.support.helpers import TOKEN
from tests.support.hostile import RawRequest, RawServer, http

SAFETY_PAGES = 40  # 4,000 items: past every cap these tests set, well short of forever


class Endless:
    """Pages of 100 fresh events (or sites), always with more to come (up to the bound)."""

    def __init__(self) -> None:
        self.fresh = itertools.count()
        self.pages = 0

    def __call__(self, request: RawRequest) -> bytes:
        self.pages += 1
        sites = request.target.startswith("/v1/sites?") or request.target == "/v1/sites"
        kind = "site" if sites else "event"
        data = [
            {
                "id": f"X{next(self.fresh):07d}",
                "object": kind,
                "name": "Again",
                "sharing": "none",
                "created_at": "2024-01-01 00:00:00",
            }
            for _ in range(100)
        ]
        body = {"object": "list", "url": "/x", "has_more": self.pages < SAFETY_PAGES, "data": data}
        return http(200, json.dumps(body).encode())


@pytest.fixture(name="endless")
def _endless() -> Iterator[tuple[Endless, str]]:
    replies = Endless()
    with RawServer(replies).serve_in_thread() as url:
        yield replies, url


@pytest.mark.parametrize(
    ("command", "flag", "message"),
    [
        (
            ["list", "SITE"],
            "--max-events",
            (
                "list SITE: the site has more than 250 events; listing stopped there"
                " (--max-events N reads more)"
            ),
        ),
        (
            ["sites"],
            "--max-sites",
            (
                "sites: the account lists more than 250 sites; listing stopped there"
                " (--max-sites N reads more)"
            ),
        ),
    ],
)
def test_list_and_sites_stop_at_their_cap(
    endless: tuple[Endless, str],
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    flag: str,
    message: str,
) -> None:
    """`list` and `sites` stop an endless listing at the cap (a flag sets it): exit 1, said."""
    replies, url = endless
    code = main([*command, flag, "250", "--base-url", url, "--token", TOKEN, "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"fathom-events: {message}\n"
    assert replies.pages == 3  # at most one page past the cap is read


def test_the_caps_default_to_the_librarys() -> None:
    """Without the flag, `list` and `sites` stop where the library's bulk calls stop."""
    assert _parse(["list", "SITE"]).max_events == DEFAULT_MAX_EVENTS_PER_SITE == 100_000
    assert _parse(["sites"]).max_sites == DEFAULT_MAX_SITES == 100_000


def test_sites_lists_each_site_once(fake: FakeFathom, capsys: pytest.CaptureFixture[str]) -> None:
    """A listing that repeats a site shows it once (as sites.ids() does)."""
    fake.add_site("SITE2")
    site = {
        "id": "SITE2",
        "object": "site",
        "name": "Two",
        "sharing": "none",
        "created_at": "2024-01-01 00:00:00",
    }
    fake.inject(
        Fault.respond(
            200,
            json={"object": "list", "url": "/v1/sites", "has_more": False, "data": [site, site]},
        )
    )
    with fake.serve_in_thread() as url:
        code = main(["sites", "--json", "--base-url", url, "--token", TOKEN])
    assert code == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == ["SITE2"]


async def test_sites_every_is_capped_and_once_each(face: Face) -> None:
    """sites.every() gives every Site once, oldest first, and stops past max_sites."""
    fake = FakeFathom()
    for number in range(1, 6):
        fake.add_site(f"S{number}")
    async with opened(face, fake) as run:
        found = await run(lambda c: c.sites.every())
        assert [s.id for s in found] == ["S1", "S2", "S3", "S4", "S5"]
        assert all(isinstance(s, Site) for s in found)
        with pytest.raises(FathomError, match="more than 4 sites"):
            await run(lambda c: c.sites.every(max_sites=4))


# --- failures keep an excerpt, not the whole body ----------------------------------------

BIG = 1024 * 1024  # each failed site's error body


@pytest.mark.parametrize(
    "body",
    [
        {"error": "x" * BIG},
        {"errors": {"name": ["z" * BIG]}},
        {"errors": {f"field {n}": ["z" * 100] * 10 for n in range(1000)}},
    ],
    ids=["error", "one-field", "many-fields"],
)
async def test_a_failed_site_keeps_a_short_excerpt_of_its_error_body(body: object) -> None:
    """Sites that fail with a 1 MiB error body each hold a short excerpt, not the body."""
    fake = FakeFathom()
    sites = [f"S{number}" for number in range(20)]
    for site in sites:
        fake.add_site(site)
    fake.inject(Fault.respond(400, json=body), times=len(sites))
    async with fake.serve() as url, AsyncClient(TOKEN, url, max_response_bytes=4 * BIG) as client:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        pulled = await client.events.pull(sites)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    assert sorted(pulled.failed) == sorted(sites)
    for error in pulled.failed.values():
        body = error.body  # type: ignore[attr-defined]
        assert isinstance(body, str)
        assert len(body) <= KEPT_BODY_CHARS + len("..."), body[:100]
        assert error.__traceback__ is None  # its frames held the answer's whole body
        assert len(pickle.dumps(error)) < 20_000
    assert held < 2 * BIG, f"{held:,} bytes held for {len(sites)} failed sites"


# --- a sync's report keeps counts, not names --------------------------------------------


async def test_a_report_counts_what_it_left_as_it_was(face: Face) -> None:
    """By default a report counts the events left alone; it names them only when asked."""
    fake = FakeFathom()
    for number in range(3):
        fake.add_event("S1", f"Kept {number}")
    desired = {"S1": [EventSpec(f"Kept {number}") for number in range(3)]}
    named = SyncReport(keep_skipped_names=True)
    async with opened(face, fake) as run:
        counted = await run(lambda c: c.events.sync(desired))
        await run(lambda c: c.events.sync(desired, report=named))
        plan = await run(lambda c: c.events.plan(desired))
        applied = await run(lambda c: c.events.apply(plan))
    for report in (counted, applied):
        assert (report.totals()["skipped"], report.sites["S1"].skipped_count) == (3, 3)
        assert report.sites["S1"].skipped == []
    assert named.sites["S1"].skipped == ["Kept 0", "Kept 1", "Kept 2"]
    assert named.totals()["skipped"] == 3


async def test_a_sync_over_many_unchanged_events_holds_counts() -> None:
    """A sync that changes nothing over 20 sites x 300 events holds no name in its report."""
    fake = FakeFathom()
    names = [f"A rather long event name, number {number:04d}" for number in range(300)]
    for site in range(20):
        for name in names:
            fake.add_event(f"S{site}", name)
    desired: dict[str, Any] = {f"S{site}": [EventSpec(n) for n in names] for site in range(20)}
    async with fake.serve() as url, AsyncClient(TOKEN, url) as client:
        report = await client.events.sync(desired)
    assert report.totals()["skipped"] == 6000
    assert all(site.skipped == [] for site in report.sites.values())
