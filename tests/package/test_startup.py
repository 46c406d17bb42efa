"""Start-up: what `import fathom_events` and each command line load, in a fresh interpreter.

No timing here (the measured times are in benchmarks/README.md): each test
runs a new interpreter and looks at ``sys.modules`` when it ends. (``python -X
importtime`` would not do: it does not list a module that ``importlib.import_module``
loads, which is how the front door and the command line load theirs.)
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fathom_events
from fathom_events.testing import FakeFathom

TOKEN = "startup-test-token"
# The modules of the client: what calling the API needs, never what --help needs.
CLIENT_MODULES = {
    "fathom_events._client",
    "fathom_events._http._aiohttp",
    "fathom_events._blocking",
    "fathom_events._events",
    "fathom_events._bulk",
    "fathom_events._pagination",
}
# Heavy libraries (OpenTelemetry is the application's to import), the TLS test tools, and
# the test fake with its server side.
HEAVY = ("aiohttp", "anyio", "rich.console", "opentelemetry", "fathom_events.testing", "trustme")
# The command line's rooms that only running a command needs.
COMMANDS = {
    "fathom_events._cli._commands",
    "fathom_events._cli._demo",
    "fathom_events._cli._export",
    "fathom_events._cli._fakeserver",
    "fathom_events._cli._output",
    "fathom_events._cli._sync",
    "fathom_events._cli._syncfile",
}
# Imports the package, then writes sys.modules to the file named by its first argument.
IMPORT_ONLY = """\
import sys, fathom_events
open(sys.argv[1], "w").write("\\n".join(sorted(sys.modules)))
"""
# Runs what follows it as `python -m fathom_events` does, then writes sys.modules to a file.
ENTRY_POINT = """\
import atexit, runpy, sys
listing = sys.argv.pop(1)
atexit.register(lambda: open(listing, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("fathom_events", run_name="__main__", alter_sys=True)
"""


def test_the_modules_named_here_exist() -> None:
    """Every module this file says must not load exists: a name gone stale would pass vacuously."""
    package = Path(fathom_events.__file__).parent
    for module in CLIENT_MODULES | COMMANDS:
        parts = module.split(".")[1:]
        path = package.joinpath(*parts)
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def loaded_by(code: str, *args: str, folder: Path) -> tuple[int, set[str]]:
    """The exit code of ``python -c code [args]`` and the modules loaded when it ended.

    ``code`` writes them to the file named by ``sys.argv[1]``.
    """
    listing = folder / "modules.txt"
    env = {k: v for k, v in os.environ.items() if k != "FATHOM_API_TOKEN"}
    done = subprocess.run(  # noqa: S603 - our own interpreter running a fixed script
        [sys.executable, "-c", code, str(listing), *args],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    return done.returncode, set(listing.read_text().split())


def heavy(modules: set[str]) -> set[str]:
    """Those of ``modules`` that are a heavy library, the fake, or the client."""
    found = {m for m in modules if m in CLIENT_MODULES}
    return found | {m for m in modules for h in HEAVY if m == h or m.startswith(h + ".")}


def command_line(*args: str, folder: Path) -> tuple[int, set[str]]:
    """``fathom-events ARGS`` through its real entry point: its exit code and modules loaded."""
    return loaded_by(ENTRY_POINT, *args, folder=folder)


def test_importing_the_package_loads_only_its_front_door(tmp_path: Path) -> None:
    """`import fathom_events` loads no aiohttp, anyio, rich, redis, fake or client: the door."""
    _, modules = loaded_by(IMPORT_ONLY, folder=tmp_path)
    assert "fathom_events" in modules
    assert heavy(modules) == set()
    assert redis_modules(modules) == set()
    assert {m for m in modules if m.startswith(("rich", "attr", "cattrs"))} == set()
    assert {m for m in modules if m.startswith("fathom_events.")} == {"fathom_events._version"}


def test_importing_the_package_reads_no_setting_and_loads_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With FATHOM_EVENTS_LOG and FATHOM_API_BASE_URL set, the import stays the front door.

    The settings are read by the first client, not by the import: no logging, no ssl,
    no proxy lookup (urllib.request), and never the TLS test tools.
    """
    monkeypatch.setenv("FATHOM_EVENTS_LOG", "debug")
    monkeypatch.setenv("FATHOM_API_BASE_URL", "https://api.example.test/v1")
    _, modules = loaded_by(IMPORT_ONLY, folder=tmp_path)
    assert {m for m in modules if m.startswith("fathom_events.")} == {"fathom_events._version"}
    new = {"logging", "ssl", "urllib.request", "trustme", "cryptography"}
    assert {m for m in modules for n in new if m == n or m.startswith(n + ".")} == set()


def redis_modules(modules: set[str]) -> set[str]:
    """Those of ``modules`` that are redis-py, or the limiter that uses it."""
    return {m for m in modules if m == "redis" or m.startswith("redis.")} | (
        modules & {"fathom_events._redis_limiter"}
    )


def test_neither_the_import_nor_a_client_without_redis_url_loads_redis(tmp_path: Path) -> None:
    """`import fathom_events`, a RateLimit and a client (with a call) load nothing of redis-py."""
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(1, 2)
    code = (
        "import asyncio, sys, fathom_events\n"
        "from fathom_events import AsyncClient, Client, RateLimit\n"
        "limit = RateLimit(100, 60)\n"
        "async def call():\n"
        "    async with AsyncClient(sys.argv[2], sys.argv[3], rate_limit=limit) as client:\n"
        "        await client.events.list('SITE1')\n"
        "asyncio.run(call())\n"
        "with Client(sys.argv[2], sys.argv[3], rate_limit=limit) as client:\n"
        "    client.events.list('SITE1')\n"
        "open(sys.argv[1], 'w').write('\\n'.join(sorted(sys.modules)))\n"
    )
    with fake.serve_in_thread() as url:
        code_exit, modules = loaded_by(code, TOKEN, url, folder=tmp_path)
    assert code_exit == 0
    assert len(fake.requests) == 2  # both calls were made
    assert "fathom_events._client" in modules
    assert redis_modules(modules) == set()


def test_a_client_with_redis_url_loads_redis(tmp_path: Path) -> None:
    """A client given a redis_url does load redis-py (the test above could not pass by accident)."""
    code = (
        "import sys\n"
        "from fathom_events import AsyncClient, RateLimit\n"
        "AsyncClient(sys.argv[2], rate_limit=RateLimit(1, redis_url='redis://127.0.0.1:1'))\n"
        "open(sys.argv[1], 'w').write('\\n'.join(sorted(sys.modules)))\n"
    )
    code_exit, modules = loaded_by(code, TOKEN, folder=tmp_path)
    assert code_exit == 0
    assert {"redis.asyncio", "fathom_events._redis_limiter"} <= redis_modules(modules)


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        pytest.param(["--help"], 0, id="help"),
        pytest.param(["--version"], 0, id="version"),
        pytest.param(["list", "--help"], 0, id="list-help"),
        pytest.param(["sync", "--help"], 0, id="sync-help"),
        pytest.param([], 2, id="no-command"),
        pytest.param(["list"], 2, id="missing-argument"),
        pytest.param(["list", "S", "--bogus"], 2, id="unknown-option"),
        pytest.param(["pull", "S", "--format", "xml"], 2, id="bad-choice"),
        pytest.param(["--base-url", "http://x", "demo"], 2, id="option-not-for-command"),
        pytest.param(["list", "S", "--rate-limit", "0/60"], 2, id="bad-rate-limit"),
    ],
)
def test_help_version_and_usage_errors_load_no_client(
    args: list[str], exit_code: int, tmp_path: Path
) -> None:
    """--help, --version and a usage error load no client module, aiohttp, rich console or fake."""
    code, modules = command_line(*args, folder=tmp_path)
    assert code == exit_code
    assert heavy(modules) == set()
    assert modules & COMMANDS == set()


def test_a_command_loads_the_client_but_not_the_fake(tmp_path: Path) -> None:
    """`list` loads the client and aiohttp, never the fake, aiohttp.web, `demo` or `fake-server`."""
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(1, 2)
    with fake.serve_in_thread() as url:
        code, modules = command_line(
            "list", "SITE1", "--token", TOKEN, "--base-url", url, folder=tmp_path
        )
    assert (code, len(fake.requests)) == (0, 1)  # the command ran to its end
    assert {"fathom_events._client", "fathom_events._cli._commands", "aiohttp"} <= modules
    assert {m for m in modules if m.startswith(("aiohttp.web", "fathom_events.testing"))} == set()
    assert modules & {"fathom_events._cli._demo", "fathom_events._cli._fakeserver"} == set()


# Two clients call the fake at sys.argv[2], one without on_event and one with; sys.argv[3]
# "hidden" first makes OpenTelemetry unimportable, as it is without the otel extra.
TWO_CALLS = """\
import asyncio, sys
hidden = sys.argv[3] == "hidden"
if hidden:
    class Hide:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name.partition(".")[0] == "opentelemetry":
                raise ModuleNotFoundError(name)
            return None
    sys.meta_path.insert(0, Hide)
import fathom_events
seen = []
async def main():
    async with fathom_events.AsyncClient(TOKEN, sys.argv[2]) as plain:
        assert (plain._observer is None) == hidden, plain._observer
        await plain.events.list("SITE1")
    async with fathom_events.AsyncClient(TOKEN, sys.argv[2], on_event=seen.append) as watched:
        await watched.events.list("SITE1")
asyncio.run(main())
kinds = [type(record).__name__ for record in seen]
assert kinds == ["CallStarted", "RequestSent", "AnswerReceived", "CallFinished"], kinds
open(sys.argv[1], "w").write("\\n".join(sorted(sys.modules)))
""".replace("TOKEN", repr(TOKEN))


@pytest.mark.parametrize("opentelemetry", ["hidden", "installed"])
def test_calls_load_no_opentelemetry_the_application_did_not(
    opentelemetry: str, tmp_path: Path
) -> None:
    """Without the otel extra, or with it and an application that never imported it, calls
    (watched or not) work and load nothing of OpenTelemetry; without it and on_event, no
    observer is made."""
    fake = FakeFathom({TOKEN: ["*"]})
    fake.seed(1, 2)
    with fake.serve_in_thread() as url:
        code, modules = loaded_by(TWO_CALLS, url, opentelemetry, folder=tmp_path)
    assert (code, len(fake.requests)) == (0, 2)
    assert {m for m in modules if m.partition(".")[0] == "opentelemetry"} == set()
    assert "fathom_events._observe._otel" not in modules


@pytest.fixture(name="front_door")
def _front_door() -> ast.Module:
    return ast.parse(Path(fathom_events.__file__).read_text())


def test_the_lazy_table_and_the_typed_imports_agree(front_door: ast.Module) -> None:
    """Each public name is looked up in the module that type checkers import it from."""
    typed: dict[str, str] = {}
    checking = next(
        node
        for node in front_door.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING"
    )
    for node in checking.body:
        assert isinstance(node, ast.ImportFrom)
        typed.update({alias.name: "." * node.level + (node.module or "") for alias in node.names})
    assert typed == fathom_events._LOCATIONS
    assert set(typed) == set(fathom_events.__all__) - {"__version__"}


def test_a_public_name_is_the_object_of_its_module() -> None:
    """fathom_events.X is the very object its private module defines, and stays bound."""
    from fathom_events import _client  # noqa: PLC0415

    assert fathom_events.AsyncClient is _client.AsyncClient
    assert vars(fathom_events)["AsyncClient"] is _client.AsyncClient


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name the front door does not hold raises AttributeError naming it, as any module does."""
    with pytest.raises(AttributeError, match="module 'fathom_events' has no attribute 'Nope'"):
        _ = fathom_events.Nope  # type: ignore[attr-defined]


def test_dir_lists_every_public_name_before_it_is_loaded(tmp_path: Path) -> None:
    """dir(fathom_events) lists every name of __all__ and loads none of them."""
    code = (
        "import sys, fathom_events\n"
        "missing = set(fathom_events.__all__) - set(dir(fathom_events))\n"
        "open(sys.argv[1], 'w').write('\\n'.join(sorted({*sys.modules, *missing})))\n"
    )
    _, modules = loaded_by(code, folder=tmp_path)
    assert {m for m in modules if m.startswith("fathom_events.")} == {"fathom_events._version"}
    assert modules & set(fathom_events.__all__) == set()
    assert set(fathom_events.__all__) <= set(dir(fathom_events))


def test_the_startup_benchmark_runs() -> None:
    """`python -m benchmarks.startup` runs each case and prints its row (nothing is timed here)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", "--runs", "1"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows][:3] == [
        "python -c pass",
        "import fathom_events",
        "fathom-events --version",
    ]
    assert len(rows) == 7
