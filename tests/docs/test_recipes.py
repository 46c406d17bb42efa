"""The docs' recipes run as written, each with its framework, against FakeFathom.

Each recipe's code is taken from the docs page that holds it (by Sybil, through
readme.py; test_docs_examples.py runs every other block of the docs) and
executed; ``AsyncClient()`` in it reads the token from ``FATHOM_API_TOKEN`` and
is pointed at the fake.
Warnings are errors, and every test ends by collecting garbage, so that an
unclosed session or socket fails it.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import gc
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient as AiohttpTestClient
from aiohttp.test_utils import TestServer
from asgiref.sync import async_to_sync, sync_to_async

with warnings.catch_warnings():
    # Starlette 1.x's TestClient wants httpx2, which needs Python 3.11; on 3.10 it runs over
    # httpx and says so with a deprecation warning at import, which must not fail the suite.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", Warning)
    from starlette.testclient import TestClient

from fathom_events.testing import FakeFathom
from tests.support.helpers import SITE, FakeTime
from tests.support.readme import DOCS_RECIPES, point_at_the_fake, python_blocks, recipe

pytest_plugins = ["pytester"]

EVENTS_PATH = f"/sites/{SITE}/events"
# The Python blocks of each recipe, all run by the tests below.
RUN_HERE = {
    "FastAPI and Starlette": 2,
    "aiohttp.web": 1,
    "Django": 2,
    "Celery and other workers": 1,
    "Jupyter": 1,
    "pytest-asyncio": 1,
}


def run(source: str) -> dict[str, Any]:
    """Execute a recipe as a module and return its names."""
    namespace: dict[str, Any] = {"__name__": "recipe"}
    exec(compile(source, "recipe", "exec"), namespace)  # noqa: S102 - our docs' code
    return namespace


def no_warnings_left() -> None:
    """Collect garbage: nothing the recipes made may be reported unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


@pytest.fixture(autouse=True)
def _fathom_env(
    monkeypatch: pytest.MonkeyPatch, fake: FakeFathom, thread_url: str, fake_time: FakeTime
) -> None:
    """AsyncClient() in a recipe takes the token from the environment and talks to the fake."""
    point_at_the_fake(monkeypatch, thread_url, fake_time)
    fake.add_event(SITE, "Signed up")


Recipes = Callable[[str], list[str]]


@pytest.fixture(name="recipes")
def _recipes() -> Recipes:
    """The recipes as the docs' pages hold them."""
    return recipe


def test_every_recipe_block_is_run_here() -> None:
    """The docs hold exactly the recipe blocks the tests below run, and the README holds none."""
    in_docs = {title: len(recipe(title)) for title in DOCS_RECIPES}
    assert in_docs == RUN_HERE
    assert not set(RUN_HERE) & {block.heading for block in python_blocks()}


def test_starlette_lifespan_client_serves_each_run_of_the_app(
    fake: FakeFathom, recipes: Recipes
) -> None:
    """The lifespan recipe answers through Starlette's TestClient, twice over, and closes."""
    app = run(recipes("FastAPI and Starlette")[0])["app"]
    for _ in range(2):  # each `with` runs the app (and its lifespan) in a new event loop
        with TestClient(app) as http:
            assert http.get(EVENTS_PATH).json() == ["Signed up"]
            assert http.get(EVENTS_PATH).json() == ["Signed up"]
    assert len(fake.requests) == 4
    no_warnings_left()


def test_starlette_module_level_client_serves_every_loop(
    sessions_made: list[aiohttp.ClientSession], fake: FakeFathom, recipes: Recipes
) -> None:
    """One client made at import serves test clients in turn and two at once, in their loops."""
    names = run(recipes("FastAPI and Starlette")[1])
    app, fathom = names["app"], names["fathom"]

    def serve_twice() -> list[object]:
        with TestClient(app) as http:
            return [http.get(EVENTS_PATH).json() for _ in range(2)]

    assert TestClient(app).get(EVENTS_PATH).json() == ["Signed up"]  # a loop per request
    assert TestClient(app).get(EVENTS_PATH).json() == ["Signed up"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: serve_twice(), range(2)))
    assert answers == [[["Signed up"], ["Signed up"]]] * 2
    assert fathom.requests_sent == len(fake.requests) == 6
    assert len(sessions_made) == 4  # one per event loop the app ran in
    assert all(session.closed for session in sessions_made)  # each ended with its loop
    asyncio.run(fathom.aclose())
    no_warnings_left()


async def test_aiohttp_cleanup_context_opens_and_closes_the_client(recipes: Recipes) -> None:
    """The aiohttp.web recipe answers through aiohttp's test utilities and closes its client."""
    names = run(recipes("aiohttp.web")[0])
    app = names["app"]
    async with AiohttpTestClient(TestServer(app)) as http:
        answer = await http.get(EVENTS_PATH)
        assert await answer.json() == ["Signed up"]
        fathom = app[names["FATHOM"]]
        assert not fathom.closed
    assert fathom.closed


def test_django_helpers_serve_sync_code_async_views_and_threads(
    fake: FakeFathom, recipes: Recipes
) -> None:
    """The Django recipe works from sync code, request threads, and the ASGI server's loop."""
    helpers, view = recipes("Django")
    names = run(helpers)
    compile(view, "recipe", "exec")  # the view itself needs Django; it awaits the helper
    assert "await event_names(site_id)" in view
    event_names, event_names_now = names["event_names"], names["event_names_now"]

    # Sync code, and a WSGI server's request threads: async_to_sync makes a loop per call,
    # as Django does for an async view under WSGI.
    assert event_names_now(SITE) == ["Signed up"]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        assert list(pool.map(event_names_now, [SITE] * 3)) == [["Signed up"]] * 3
    assert async_to_sync(event_names)(SITE) == ["Signed up"]

    # Under ASGI a sync view runs in a thread and async_to_sync goes back to the server's loop.
    async def asgi_server() -> list[str]:
        names_async: list[str] = await event_names(SITE)
        assert await sync_to_async(event_names_now)(SITE) == names_async
        return names_async

    assert asyncio.run(asgi_server()) == ["Signed up"]
    assert names["fathom"].requests_sent == len(fake.requests) == 7
    no_warnings_left()


def test_worker_tasks_each_running_asyncio_run_share_one_client(
    fake: FakeFathom, recipes: Recipes
) -> None:
    """The worker recipe's task, run in turn and in a thread pool, converges on every site."""
    names = run(recipes("Celery and other workers")[0])
    task = names["ensure_goals_task"]
    fake.add_site("SITE2")
    fake.add_site("SITE3")
    assert task(SITE)["created"] == 1  # "Signed up" was there already
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # a threads pool
        totals = list(pool.map(task, ["SITE2", "SITE3"]))
    assert [t["created"] for t in totals] == [2, 2]
    assert task(SITE)["created"] == 0
    for site_id in (SITE, "SITE2", "SITE3"):
        assert sorted(e["name"] for e in fake.events(site_id)) == ["Purchased", "Signed up"]
    assert names["fathom"].requests_sent == len(fake.requests)
    no_warnings_left()


class Kernel:
    """A notebook kernel's one long-lived event loop, running cells with top-level await."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"__name__": "__main__"}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever)
        self._thread.start()

    def run_cell(self, source: str) -> object:
        """Run one cell in the kernel's loop; return its last expression's value, as shown."""
        tree = ast.parse(source)
        shown = None
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            tree.body.pop()
            shown = ast.Expression(last.value)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

        async def cell() -> object:
            for code, mode in ((tree, "exec"), (shown, "eval")):
                if code is None:
                    continue
                result = eval(compile(code, "In", mode, flags=flags), self.names)  # noqa: S307
                if asyncio.iscoroutine(result):
                    result = await result
                if mode == "eval":
                    return result
            return None

        return asyncio.run_coroutine_threadsafe(cell(), self._loop).result(timeout=30)

    def shut_down(self) -> None:
        """End the kernel's loop as asyncio.run ends one: generators shut down, then closed."""

        async def stop() -> None:
            await self._loop.shutdown_asyncgens()
            self._loop.stop()

        self._loop.call_soon_threadsafe(self._loop.create_task, stop())
        self._thread.join()
        self._loop.close()


@pytest.fixture(name="kernel")
def _kernel() -> Iterator[Kernel]:
    kernel = Kernel()
    yield kernel
    kernel.shut_down()


def notebook_cells(recipes: Recipes) -> list[str]:
    """The notebook recipe, cell by cell."""
    (notebook,) = recipes("Jupyter")
    cells = re.split(r"^# In \[\d+\]:\n", notebook, flags=re.MULTILINE)
    return [cell for cell in cells if cell]


def test_jupyter_cells_await_the_client_in_the_kernels_loop(
    kernel: Kernel, fake: FakeFathom, recipes: Recipes
) -> None:
    """The notebook recipe's cells run one after another in one loop, with top-level await."""
    cells = notebook_cells(recipes)
    assert len(cells) == 3
    assert kernel.run_cell(cells[0]) is None
    assert kernel.run_cell(cells[1]) == ["Signed up"]
    assert kernel.run_cell(cells[1]) == ["Signed up"]  # a cell run again
    kernel.run_cell(cells[2])
    assert kernel.names["client"].closed
    assert len(fake.requests) == 2


def test_jupyter_client_left_open_ends_with_the_kernels_loop(
    sessions_made: list[aiohttp.ClientSession], recipes: Recipes
) -> None:
    """A notebook client never closed has its session closed when the kernel's loop ends."""
    kernel = Kernel()
    cells = notebook_cells(recipes)
    kernel.run_cell(cells[0])
    kernel.run_cell(cells[1])
    (session,) = sessions_made
    open_before = not session.closed
    kernel.shut_down()
    assert open_before
    assert session.closed
    no_warnings_left()


# Fixtures of every scope, each with the loop of its own scope, used by tests that run in
# loops of their own: made from the recipe's fixture by changing its scope and name.
SCOPES = ("function", "class", "module", "package", "session")
USES = """

class TestInAClass_{name}:
    @pytest.mark.asyncio
    async def test_first(self, {name}: AsyncClient) -> None:
        assert (await {name}.events.list("CDBUGS")).data is not None

    @pytest.mark.asyncio
    async def test_second(self, {name}: AsyncClient) -> None:
        assert (await {name}.events.list("CDBUGS")).data is not None


@pytest.mark.asyncio(loop_scope="module")
async def test_in_the_module_loop_{name}({name}: AsyncClient) -> None:
    assert (await {name}.events.list("CDBUGS")).data is not None
"""
PLAIN_FIXTURE = """

@pytest.fixture(scope="session")
def fathom_plain(fathom_url: str) -> Iterator[AsyncClient]:
    client = AsyncClient(FakeFathom.DEFAULT_TOKEN, fathom_url)
    yield client
    asyncio.run(client.aclose())
"""


def test_pytest_asyncio_fixtures_of_every_scope_serve_every_test(
    pytester: pytest.Pytester, recipes: Recipes
) -> None:
    """The recipe's client fixture, at every scope and loop scope, serves tests in any loop."""
    (source,) = recipes("pytest-asyncio")
    fixture = re.search(r"@pytest_asyncio\.fixture\(.*?\n\n\n", source, re.DOTALL)
    assert fixture is not None
    assert 'scope="session", loop_scope="session"' in fixture[0]
    module = "import asyncio\n" + source + PLAIN_FIXTURE + USES.format(name="fathom_plain")
    for scope in SCOPES:
        name = f"fathom_{scope}"
        module += "\n\n" + fixture[0].replace('"session"', f'"{scope}"').replace(
            "async def fathom(", f"async def {name}("
        )
        module += USES.format(name=name)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_recipe=module)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1 + 3 * (len(SCOPES) + 1))
