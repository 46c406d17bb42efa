"""Reading the sync file an export of many sites writes: one [site.ID] table per site."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from fathom_events import Event
from fathom_events._cli._export import render_sync_file
from fathom_events._cli._syncfile import parse_sync_file

MADE_AT = datetime(2024, 1, 1, tzinfo=timezone.utc)
COMMON = ("Signed up", "Purchased", "Booked a demo")


def exported(sites: int) -> str:
    """What `export` writes for ``sites`` sites that share three events and have one each."""
    common = [Event(f"C{n}", name, None, MADE_AT) for n, name in enumerate(COMMON)]
    found = {
        f"S{i:06d}": [*common, Event(f"E{i}", f"Own {i}", None, MADE_AT)] for i in range(sites)
    }
    return render_sync_file(found, made_at=MADE_AT)


@pytest.mark.benchmark(group="read an exported sync file")
@pytest.mark.parametrize("sites", [5_000, 20_000])
def test_read_an_export_of_many_sites(benchmark: Any, sites: int) -> None:
    """parse_sync_file of an export: TOML, the checks, and the line of every [site.ID] table."""
    text = exported(sites)
    read = benchmark(parse_sync_file, text, "goals.toml")
    assert len(read.extras) == sites
