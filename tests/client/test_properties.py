"""Property tests: invalid input is refused unsent; valid input reaches the server intact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fathom_events import (
    BadRequestError,
    Client,
    Currency,
    InvalidRequestError,
    NotFoundError,
    RetryPolicy,
)
from fathom_events import _protocol as proto
from fathom_events.testing import FakeFathom
from fathom_events.testing._input import TRIMMED
from tests.support.helpers import SITE, TOKEN

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CURRENCY_VALUES = {c.value for c in Currency}

# Names as Fathom stores them: no outer whitespace (a Laravel app trims it; FakeFathom too).
# Not the token: the client blots the token out of whatever an answer echoes (and Hypothesis
# draws the string constants of the code it tests, the fake's well-known token among them).
valid_names = st.text(min_size=1, max_size=255).filter(
    lambda s: s and proto.name_key(s) == s and TOKEN not in s
)
invalid_names = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n", min_size=1, max_size=5),
    st.tuples(valid_names, st.sampled_from(proto.OUTER_SPACE), st.booleans()).map(
        lambda t: t[1] + t[0][:250] if t[2] else t[0][:250] + t[1]
    ),
    st.text(min_size=256, max_size=400),
    st.integers(),
    st.none().map(lambda _: b"bytes"),
)
valid_currencies = st.one_of(st.sampled_from(Currency), st.sampled_from(sorted(CURRENCY_VALUES)))
invalid_currencies = st.one_of(
    st.text().filter(lambda s: s not in CURRENCY_VALUES), st.integers(), st.floats()
)
ids = st.text(min_size=1, max_size=40)
invalid_limits = st.one_of(
    st.integers().filter(lambda n: not 1 <= n <= 100), st.booleans(), st.floats(), st.text()
)


@pytest.fixture(name="served", scope="module")
def _served() -> Iterator[tuple[FakeFathom, Client]]:
    fake = FakeFathom()
    fake.add_site(SITE)
    with (
        fake.serve_in_thread() as url,
        Client(TOKEN, url, retry=RetryPolicy(max_retries=0)) as client,
    ):
        yield fake, client


@SETTINGS
@given(name=invalid_names)
def test_invalid_names_never_sent(served: tuple[FakeFathom, Client], name: object) -> None:
    """A name that is empty, blank, padded, too long or not a string is refused unsent."""
    fake, client = served
    before = len(fake.requests)
    with pytest.raises(InvalidRequestError) as info:
        client.events.create(SITE, name)  # type: ignore[arg-type]
    assert info.value.field == "name"
    assert len(fake.requests) == before


@SETTINGS
@given(currency=invalid_currencies)
def test_invalid_currencies_never_sent(served: tuple[FakeFathom, Client], currency: object) -> None:
    """A currency outside the documented set is refused before sending."""
    fake, client = served
    before = len(fake.requests)
    with pytest.raises(InvalidRequestError) as info:
        client.events.create(SITE, "Paid", currency=currency)  # type: ignore[arg-type]
    assert info.value.field == "currency"
    assert len(fake.requests) == before


@SETTINGS
@given(limit=invalid_limits)
def test_invalid_limits_never_sent(served: tuple[FakeFathom, Client], limit: object) -> None:
    """A page size that is not an int from 1 to 100 is refused before sending."""
    fake, client = served
    before = len(fake.requests)
    with pytest.raises(InvalidRequestError):
        client.events.list(SITE, limit=limit)  # type: ignore[arg-type]
    assert len(fake.requests) == before


@given(after=ids, before=ids)
def test_both_cursors_refused(after: str, before: str) -> None:
    """Giving both cursors at once is refused, whatever they hold."""
    with pytest.raises(InvalidRequestError):
        proto.build_list(SITE, starting_after=after, ending_before=before)


@SETTINGS
@given(name=valid_names, currency=valid_currencies)
def test_valid_creates_arrive_intact(
    served: tuple[FakeFathom, Client], name: str, currency: Currency | str
) -> None:
    """Any valid name and currency reach the server exactly as given."""
    fake, client = served
    event = client.events.create(SITE, name, currency=currency)
    assert fake.requests[-1].json == {"name": name, "currency": str(currency)}
    assert event.name == name
    assert event.currency == currency
    client.events.delete(SITE, event.id)


@SETTINGS
@given(event_id=ids)
def test_any_id_is_one_segment(served: tuple[FakeFathom, Client], event_id: str) -> None:
    """Any id travels as one path segment and arrives exactly as given."""
    fake, client = served
    with pytest.raises(NotFoundError):
        client.events.get(SITE, event_id)
    assert fake.requests[-1].path == f"/v1/sites/{SITE}/events/{event_id}"


@SETTINGS
# A blank cursor is as if not given (a Laravel app trims it to null), so it names no event.
@given(cursor=ids.filter(lambda s: s.strip(TRIMMED) != ""), limit=st.integers(1, 100))
def test_any_cursor_arrives_intact(
    served: tuple[FakeFathom, Client], cursor: str, limit: int
) -> None:
    """Any cursor and valid limit reach the server's query exactly as given."""
    fake, client = served
    with pytest.raises(BadRequestError):  # the fake holds no events, so any cursor is unknown
        client.events.list(SITE, limit=limit, ending_before=cursor)
    assert fake.requests[-1].query == {"limit": str(limit), "ending_before": cursor}
