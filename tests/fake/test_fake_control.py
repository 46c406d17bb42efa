"""Faults described in JSON: `FakeFathom.inject_spec` and the control endpoint `/_fake/faults`.

Over real HTTP with a plain aiohttp.ClientSession, as a test suite in another
language would script the fake between its tests.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from yarl import URL

from fathom_events.testing import FakeFathom, Fault
from fathom_events.testing._control import parse_fault_spec
from tests.fake.test_fake_server import events_path
from tests.support.helpers import TOKEN, Api, Reply

SITE = "CDBUGS"
CREATES_503 = {"method": "POST", "path": "/v1/sites/*/events", "fault": "respond", "status": 503}


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom(control_endpoint=True)
    fake.add_site(SITE)
    return fake


async def control(api: Api, method: str, body: bytes | None = None) -> Reply:
    """A request to /_fake/faults, beside /v1, with no token and no headers of the API."""
    url = URL(api.base_url).with_path(FakeFathom.CONTROL_PATH)
    async with api.session.request(method, url, data=body) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


async def creates(api: Api, count: int) -> list[int]:
    return [
        (await api.call("POST", events_path(), body={"name": f"E{n}"})).status for n in range(count)
    ]


# -- the control endpoint --------------------------------------------------------------


async def test_posted_faults_hit_the_next_matching_requests(api: Api, fake: FakeFathom) -> None:
    """POST /_fake/faults injects the described fault: "the next two creates answer 503"."""
    reply = await control(api, "POST", json.dumps({**CREATES_503, "times": 2}).encode())
    assert (reply.status, reply.json()) == (200, {"pending_faults": 2})
    assert (await api.call("GET", events_path())).status == 200
    assert await creates(api, 3) == [503, 503, 200]
    assert (await control(api, "GET")).json() == {"pending_faults": 0}
    assert [request.path for request in fake.requests] == ["/v1/sites/CDBUGS/events"] * 4


async def test_delete_clears_the_faults(api: Api) -> None:
    """DELETE /_fake/faults drops every pending fault."""
    await control(api, "POST", json.dumps({**CREATES_503, "times": 5}).encode())
    reply = await control(api, "DELETE")
    assert (reply.status, reply.json()) == (200, {"pending_faults": 0})
    assert await creates(api, 1) == [200]


async def test_control_requests_take_no_fault_and_spend_no_budget() -> None:
    """A fault for every path, and a spent budget, leave the control endpoint answering."""
    fake = FakeFathom(control_endpoint=True, rate_limit=(1, 60))
    fake.inject(Fault.respond(500), times=3)
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        api = Api(session, base_url)
        assert (await control(api, "GET")).json() == {"pending_faults": 3}
        fake.clear_faults()
        assert (await api.call("GET", "/token")).status == 200
        assert (await control(api, "POST", json.dumps(CREATES_503).encode())).status == 200
        assert (await api.call("GET", "/token")).status == 429
    assert fake.pending_faults() == 1
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b"{}", "'fault' is missing"),
        (b'{"fault": "explode"}', "'fault' must be one of"),
        (b'{"fault": 7}', "'fault' must be one of"),
        (b'{"fault": "hang", "status": 503}', "unknown field 'status' for fault 'hang'"),
        (b'{"fault": "respond"}', "'status' is missing"),
        (b'{"fault": "respond", "status": "503"}', "'status' must be an integer"),
        (b'{"fault": "respond", "status": true}', "'status' must be an integer"),
        (b'{"fault": "respond", "status": 42}', "status must be an integer from 100 to 599"),
        (b'{"fault": "respond", "status": 503, "json": {}, "text": "x"}', "json or text"),
        (b'{"fault": "respond", "status": 503, "headers": {"X": 1}}', "'headers' must be"),
        (b'{"fault": "delay", "seconds": -1}', "must not be negative"),
        (b'{"fault": "delay", "seconds": "1"}', "'seconds' must be a number"),
        (b'{"fault": "delay", "seconds": 1e999}', "'seconds' must be a number"),
        (b'{"fault": "hang", "times": 0}', "'times' must be an integer >= 1"),
        (b'{"fault": "hang", "times": 1.5}', "'times' must be an integer >= 1"),
        (b'{"fault": "hang", "method": ["GET"]}', "'method' must be a string"),
        (b'{"fault": "hang", "path": null}', "'path' must be a string"),
        (b'{"fault": "disconnect", "after_action": "yes"}', "'after_action' must be true or"),
        (b'{"fault": "rate_limited", "retry_after": 5}', "'retry_after' must be a string or"),
        (
            b'{"fault": "respond", "status": 503, "headers": {"X-A": "1\\r\\nSet-Cookie: x"}}',
            "must be text without line breaks or controls",
        ),
        (b'{"fault": "respond", "status": 503, "headers": {"X A": "1"}}', "not an HTTP token"),
        (
            b'{"fault": "respond", "status": 503, "content_type": "text/plain\\r\\nX: y"}',
            "must be text without line breaks",
        ),
        (b'{"fault": "rate_limited", "retry_after": "1\\n"}', "without line breaks"),
        (b'{"fault": "respond", "status": 503, "json": NaN}', "no NaN or infinity"),
        (
            b'{"fault": "respond", "status": 200, "headers": {"Content-Length": "abc"}}',
            "the fake frames its answers itself",
        ),
        (
            b'{"fault": "respond", "status": 200, "headers": {"transfer-encoding": "chunked"}}',
            "the fake frames its answers itself",
        ),
    ],
)
async def test_bad_descriptions_are_400_with_the_reason(
    api: Api, fake: FakeFathom, body: bytes, problem: str
) -> None:
    """A malformed fault description answers 400 {"error": why}, and injects nothing."""
    reply = await control(api, "POST", body)
    assert reply.status == 400
    assert problem in reply.json()["error"]
    assert fake.pending_faults() == 0
    with pytest.raises(ValueError, match="fault description") as raised:
        fake.inject_spec(body)
    assert str(raised.value) == reply.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("PUT", "/_fake/faults", 405), ("GET", "/_fake/other", 404), ("GET", "/_fake/", 404)],
)
async def test_the_control_endpoint_knows_only_its_path(
    api: Api, fake: FakeFathom, method: str, path: str, status: int
) -> None:
    """Beside /_fake/faults (GET, POST, DELETE) the control paths answer 404 or 405 as JSON."""
    async with api.session.request(method, URL(api.base_url).with_path(path)) as resp:
        assert resp.status == status
        assert "error" in await resp.json()
        if status == 405:
            assert resp.headers["Allow"] == "GET, POST, DELETE"
    assert fake.requests == []


async def test_the_control_endpoint_is_off_unless_asked_for() -> None:
    """On a plain FakeFathom(), /_fake/faults is an unknown API path: 404, nothing injected."""
    fake = FakeFathom()
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        reply = await control(Api(session, base_url), "POST", json.dumps(CREATES_503).encode())
    assert reply.status == 404
    assert fake.pending_faults() == 0


# -- the description ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ({"fault": "respond", "status": 503}, Fault.respond(503)),
        (
            {
                "fault": "respond",
                "status": 500,
                "json": {"error": "Down."},
                "headers": {"X-Why": "test"},
                "after_action": True,
            },
            Fault.respond(
                500, json={"error": "Down."}, headers={"X-Why": "test"}, after_action=True
            ),
        ),
        (
            {"fault": "respond", "status": 502, "text": "<p>", "content_type": "text/html"},
            Fault.respond(502, text="<p>", content_type="text/html"),
        ),
        ({"fault": "rate_limited"}, Fault.rate_limited()),
        ({"fault": "rate_limited", "retry_after": None}, Fault.rate_limited(None)),
        ({"fault": "rate_limited", "retry_after": "120"}, Fault.rate_limited("120")),
        ({"fault": "html", "status": 504}, Fault.html(504)),
        ({"fault": "delay", "seconds": 2.5}, Fault.delay(2.5)),
        ({"fault": "hang"}, Fault.hang()),
        ({"fault": "disconnect", "after_action": True}, Fault.disconnect(after_action=True)),
        ({"fault": "truncated_json"}, Fault.truncated_json()),
        ({"fault": "malformed_json", "body": "{"}, Fault.malformed_json("{")),
        ({"fault": "huge_body", "size_bytes": 1024}, Fault.huge_body(1024)),
        ({"fault": "trickle", "bytes_per_chunk": 8, "interval": 0.1}, Fault.trickle(8, 0.1)),
    ],
)
def test_every_fault_can_be_described(spec: dict[str, Any], fault: Fault) -> None:
    """Each Fault classmethod is a "fault" whose keywords are the description's other fields."""
    parsed = parse_fault_spec(json.dumps(spec))
    assert (parsed.fault, parsed.method, parsed.path, parsed.times) == (fault, "*", "*", 1)


async def test_inject_spec_injects_as_inject_does() -> None:
    """fake.inject_spec(JSON text) is fake.inject(fault, method=, path=, times=)."""
    fake = FakeFathom()
    fake.add_site(SITE)
    fake.inject_spec(json.dumps({**CREATES_503, "method": "post", "times": 2}))
    assert fake.pending_faults() == 2
    async with fake.serve() as base_url, aiohttp.ClientSession() as session:
        api = Api(session, base_url)
        assert (await api.call("GET", events_path(), token=TOKEN)).status == 200
        assert await creates(api, 3) == [503, 503, 200]
