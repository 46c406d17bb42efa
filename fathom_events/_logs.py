"""The library's loggers, and ``FATHOM_EVENTS_LOG``: their records on stderr, a line each.

Two loggers, ``fathom_events`` and its child ``fathom_events.http``:

* ``fathom_events``: each retry and a ``Retry-After`` ignored (WARNING), the
  proxy a client goes through (INFO), a site's failure in bulk work (DEBUG);
* ``fathom_events.http``: each request sent and each answer or failure
  (DEBUG): method, URL, status or error class, time taken. Never a header or a
  body, so never the token.

``FATHOM_EVENTS_LOG=info`` or ``debug`` (any case) gives ``fathom_events`` that
level and a handler writing each record to stderr on one line (time, level,
logger, message; an exception as its class and words). It is read once, when
the first client is made (not at ``import fathom_events``); another value is
ignored with one ``RuntimeWarning``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from typing import Final

from ._checks import one_line

__all__ = ["ENV", "HTTP_LOGGER", "LOGGER", "stderr_handler", "switch_on_from_environment"]

ENV: Final = "FATHOM_EVENTS_LOG"
LOGGER: Final = "fathom_events"
HTTP_LOGGER: Final = "fathom_events.http"
_LEVELS: Final = {"info": logging.INFO, "debug": logging.DEBUG}
_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The longest line a record becomes.
_LINE_CHARS: Final = 4000

_read = False
_lock = threading.Lock()


class _OneLine(logging.Formatter):
    """A record on one line: an exception as its class and words, not a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f" ({type(error).__name__}: {error})"
        return one_line(line, _LINE_CHARS)


class _ToStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when the record comes (a test may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's own rule: a handler never raises
            self.handleError(record)


def stderr_handler() -> logging.Handler:
    """A handler writing each record to stderr, on one line."""
    handler = _ToStderr()
    handler.setFormatter(_OneLine(_FORMAT))
    return handler


def switch_on_from_environment() -> None:
    """Read ``FATHOM_EVENTS_LOG`` the first time a client is made, and act on it."""
    global _read  # noqa: PLW0603 - once per process, by design
    with _lock:
        if _read:
            return
        _read = True
    value = os.environ.get(ENV, "")
    if not value.strip():
        return
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        warnings.warn(
            f"{ENV}={value!r:.40} is not 'info' or 'debug'; it is ignored",
            RuntimeWarning,
            stacklevel=4,
        )
        return
    logger = logging.getLogger(LOGGER)
    logger.addHandler(stderr_handler())
    logger.setLevel(level)
