"""What the `fathom_fake` fixture gives a test; importable without pytest, for annotations."""

from __future__ import annotations

import attrs

from fathom_events.testing._server import FakeFathom


@attrs.frozen
class FakeFathomFixture:
    """What the ``fathom_fake`` fixture gives a test: a serving `FakeFathom`, its URL, a token.

    Attributes:
        fake: The fake, serving from a background thread: seed it, inject
            faults, read ``requests`` and ``events()``.
        base_url: Its base URL (``http://127.0.0.1:PORT/v1``), for a client's ``base_url``.
        token: A token with every ability (``*``): ``FakeFathom.DEFAULT_TOKEN``.
    """

    fake: FakeFathom
    base_url: str
    token: str = FakeFathom.DEFAULT_TOKEN
