"""What the `fathom_fake` fixture gives a test; importable without pytest, for annotations."""

from __future__ import annotations

import attrs

from fathom_events.testing._server import FakeFathom


@attrs.frozen
class FakeFathomFixture:
    """A serving `FakeFathom`, its base URL and a token with every ability."""

    fake: FakeFathom
    base_url: str
    token: str = FakeFathom.DEFAULT_TOKEN
