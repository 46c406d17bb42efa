"""The command line's reach: $FATHOM_API_BASE_URL, --proxy, --trust-env, --ca-bundle,
--client-cert and --client-key, FATHOM_EVENTS_LOG, and fake-server's export lines."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fathom_events._cli import main
from fathom_events.testing import FakeFathom
from tests.cli.test_cli import TOKEN, fake_server_process, run_cli, subprocess_env
from tests.support.proxy import Proxy
from tests.support.readme import python_blocks
from tests.support.tls import Certificates, certificates_fixture

__all__ = ["certificates_fixture"]

CONNECTION_FLAGS = ("--proxy", "--trust-env", "--ca-bundle", "--client-cert", "--client-key")
COMMANDS_THAT_SEND = ("list", "get", "create", "update", "delete", "pull", "sync", "sites")
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="fake")
def _fake() -> FakeFathom:
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(1, 2)
    return fake


def pasted_then(exports: list[str], *python_args: str) -> subprocess.CompletedProcess[str]:
    """``exports`` pasted into a plain shell, then ``python ARGS`` run there; it must succeed."""
    python = " ".join(shlex.quote(arg) for arg in (sys.executable, *python_args))
    shell = subprocess.run(  # noqa: S603 - the lines fake-server printed, in a plain shell
        ["/bin/sh", "-c", "; ".join([*(line.strip() for line in exports), python])],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    return shell


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", [*COMMANDS_THAT_SEND, "export", "token"])
def test_every_command_that_sends_takes_the_reach_flags(command: str) -> None:
    """Each command that sends a request lists --proxy, --trust-env and the TLS files in --help."""
    ran = run_cli(command, "--help")
    assert ran.code == 0
    for flag in CONNECTION_FLAGS:
        assert flag in ran.out, (command, flag)


def test_the_base_url_comes_from_the_environment(
    fake: FakeFathom, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --base-url, $FATHOM_API_BASE_URL says where to send; --base-url still wins."""
    with fake.serve_in_thread() as url:
        monkeypatch.setenv("FATHOM_API_BASE_URL", url)
        code, out, _ = run(capsys, "list", "SITE1", "--token", TOKEN)
        assert code == 0
        assert len(out.splitlines()) == 2
        monkeypatch.setenv("FATHOM_API_BASE_URL", "https://elsewhere.example.test/v1")
        assert run(capsys, "list", "SITE1", "--token", TOKEN, "--base-url", url)[0] == 0
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://x", "fathom-events: $FATHOM_API_BASE_URL must be an http(s) URL with a host"),
        (
            "http://fathom.example/v1",
            "fathom-events: $FATHOM_API_BASE_URL=http://fathom.example/v1: plain http:// would",
        ),
    ],
)
def test_a_bad_base_url_in_the_environment_is_a_usage_error_naming_it(
    value: str, message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A $FATHOM_API_BASE_URL the client refuses: exit 2, one line naming the variable."""
    monkeypatch.setenv("FATHOM_API_BASE_URL", value)
    code, _, err = run(capsys, "list", "S", "--token", TOKEN)
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_https_with_the_ca_bundle_and_a_client_certificate(
    fake: FakeFathom, certificates: Certificates, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ca-bundle trusts the test CA; --client-cert presents the client's certificate (mTLS)."""
    context = certificates.server_context(require_client_cert=True)
    with fake.serve_in_thread(ssl=context) as url:
        connection = ["--token", TOKEN, "--base-url", url]
        ca = ["--ca-bundle", str(certificates.ca_file)]
        cert = ["--client-cert", str(certificates.client_cert_file)]
        assert run(capsys, "list", "SITE1", *connection, *ca, *cert)[0] == 0
        code, _, err = run(capsys, "list", "SITE1", *connection)
    assert code == 1
    assert "certificate is not trusted" in err
    assert "--ca-bundle FILE" in err  # the command line's words for ssl=
    assert len(fake.requests) == 1


def test_a_client_key_in_its_own_file(
    fake: FakeFathom,
    certificates: Certificates,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """--client-key FILE gives the key when --client-cert holds only the certificate."""
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    certificates.client.cert_chain_pems[0].write_to_path(cert)
    certificates.client.private_key_pem.write_to_path(key)
    context = certificates.server_context(require_client_cert=True)
    with fake.serve_in_thread(ssl=context) as url:
        files = ["--ca-bundle", str(certificates.ca_file), "--client-cert", str(cert)]
        args = ["list", "SITE1", "--token", TOKEN, "--base-url", url, *files]
        assert run(capsys, *args, "--client-key", str(key))[0] == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ca-bundle", "{missing}"], "--ca-bundle {missing}: cannot be read"),
        (["--ca-bundle", "{garbage}"], "--ca-bundle {garbage}: not a PEM certificate bundle"),
        (["--client-cert", "{missing}"], "--client-cert {missing}: cannot be read"),
        (["--client-cert", "{garbage}"], "--client-cert {garbage}: not a PEM certificate"),
        (["--client-key", "{garbage}"], "--client-key needs --client-cert"),
    ],
)
def test_bad_tls_files_are_usage_errors_before_anything_is_sent(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TLS file that cannot be read or is not PEM: exit 2, one line naming the option."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    paths = {"missing": str(tmp_path / "missing.pem"), "garbage": str(garbage)}
    args = ["list", "S", "--token", TOKEN, "--base-url", "https://127.0.0.1:9/v1"]
    code, _, err = run(capsys, *args, *[flag.format(**paths) for flag in flags])
    assert code == 2
    assert err.startswith(f"fathom-events: {message.format(**paths)}")
    assert err.count("\n") == 1


def test_through_a_proxy_whose_password_is_never_printed(
    fake: FakeFathom, capsys: pytest.CaptureFixture[str]
) -> None:
    """--proxy with credentials carries the requests; a refusal names the proxy, not them."""
    proxy = Proxy(credentials=("me", "s3cret-proxy-pass"))
    with proxy.serve_in_thread() as proxy_url, fake.serve_in_thread() as url:
        connection = ["--token", TOKEN, "--base-url", url]
        good = proxy_url.replace("://", "://me:s3cret-proxy-pass@")
        assert run(capsys, "list", "SITE1", *connection, "--proxy", good)[0] == 0
        bad = proxy_url.replace("://", "://me:wrong-pass@")
        code, out, err = run(capsys, "list", "SITE1", *connection, "--proxy", bad, "--json")
    assert proxy.seen.lines[0] == f"GET {url}/sites/SITE1/events?limit=100 HTTP/1.1"
    assert len(fake.requests) == 1
    assert code == 1
    assert "407" in err
    assert "wrong-pass" not in out + err


def test_a_bad_proxy_is_a_usage_error_without_its_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--proxy that is no http(s) URL: exit 2, one line naming --proxy, its password hidden."""
    args = ["list", "S", "--token", TOKEN, "--proxy", "socks5://me:pw-hidden@proxy.example"]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.startswith("fathom-events: --proxy: must be an http(s) URL with a host")
    assert "pw-hidden" not in err


def test_trust_env_reads_the_proxy_from_the_environment(
    fake: FakeFathom, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--trust-env sends through $HTTP_PROXY; without it the variable is not read."""
    proxy = Proxy()
    with proxy.serve_in_thread() as proxy_url, fake.serve_in_thread() as url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        connection = ["--token", TOKEN, "--base-url", url]
        assert run(capsys, "list", "SITE1", *connection)[0] == 0
        assert proxy.seen.lines == []
        assert run(capsys, "list", "SITE1", *connection, "--trust-env")[0] == 0
    assert len(proxy.seen.lines) == 1


def test_plain_http_through_a_proxy_off_loopback_needs_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--proxy not on loopback for a plain http:// URL: exit 2 saying --allow-insecure-http."""
    args = ["list", "S", "--token", TOKEN, "--base-url", "http://127.0.0.1:9/v1"]
    code, _, err = run(capsys, *args, "--proxy", "http://proxy.example:3128")
    assert code == 2
    assert err.startswith("fathom-events: --proxy: http://proxy.example:3128 (proxy=) is not on")
    assert "pass --allow-insecure-http if you really mean it" in err


def test_fathom_events_log_debug_writes_each_request_to_stderr(fake: FakeFathom) -> None:
    """FATHOM_EVENTS_LOG=debug: the real command line writes a line per request and answer."""
    with fake.serve_in_thread() as url:
        env = subprocess_env(FATHOM_EVENTS_LOG="debug", FATHOM_API_TOKEN=TOKEN)
        ran = run_cli("list", "SITE1", "--base-url", url, env=env)
    assert ran.code == 0, ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(
        f" DEBUG fathom_events.http: request GET {url}/sites/SITE1/events?limit=100"
    )
    assert re.search(r" DEBUG fathom_events\.http: answer 200 to GET .* in [\d.]+ s$", lines[1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_fake_server_prints_the_export_lines_to_paste() -> None:
    """After its ready line fake-server prints `export` lines that point a shell at it."""
    exports: list[str] = []
    args = ("--sites", "1", "--events-per-site", "1")
    with fake_server_process(*args, exports=exports) as (process, line):
        found = re.match(r"serving a fake Fathom API at (http://127\.0\.0\.1:\d+/v1): ", line)
        assert found, line
        assert exports == [
            f"export FATHOM_API_BASE_URL={found[1]}\n",
            f"export FATHOM_API_TOKEN={FakeFathom.DEFAULT_TOKEN}\n",
        ]
        shell = pasted_then(exports, "-m", "fathom_events", "list", "SITE1")
        assert len(shell.stdout.splitlines()) == 1
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert (process.returncode, err) == (0, "")
    assert out == "stopped after 1 request\n"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_fake_server_prints_no_token_of_your_own() -> None:
    """With --token, fake-server's export lines name the base URL only."""
    exports: list[str] = []
    with fake_server_process("--token", TOKEN, exports=exports) as (process, line):
        assert line.startswith("serving a fake Fathom API at ")
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    (export,) = exports
    assert export.startswith("export FATHOM_API_BASE_URL=http://127.0.0.1:")
    assert out == "stopped after 0 requests\n"
    assert TOKEN not in export + out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /bin/sh")
def test_the_quick_start_runs_as_written_against_fake_server(tmp_path: Path) -> None:
    """fake-server --site CDBUGS, its export lines pasted: the README's quick start runs as is."""
    (block,) = [block for block in python_blocks() if block.section == "Quick start (async)"]
    script = tmp_path / "quick_start.py"
    script.write_text(block.source)
    exports: list[str] = []
    with fake_server_process("--site", "CDBUGS", exports=exports) as (process, line):
        assert "4 sites (SITE1..SITE3, CDBUGS)" in line
        pasted_then(exports, str(script))
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    assert out == "stopped after 5 requests\n"  # the quick start's five calls
