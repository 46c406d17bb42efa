"""`fathom-events fake-server` for suites in any language: --rate-limit, --fault, /_fake/faults.

One test runs the real entry point and speaks plain HTTP to it, as a suite in
another language would; the others call `main()` or `run_fake_server` in this
process.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import pytest

from fathom_events._cli import _fakeserver, main
from fathom_events._cli._fakeserver import run_fake_server
from fathom_events._cli._output import Mode, Output
from tests.cli.test_cli import TOKEN, fake_server_args, fake_server_process

CREATE_503 = '{"method": "POST", "path": "/v1/sites/*/events", "fault": "respond", "status": 503}'


def http(
    method: str, url: str, body: dict[str, Any] | None = None, *, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """One plain HTTP request: status, headers and the parsed JSON answer (None if empty)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, dict(answer.headers), json.loads(answer.read() or "null")
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, dict(refused.headers), json.loads(refused.read() or "null")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_fake_server_takes_a_rate_limit_and_faults_at_start_and_while_running() -> None:
    """`fake-server --rate-limit 3/3600 --fault SPEC` applies both; /_fake/faults scripts more."""
    args = ("--sites", "1", "--events-per-site", "0", "--token", TOKEN)
    with fake_server_process(*args, "--rate-limit", "3/3600", "--fault", CREATE_503) as (
        process,
        line,
    ):
        found = re.match(r"serving a fake Fathom API at (http://127\.0\.0\.1:(\d+))/v1: ", line)
        assert found, line
        base, faults = f"{found[1]}/v1", f"{found[1]}/_fake/faults"
        assert "at most 3 requests per 3600 s per token" in line
        assert f"faults: {faults}" in line
        events = f"{base}/sites/SITE1/events"
        assert http("POST", events, {"name": "A"}, token=TOKEN)[0] == 503  # spends nothing
        assert http("POST", events, {"name": "A"}, token=TOKEN)[0] == 200
        down = {"error": "Bad gateway."}
        next_two = {
            "path": "/v1/token",
            "fault": "respond",
            "status": 502,
            "json": down,
            "times": 2,
        }
        status, _, answer = http("POST", faults, next_two)
        assert (status, answer) == (200, {"pending_faults": 2})
        assert http("GET", f"{base}/token", token=TOKEN)[0] == 502
        assert http("DELETE", faults)[2] == {"pending_faults": 0}
        assert http("POST", faults, {"fault": "respond"})[2] == {
            "error": "fault description: 'status' is missing: fault 'respond' needs it"
        }
        assert [http("GET", f"{base}/token", token=TOKEN)[0] for _ in range(2)] == [200, 200]
        status, headers, body = http("GET", f"{base}/token", token=TOKEN)
        assert (status, body) == (429, {"error": "Too Many Attempts."})
        assert 3590 <= int(headers["Retry-After"]) <= 3600
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert (process.returncode, err) == (0, "")
    assert out == "stopped after 6 requests\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["fake-server", "--rate-limit", "2000"],
            (
                "fathom-events fake-server: argument --rate-limit: '2000' is not N/SECONDS"
                " (e.g. 2000/3600: 2000 requests an hour per token; at most ten years)"
            ),
        ),
        (["fake-server", "--rate-limit", "0/60"], "'0/60' is not N/SECONDS"),
        (["fake-server", "--rate-limit", "1/1e20"], "'1/1e20' is not N/SECONDS"),
        (["fake-server", "--rate-limit", "10/0"], "'10/0' is not N/SECONDS"),
        (["fake-server", "--rate-limit", "10/nan"], "'10/nan' is not N/SECONDS"),
        (["fake-server", "--rate-limit", "ten/60"], "'ten/60' is not N/SECONDS"),
        (
            ["--rate-limit", "10/60", "fake-server"],
            (
                "fathom-events fake-server: --rate-limit before fake-server is the client's;"
                " the fake's goes after it: fake-server --rate-limit N/SECONDS"
            ),
        ),
        (
            ["fake-server", "--fault", CREATE_503, "--fault", '{"fault": "hang", "times": 0}'],
            (
                'fathom-events fake-server: --fault \'{"fault": "hang", "times": 0}\':'
                " fault description: 'times' must be an integer >= 1; got 0"
            ),
        ),
        (["fake-server", "--fault", "503"], "fault description: must be a JSON object"),
    ],
)
def test_bad_rate_limit_or_fault_is_a_usage_error(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad --rate-limit (a bare number too) or --fault exits 2 with one line, serving nothing."""

    def never(*_: object) -> None:
        pytest.fail("the fake server started serving")

    monkeypatch.setattr(_fakeserver, "serve_on", never)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("mode", ["json", "plain"])
async def test_ready_line_names_the_limit_and_the_control_endpoint(
    mode: Mode, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ready line gives the rate limit and the faults URL, in JSON and in words."""
    args = fake_server_args(sites=0, fake_rate_limit=(5, 60.0), faults=[CREATE_503])
    stop = asyncio.Event()
    server = asyncio.create_task(run_fake_server(args, Output(mode), stop))
    printed = ""
    for _ in range(100_000):  # turns of the loop, never a real sleep, and a bound
        if "\n" in printed:
            break
        await asyncio.sleep(0)
        printed += capsys.readouterr().out
    assert "\n" in printed, "the fake server printed no ready line"
    first = printed.splitlines()[0]
    if mode == "json":
        ready = json.loads(first)
        assert (ready["rate_limit"], ready["pending_faults"]) == ([5, 60.0], 1)
        assert ready["faults"] == ready["serving"].removesuffix("/v1") + "/_fake/faults"
        faults = ready["faults"]
    else:
        assert "; at most 5 requests per 60 s per token; faults: http://" in first
        faults = first.split("faults: ")[1].split(";")[0]
    async with aiohttp.ClientSession() as session, session.get(faults) as answer:
        assert await answer.json() == {"pending_faults": 1}
    stop.set()
    assert await server == 0
