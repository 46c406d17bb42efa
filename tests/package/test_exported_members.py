"""The public names are a decision: each module's ``__all__`` is pinned, sorted and importable."""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import ModuleType

import pytest

import fathom_events
import fathom_events.exceptions
import fathom_events.testing

EXPECTED = {
    "fathom_events": [
        "DEFAULT_BASE_URL",
        "APIConnectionError",
        "APIStatusError",
        "APITimeoutError",
        "AnswerReceived",
        "AsyncClient",
        "AsyncEvents",
        "AsyncPaginator",
        "AsyncSites",
        "AsyncTransport",
        "AuthenticationError",
        "BadRequestError",
        "CallFinished",
        "CallRecord",
        "CallStarted",
        "Client",
        "ClientClosedError",
        "Currency",
        "DeletedEvent",
        "Event",
        "EventPage",
        "EventSpec",
        "Events",
        "Failure",
        "FathomError",
        "GoneError",
        "InvalidRequestError",
        "NotFoundError",
        "PageLike",
        "PaginationError",
        "Paginator",
        "PermissionDeniedError",
        "Progress",
        "PullResult",
        "RateLimit",
        "RateLimitError",
        "RedirectError",
        "RequestSent",
        "ResponseDecodeError",
        "ResponseTooLargeError",
        "RetryPolicy",
        "RetryScheduled",
        "ServerError",
        "SharedBudgetError",
        "Site",
        "SitePage",
        "SitePlan",
        "SiteReport",
        "Sites",
        "SyncPlan",
        "SyncReport",
        "Timeouts",
        "TokenInfo",
        "TokenPermissionError",
        "TooManyDeletesError",
        "TooManyEventsError",
        "TooManySitesError",
        "TransportRequest",
        "UnexpectedError",
        "UnprocessableEntityError",
        "UnsupportedEventLoopError",
        "Waited",
        "__version__",
        "from_builtins",
        "to_builtins",
    ],
    "fathom_events.exceptions": [
        "APIConnectionError",
        "APIStatusError",
        "APITimeoutError",
        "AuthenticationError",
        "BadRequestError",
        "ClientClosedError",
        "FathomError",
        "GoneError",
        "InvalidRequestError",
        "NotFoundError",
        "PaginationError",
        "PermissionDeniedError",
        "RateLimitError",
        "RedirectError",
        "ResponseDecodeError",
        "ResponseTooLargeError",
        "ServerError",
        "SharedBudgetError",
        "TokenPermissionError",
        "TooManyDeletesError",
        "TooManyEventsError",
        "TooManySitesError",
        "UnexpectedError",
        "UnprocessableEntityError",
        "UnsupportedEventLoopError",
    ],
    "fathom_events.testing": [
        "FakeFathom",
        "FakeFathomFixture",
        "Fault",
        "MemoryTransport",
        "RecordedRequest",
    ],
}
MODULES = sorted(EXPECTED)


def isort_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then the rest (dunders)."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_exactly_the_expected_names(name: str) -> None:
    """Each module's __all__ is exactly the names written out here, in the same order."""
    assert module(name).__all__ == EXPECTED[name]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_without_duplicates(name: str) -> None:
    """Each __all__ is sorted the way ruff sorts it (constants, classes, dunders) and unique."""
    exported = module(name).__all__
    assert exported == sorted(exported, key=isort_order)
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_is_importable(name: str) -> None:
    """from module import * gives every name in __all__, each a real object."""
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)  # noqa: S102 - a fixed, trusted statement
    missing = [member for member in EXPECTED[name] if namespace.get(member) is None]
    assert missing == []


def test_front_door_exports_every_public_name_it_holds() -> None:
    """Every public non-module name in fathom_events is in __all__: nothing leaks by accident."""
    public = {
        member
        for member, value in vars(fathom_events).items()
        if not member.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(fathom_events.__all__) - {"__version__"}


@pytest.mark.parametrize("name", ["fathom_events.exceptions", "fathom_events.testing"])
def test_module_exports_every_public_class_it_defines(name: str) -> None:
    """Every public class defined in (or re-exported by) the module is listed in its __all__."""
    mod = module(name)
    defined = {
        member
        for member, value in vars(mod).items()
        if not member.startswith("_")
        and isinstance(value, type)
        and value.__module__.startswith(name)
    }
    assert defined == set(mod.__all__)


def test_front_door_reexports_every_exception() -> None:
    """Every error of fathom_events.exceptions is importable from fathom_events itself."""
    for member in fathom_events.exceptions.__all__:
        assert getattr(fathom_events, member) is getattr(fathom_events.exceptions, member)


def test_importing_the_package_does_not_import_the_fake() -> None:
    """import fathom_events loads neither fathom_events.testing nor aiohttp's server side."""
    script = (
        "import sys, fathom_events;"
        " print(sorted(m for m in sys.modules"
        " if m.startswith(('fathom_events.testing', 'aiohttp.web'))))"
    )
    loaded = subprocess.run(  # noqa: S603 - our own interpreter running a fixed script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
