"""The package's import graph: every module imports alone, no cycle, and imports point down.

The graph is read from the source (``ast``): every ``import`` and ``from ...
import`` counts, in a function body or under ``if TYPE_CHECKING:`` as much as
at the top, since a cycle that only the type checker follows still means a
protocol is missing.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

import fathom_events

PACKAGE = "fathom_events"
PACKAGE_DIR = Path(fathom_events.__file__).parent

#: The rooms of the package, lowest first, as ARCHITECTURE.md describes them. A module
#: may import its own layer (without a cycle) or a lower one, never a higher one. A room
#: is a module, or a subpackage with everything in it; ``__init__`` is the front door.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        # The public data, errors, the version string and the import-free defaults.
        "types exceptions _version _defaults",
        # Input checks and value display, and the loggers (FATHOM_EVENTS_LOG), for every
        # layer above.
        "_checks _logs",
        "_converter",
        "_protocol",
        "_loops",  # the running asyncio loop, asked for with an error saying what works
        # Watching calls: the on_event records, the observer that makes them at each step
        # (the retry loop, the limits and the sender call it), the OpenTelemetry bridge.
        "_observe",
        # Sending: the public transport contract, the one sender, the aiohttp transport
        # and its sessions per event loop. Below the options, which name the contract
        # (their ``transport`` field); the sender is made from the options' values.
        "_http",
        # Around the no-I/O core: options, limits (the in-flight cap shared across loops,
        # the rate limiter, the cool-down, and the budget shared through Redis), retries
        # (the loop around the sender), paging, bulk (the algorithms and their data).
        "_options _limits _redis_limiter _retry _pagination _bulk _bulk_types _sends _builtins",
        "_client _events _sites _token",  # the async client and its resources
        "_blocking",  # the blocking client
        "__init__",  # the front door: re-exports the rooms below it
        "_cli testing",  # on the public names; testing is never imported by the runtime
        "__main__",
    )
)
#: What bulk work may reach, directly or not: its data and the protocol core, never the
#: client, its resources, its transport or its retries (it works through a protocol).
BULK_REACH = {"_bulk", "_bulk_types", "_pagination", "_protocol", "_converter", "_checks",
              "types", "exceptions", "_sends"}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def room(module: str) -> str:
    """The room a module belongs to: its first name inside the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int:
    for number, layer in enumerate(LAYERS):
        if room(module) in layer:
            return number
    raise AssertionError(f"{module} is in no layer: place its room in LAYERS")


def imported(module: str) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its source."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from x import y`` imports the module x.y when there is one, else x.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
                for alias in node.names
            ]
        found.update(t for t in targets if t == PACKAGE or t.startswith(PACKAGE + "."))
    unknown = found - modules().keys()
    assert not unknown, f"{module} imports modules that do not exist: {sorted(unknown)}"
    return found - {module}


@cache
def graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(imported(module)) for module in modules()}


def find_cycle(edges: dict[str, frozenset[str]]) -> list[str] | None:
    """One cycle of the graph as a path that starts and ends at the same module, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(edges[node]):
            if (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(edges):
        if (cycle := visit(start)) is not None:
            return cycle
    return None


def reach(start: str) -> set[str]:
    """Every module ``start`` imports, directly or not."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph()[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module imports cleanly when it is the first of the package to be imported.

    One interpreter for all, for speed: before each module, every module of the
    package is dropped from ``sys.modules``, so each import starts the package
    afresh (third-party libraries stay loaded). Warnings are errors.
    """
    script = textwrap.dedent(
        f"""
        import importlib, sys, traceback
        failed = []
        for name in {sorted(modules())!r}:
            ours = [m for m in sys.modules if m.partition(".")[0] == {PACKAGE!r}]
            for loaded in ours:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except BaseException:
                failed.append(name + ":\\n" + traceback.format_exc())
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
        """
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PACKAGE_DIR.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_graph_reads_every_kind_of_import() -> None:
    """Relative, absolute, from-package and TYPE_CHECKING-only imports all become edges."""
    assert f"{PACKAGE}._bulk" in graph()[f"{PACKAGE}._events"]  # from . import _bulk
    assert f"{PACKAGE}._converter" in graph()[f"{PACKAGE}._protocol"]  # from ._converter import
    assert f"{PACKAGE}._cli._app" in graph()[f"{PACKAGE}._cli"]  # imported inside main()
    assert f"{PACKAGE}.testing._api" in graph()[f"{PACKAGE}.testing._wire"]  # TYPE_CHECKING only
    assert f"{PACKAGE}._cli" in graph()[f"{PACKAGE}.__main__"]


def test_no_import_cycle_even_for_the_type_checker() -> None:
    """No chain of imports, TYPE_CHECKING ones included, leads back to where it started."""
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()) or [])


def test_find_cycle_finds_one() -> None:
    """The cycle finder is not blind: it reports a cycle made on purpose, as a path."""
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module: str) -> None:
    """A module imports only from its own layer or the layers below it, as ARCHITECTURE.md says."""
    upward = sorted(other for other in graph()[module] if layer_of(other) > layer_of(module))
    assert not upward, f"{module} (layer {layer_of(module)}) reaches up to {upward}"


def test_bulk_reaches_nothing_of_the_client() -> None:
    """Bulk work reaches its data and the protocol core only: the client comes as a protocol."""
    rooms = {room(module) for module in reach(f"{PACKAGE}._bulk")}
    assert rooms <= BULK_REACH, sorted(rooms - BULK_REACH)


def test_architecture_describes_every_room() -> None:
    """ARCHITECTURE.md names, in backticks, every room of LAYERS and every module on disk."""
    text = (PACKAGE_DIR.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    on_disk = {room(module) for module in modules()}
    rooms = on_disk | {name for layer in LAYERS for name in layer}
    named = [name for name in rooms if re.search(rf"`{re.escape(name)}(\.py|/|`)", text)]
    missing = sorted(rooms - set(named))
    assert not missing, f"ARCHITECTURE.md does not describe {missing}"
