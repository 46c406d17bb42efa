"""The `fathom_fake` fixture, used from a test file the way a user would.

Each test writes a user's test module and runs pytest on it in a fresh
process, where the fixture arrives through the package's pytest11 entry
point (nothing is enabled by hand).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
# The user's tests need no event-loop plugin; pytest-asyncio would only warn about its settings.
QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio")

USER_TESTS = '''
import asyncio

import pytest

from fathom_events import AsyncClient, Client, Currency, RateLimitError, RetryPolicy
from fathom_events.testing import Fault


def sign_up_goal(client: Client, site_id: str) -> str:
    """The user's code under test: make sure the site has a "Signed up" event."""
    for event in client.events.paginate(site_id):
        if event.name == "Signed up":
            return event.id
    return client.events.create(site_id, "Signed up", Currency.EURO).id


def test_blocking_client(fathom_fake):
    fathom_fake.fake.add_site("MYSITE")
    with Client(fathom_fake.token, fathom_fake.base_url) as client:
        first = sign_up_goal(client, "MYSITE")
        assert sign_up_goal(client, "MYSITE") == first
    stored = fathom_fake.fake.events("MYSITE")
    assert [(e["name"], e["currency"]) for e in stored] == [("Signed up", "euro")]
    assert [r.method for r in fathom_fake.fake.requests] == ["GET", "POST", "GET"]


def test_async_client(fathom_fake):
    fathom_fake.fake.add_event("MYSITE", "Purchased")

    async def names():
        async with AsyncClient(fathom_fake.token, fathom_fake.base_url) as client:
            return [event.name async for event in client.events.paginate("MYSITE")]

    assert asyncio.run(names()) == ["Purchased"]


def test_each_test_gets_a_fresh_fake(fathom_fake):
    assert fathom_fake.fake.requests == []
    with pytest.raises(KeyError):
        fathom_fake.fake.events("MYSITE")


def test_faults_reach_the_client(fathom_fake):
    fathom_fake.fake.add_site("MYSITE")
    fathom_fake.fake.inject(Fault.rate_limited("1"), method="POST")
    with Client(fathom_fake.token, fathom_fake.base_url, retry=RetryPolicy(max_retries=0)) as c:
        with pytest.raises(RateLimitError):
            c.events.create("MYSITE", "Signed up")


def test_a_wrong_expectation_fails(fathom_fake):
    fathom_fake.fake.add_site("MYSITE")
    with Client(fathom_fake.token, fathom_fake.base_url) as client:
        client.events.create("MYSITE", "Signed up")
    assert fathom_fake.fake.events("MYSITE") == []
'''


def test_fixture_serves_a_fake_to_blocking_and_async_clients(pytester: pytest.Pytester) -> None:
    """A user's `fathom_fake` tests pass with both clients and faults; a wrong one still fails."""
    pytester.makepyfile(test_user=USER_TESTS)
    # Warnings are errors here too, so an unclosed client or server would fail.
    result = pytester.runpytest_subprocess("-W", "error", *QUIET)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_a_wrong_expectation_fails*"])
    result.stdout.fnmatch_lines(["*Left contains one more item: {*'name': 'Signed up'*"])


def test_fixture_is_listed_by_pytest(pytester: pytest.Pytester) -> None:
    """`pytest --fixtures` lists `fathom_fake` with its docstring: the entry point loads it."""
    result = pytester.runpytest_subprocess("--fixtures", *QUIET)
    result.stdout.fnmatch_lines(["fathom_fake*", "*A fresh `FakeFathom` served for one test*"])
