"""A rate budget per token, counted as Laravel's `throttle` middleware counts.

Laravel's rate limiter keeps, per key, a hit counter and a timer that both
expire `seconds` after the key's first hit: a fixed window opened by the first
request, not a sliding one. A request finding `requests` hits already in the
window is refused (429) without counting; one arriving once the window has
closed opens a new one.
"""

from __future__ import annotations

import math
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

MESSAGE: Final = "Too Many Attempts."


@attrs.define
class _Window:
    closes: datetime
    spent: int = 1


#: The longest window a budget may have: ten years (a longer one leaves the calendar).
MAX_WINDOW: Final = 10 * 365 * 24 * 3600


def check_rate_limit(rate_limit: object) -> tuple[int, float]:
    """`rate_limit` as (requests, seconds), or a ValueError saying what it must be."""
    if isinstance(rate_limit, tuple) and len(rate_limit) == 2:
        requests, seconds = rate_limit
        if (
            isinstance(requests, int)
            and not isinstance(requests, bool)
            and requests >= 1
            and isinstance(seconds, (int, float))
            and not isinstance(seconds, bool)
            and 0 < seconds <= MAX_WINDOW
        ):
            return requests, float(seconds)
    raise ValueError(
        "rate_limit must be (requests, seconds): a whole number >= 1 and a number of"
        f" seconds > 0 and at most {MAX_WINDOW:,} (ten years), e.g. (2000, 3600);"
        f" got {rate_limit!r:.100}"
    )


class Throttle:
    """Each key's budget of `requests` per fixed window of `seconds`; safe across threads."""

    def __init__(self, requests: int, seconds: float, now: Callable[[], datetime]) -> None:
        self._requests = requests
        self._window = timedelta(seconds=seconds)
        self._now = now
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def spend(self, key: str) -> int | None:
        """Count a request of `key`; if its budget is spent, return the Retry-After instead.

        Retry-After is the whole seconds until the window closes, rounded up, at least 1.
        """
        now = self._now()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.closes:
                self._windows[key] = _Window(closes=now + self._window)
                return None
            if window.spent < self._requests:
                window.spent += 1
                return None
            return max(1, math.ceil((window.closes - now).total_seconds()))
