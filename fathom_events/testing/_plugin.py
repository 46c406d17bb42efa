"""pytest plugin: the `fathom_fake` fixture.

Enable it with `pytest -p fathom_events.testing._plugin`, or through the
package's `pytest11` entry point. The fake serves from a background thread,
so the fixture works in sync and async tests alike, with no event-loop plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from fathom_events.testing._fixture import FakeFathomFixture
from fathom_events.testing._server import FakeFathom

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(name="fathom_fake")
def _fathom_fake() -> Iterator[FakeFathomFixture]:
    """A fresh `FakeFathom` served for one test, with the default admin token."""
    fake = FakeFathom()
    with fake.serve_in_thread() as base_url:
        yield FakeFathomFixture(fake=fake, base_url=base_url)
