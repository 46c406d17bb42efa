"""The one observer of a client: a record at each step of a call, handed to whoever watches.

A client (and its ``with_options`` twins) holds one :class:`Observer`, or
``None`` when nobody can watch: no ``on_event`` callback and OpenTelemetry not
installed. Each call asks it for a :class:`CallWatch` (``None`` when nobody
watches this call), and each step the client takes calls the watch (the
retry loop, the limits and the sender, each behind one ``is None`` test):
the watch makes the step's record and hands it to the callback and to the
OpenTelemetry bridge (``_otel.py``), one code path for both.

OpenTelemetry is looked at only once the application has imported it (an
application that configured a tracer or meter provider has); until then a
call costs a look in ``sys.modules``. Nothing here imports it.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from fathom_events._logs import LOGGER
from fathom_events._protocol import Answer, Request

from ._records import (
    AnswerReceived,
    CallFinished,
    CallRecord,
    CallStarted,
    Outcome,
    RequestSent,
    RetryScheduled,
    Waited,
    WaitReason,
)

if TYPE_CHECKING:
    from ._otel import Telemetry

__all__ = ["CallWatch", "Handler", "Observer", "Server", "observer_for"]

logger = logging.getLogger(LOGGER)

#: What a record is handed to: the ``on_event`` callback, or a call's OpenTelemetry spans.
Handler = Callable[[CallRecord], object]
Clock = Callable[[], float]

_CALL_IDS = itertools.count(1)
_DEFAULT_PORTS = {"https": 443, "http": 80}


class Server(NamedTuple):
    """Where a client's requests go, as OpenTelemetry names it: host and port."""

    address: str
    port: int


def server_of(base_url: str) -> Server:
    """The host and port of ``base_url`` (the scheme's port when it names none)."""
    parts = urlsplit(base_url)
    return Server(parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme, 443))


class _Found:
    """What is known of the application's OpenTelemetry, for the process.

    ``telemetry``: the bridge, once a provider is set (it stays set, so the bridge
    is kept for good); ``none_set``: ``_otel.none_set`` once loaded, asked once a
    call until then; ``usable``: False once OpenTelemetry proved unusable (said
    once, then left alone).
    """

    telemetry: Telemetry | None = None
    none_set: Callable[[], bool] | None = None
    usable = True


def _look_for_telemetry() -> Telemetry | None:
    """The bridge, once the application (which has imported OpenTelemetry) set a provider.

    Until it does, this costs a call to ``none_set`` (two lookups) a call.
    """
    none_set = _Found.none_set
    if (none_set is not None and none_set()) or not _Found.usable:
        return None
    try:
        from ._otel import configured, none_set  # noqa: PLC0415 - the application imported it

        _Found.none_set = none_set
        _Found.telemetry = configured()
    except Exception as error:  # noqa: BLE001 - an OpenTelemetry we cannot use: untraced
        _Found.usable = False
        logger.warning(
            "OpenTelemetry cannot be used (%s%s): calls are not traced",
            type(error).__name__,
            _where(error),
        )
    return _Found.telemetry


@functools.cache
def opentelemetry_installed() -> bool:
    """Whether OpenTelemetry's API can be imported (nothing of it is imported to say so).

    Asked once a process: looking costs 0.1 ms (a namespace package is searched for
    along the whole path).
    """
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):  # hidden, or half-imported: not there to use
        return False


def observer_for(on_event: Handler | None, *, clock: Clock, base_url: str) -> Observer | None:
    """The observer of a client with these settings; ``None`` when nobody could ever watch."""
    if on_event is None and not opentelemetry_installed():
        return None
    return Observer(on_event, clock=clock, base_url=base_url)


class Observer:
    """How one client (and its twins) watches its calls: ``on_event`` and OpenTelemetry."""

    def __init__(self, on_event: Handler | None, *, clock: Clock, base_url: str) -> None:
        self.on_event = on_event
        self._handlers: tuple[Handler, ...] = () if on_event is None else (on_event,)
        self.clock = clock
        self.server = server_of(base_url)
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Observer(on_event={self.on_event!r})"

    def watch(self, request: Request, url: str) -> CallWatch | None:
        """A watch over one call of ``request`` to ``url``, or None if nobody watches it."""
        handlers = self._handlers
        bridge = _Found.telemetry
        # An application that set a provider has imported OpenTelemetry: until it has, two looks.
        if bridge is None and (
            "opentelemetry.trace" in sys.modules or "opentelemetry.metrics" in sys.modules
        ):
            bridge = _look_for_telemetry()
        if bridge is not None:
            handlers = (*handlers, bridge.follow(self.server))
        if not handlers:
            return None
        return CallWatch(self, handlers, request, url)

    def failed(self, handler: Handler, error: Exception) -> None:
        """Log that ``handler`` raised ``error``: at WARNING the first time, then at DEBUG.

        The error is named by its class and the line that raised it, never by its
        message, which may quote anything the handler held (the token among it).
        """
        who = "the on_event callback" if handler is self.on_event else "the OpenTelemetry bridge"
        said = f"{type(error).__name__}{_where(error)}"
        if who in self._warned:
            logger.debug("%s raised %s; the call went on", who, said)
            return
        self._warned.add(who)
        logger.warning(
            "%s raised %s; the call went on (its later errors are logged at DEBUG)", who, said
        )


def _where(error: BaseException) -> str:
    """`` at FILE:LINE``, where ``error`` was raised (``""`` if it has no traceback)."""
    tb = error.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


class CallWatch:
    """One call watched: the record of each step, handed to every handler in order.

    The retry loop, the limits and the sender call it from the call's own task,
    so its handlers see one call's records in order, in that task's context.
    """

    __slots__ = (
        "_changes",
        "_clock",
        "_handlers",
        "_method",
        "_observer",
        "_sent_at",
        "_started",
        "_url",
        "call_id",
        "operation",
        "sent",
    )

    def __init__(
        self, observer: Observer, handlers: tuple[Handler, ...], request: Request, url: str
    ) -> None:
        self._observer = observer
        self._handlers = handlers
        self._clock = observer.clock
        self._method = method = request.method
        self._changes = method != "GET"  # a create, update or delete: one that succeeded applied
        self._url = url
        self.call_id = next(_CALL_IDS)
        self.operation = request.name
        self.sent = 0  # requests sent so far
        self._sent_at: float | None = None  # when the attempt in flight was sent
        self._started = self._clock()
        self._emit(
            CallStarted(call_id=self.call_id, operation=self.operation, site_id=request.site_id)
        )

    def _emit(self, record: CallRecord) -> None:
        for handler in self._handlers:
            try:
                handler(record)
            except Exception as error:  # noqa: BLE001, PERF203 - a handler never changes the call
                self._observer.failed(handler, error)

    def waited(self, reason: WaitReason, seconds: float) -> None:
        """The next attempt waited ``seconds`` for ``reason`` (called by the limits)."""
        self._emit(
            Waited(
                call_id=self.call_id,
                operation=self.operation,
                attempt=self.sent + 1,
                reason=reason,
                seconds=seconds,
            )
        )

    def sending(self) -> None:
        """The next attempt goes out now (called by the sender)."""
        self.sent += 1
        self._sent_at = self._clock()
        self._emit(
            RequestSent(
                call_id=self.call_id,
                operation=self.operation,
                attempt=self.sent,
                method=self._method,
                url=self._url,
            )
        )

    def answered(self, outcome: Answer | Exception) -> None:
        """The attempt in flight ended in ``outcome``: an answer, or the error for none."""
        sent_at, self._sent_at = self._sent_at, None
        elapsed = self._clock() - (self._started if sent_at is None else sent_at)
        status: int | None
        error: str | None
        if isinstance(outcome, Answer):
            status, error = outcome.status, None
        else:  # no answer, or one refused (too large: it keeps its status)
            status, error = getattr(outcome, "status", None), type(outcome).__name__
        self._emit(
            AnswerReceived(
                call_id=self.call_id,
                operation=self.operation,
                attempt=self.sent,
                status=status,
                elapsed=elapsed,
                error=error,
            )
        )

    def retrying(self, reason: str, delay: float) -> None:
        """The call will send again after ``delay`` seconds (called by the retry loop)."""
        self._emit(
            RetryScheduled(
                call_id=self.call_id,
                operation=self.operation,
                attempt=self.sent + 1,
                reason=reason,
                delay=delay,
            )
        )

    def finished(self, error: BaseException | None) -> None:
        """The call returned (``error`` None), raised ``error``, or was cancelled."""
        outcome: Outcome
        if error is None:
            outcome, applied = "ok", self._changes
        elif isinstance(error, Exception):
            outcome, applied = "error", bool(getattr(error, "may_have_been_applied", False))
        else:  # cancelled, interrupted: a change sent and not answered may have been made
            outcome, applied = "cancelled", self.sent > 0 and self._changes
        self._emit(
            CallFinished(
                call_id=self.call_id,
                operation=self.operation,
                outcome=outcome,
                error=None if error is None else type(error).__name__,
                attempts=self.sent,
                elapsed=self._clock() - self._started,
                may_have_been_applied=applied,
            )
        )
