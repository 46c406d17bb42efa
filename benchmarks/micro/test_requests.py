"""Building requests: checking input, encoding the path and query, and the JSON body."""

from __future__ import annotations

from typing import Any

import pytest

from fathom_events import _protocol as proto


@pytest.mark.benchmark(group="build a request")
def test_build_get(benchmark: Any) -> None:
    """GET one event: two ids checked and encoded."""
    assert benchmark(proto.build_get, "SITE1", "SITE1-E000005").method == "GET"


@pytest.mark.benchmark(group="build a request")
def test_build_list_with_cursor(benchmark: Any) -> None:
    """GET a page after a cursor, and its target with the query string."""

    def build() -> str:
        return proto.build_list("BIG", 100, "BIG-E000099").target()

    assert "starting_after" in benchmark(build)


@pytest.mark.benchmark(group="build a request")
def test_build_create(benchmark: Any) -> None:
    """POST a create: name and currency checked, body unstructured and dumped."""
    assert benchmark(proto.build_create, "NEW", "Bench create #1", "euro").body
