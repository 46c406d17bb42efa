"""The clients under test, in table order."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import attrs

from . import drivers


@attrs.frozen
class ClientSpec:
    """One row of the table: a driver, how it is driven, and what it needs installed.

    ``speedups`` says whether orjson and uvloop may be imported in its process;
    without it they are hidden, as on a plain install.
    """

    key: str
    name: str
    make: Callable[[str, int], Any]
    is_async: bool
    requires: str
    speedups: bool = False
    note: str = ""

    def missing(self) -> str | None:
        """The package this client needs that is not installed, if any."""
        for module in self.requires.split():
            if importlib.util.find_spec(module) is None:
                return module
        return None


FLOOR = "aiohttp (raw)"
FLOOR_KEY = "aiohttp"

CLIENTS: dict[str, ClientSpec] = {
    spec.key: spec
    for spec in (
        ClientSpec("aiohttp", FLOOR, drivers.RawAiohttp, is_async=True, requires="aiohttp"),
        ClientSpec(
            "fathom-async",
            "fathom async",
            drivers.FathomAsync,
            is_async=True,
            requires="fathom_events",
        ),
        ClientSpec(
            "fathom-async-speedups",
            "fathom async +speedups",
            drivers.FathomAsync,
            is_async=True,
            requires="fathom_events orjson",
            speedups=True,
        ),
        ClientSpec(
            "fathom-blocking",
            "fathom blocking",
            drivers.FathomBlocking,
            is_async=False,
            requires="fathom_events",
        ),
        ClientSpec(
            "fathom-blocking-speedups",
            "fathom blocking +speedups",
            drivers.FathomBlocking,
            is_async=False,
            requires="fathom_events orjson uvloop",
            speedups=True,
        ),
        ClientSpec("httpx", "httpx async", drivers.HttpxAsync, is_async=True, requires="httpx"),
        ClientSpec("requests", "requests", drivers.Requests, is_async=False, requires="requests"),
    )
}
