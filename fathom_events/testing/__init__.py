"""Test helpers: `FakeFathom`, a fake Fathom Events API (with sites, token, account) on loopback.

    from fathom_events.testing import FakeFathom, Fault

    fake = FakeFathom()
    fake.add_site("CDBUGS")
    async with fake.serve() as base_url:
        ...  # point a client at base_url with token FakeFathom.DEFAULT_TOKEN

`MemoryTransport` answers a client's requests in memory, with no socket:
from the fake (`MemoryTransport(fake)`, which calls `fake.answer`) or from a
function of yours taking a `RecordedRequest` and returning `(status,
headers, body)`:

    client = AsyncClient(FakeFathom.DEFAULT_TOKEN, transport=MemoryTransport(fake))
    MemoryTransport(lambda request: (503, {"Retry-After": "1"}, b"{}"))

The fake is written from the API reference, not from this library's client,
so that it can catch the client's mistakes. Runtime code never imports it.
The pytest fixture `fathom_fake` lives in `fathom_events.testing._plugin`,
which is the only module here that needs pytest.
"""

from fathom_events.testing._faults import Fault
from fathom_events.testing._fixture import FakeFathomFixture
from fathom_events.testing._memory import MemoryTransport
from fathom_events.testing._recording import RecordedRequest
from fathom_events.testing._server import FakeFathom

__all__ = ["FakeFathom", "FakeFathomFixture", "Fault", "MemoryTransport", "RecordedRequest"]
