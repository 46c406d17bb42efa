"""The fault matrix on the blocking face: the same cases, through Client's portal."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest

from fathom_events import Client, FathomError
from fathom_events.testing import FakeFathom
from tests.limits.test_fault_matrix import (
    ATTEMPT_TIMEOUT,
    CASES,
    ENDPOINTS,
    METHODS,
    Case,
    check_outcome,
)
from tests.support.faces import TRANSPORTS, user_transport
from tests.support.helpers import SITE, TOKEN, FakeTime


def blocking_call(client: Client, endpoint: str, event_id: str) -> Callable[[], object]:
    events = client.events
    calls: dict[str, Callable[[], object]] = {
        "list": lambda: events.list(SITE),
        "get": lambda: events.get(SITE, event_id),
        "create": lambda: events.create(SITE, "New goal"),
        "update": lambda: events.update(SITE, event_id, name="Renamed"),
        "delete": lambda: events.delete(SITE, event_id),
        "wipe": lambda: events.wipe(SITE, event_id),
    }
    return calls[endpoint]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_blocking_fault_matrix(
    endpoint: str, case: Case, transport: str, fake_time: FakeTime
) -> None:
    """The blocking client ends each endpoint-and-fault case as the async one, on any transport."""
    fake = FakeFathom()
    stored = fake.add_event(SITE, "Existing")
    fake.inject(case.fault, method=METHODS[endpoint], path=f"/v1/sites/{SITE}/events*")
    outcome: object = None
    with (
        fake.serve_in_thread() as url,
        Client(
            TOKEN,
            url,
            timeout=ATTEMPT_TIMEOUT,
            max_response_bytes=1_000_000,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            transport=user_transport() if transport == "user" else None,
        ) as client,
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # wipe's, tested elsewhere
                outcome = blocking_call(client, endpoint, stored["id"])()
        except FathomError as error:
            outcome = error
    check_outcome(case, endpoint, outcome, fake, client.requests_sent)
