"""The world the README's and the docs' examples run in."""

from __future__ import annotations

import pytest

from fathom_events.testing import FakeFathom
from tests.support.helpers import FakeTime
from tests.support.readme import point_at_the_fake


@pytest.fixture(name="world")
def _world(
    monkeypatch: pytest.MonkeyPatch, fake: FakeFathom, thread_url: str, fake_time: FakeTime
) -> FakeFathom:
    """A served fake holding the examples' sites, CDBUGS and WXYZ, where default clients go."""
    point_at_the_fake(monkeypatch, thread_url, fake_time)
    fake.add_site("WXYZ")
    return fake
