"""The one sender: builds each request from the options and keeps the client's promises.

A :class:`Sender` is made once per client (shared with its ``with_options``
twins) from the options and a transport, the built-in aiohttp one or the
user's. It is the one place that builds a request's URL (:meth:`Sender.url`)
and its headers (one ``User-Agent``, the token), and, whatever the transport
does, the one place that keeps these promises (:meth:`Sender.call`):

* the answer has the contract's shape: ``(int 100..599, Mapping, bytes)``;
* ``max_response_bytes`` holds for the decoded body;
* an echoed token is blotted out of the body, the headers (names too) and
  every error's text (:meth:`Sender._blot_out`, the one function that does);
* only a typed :class:`FathomError` comes out: a ``TimeoutError`` becomes
  :class:`APITimeoutError`, any other exception :class:`APIConnectionError`
  (taken as sent), and a ``FathomError`` the transport raised passes as the
  same object, its text blotted and then cut short (in that order, so that no
  part of a token survives);
* the error is raised alone: no ``__cause__`` or ``__context__`` (the
  transport's exception may hold the request, and so the token), and no frame
  below the sender's on its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from fathom_events import _protocol as proto
from fathom_events._checks import one_line
from fathom_events._logs import HTTP_LOGGER
from fathom_events._loops import running_loop
from fathom_events._protocol import Answer, Request
from fathom_events._version import __version__
from fathom_events.exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    FathomError,
    ResponseTooLargeError,
    _Headers,
)

from ._contract import AsyncTransport, Timeouts, TransportRequest
from ._secrecy import HoldsToken, TokenEchoes, raise_alone, words_of

if TYPE_CHECKING:
    from fathom_events._observe._observer import CallWatch

__all__ = ["USER_AGENT", "Sender", "too_large"]

T = TypeVar("T")
_Found = TypeVar("_Found", Answer, FathomError)
USER_AGENT = f"fathom-events/{__version__} (Python {platform.python_version()})"
_STATUS_RANGE = range(100, 600)
#: The longest message an error from a transport keeps.
_ERROR_TEXT_CHARS = 1000
#: The attributes holding an error's message (its args are cut short too).
_MESSAGES = ("message", "rule")
#: The shortest total timeout an attempt is given when the deadline is (nearly) spent.
_LEAST_TIME = 0.001
_http_log = logging.getLogger(HTTP_LOGGER)


def too_large(cap: int, *, method: str, url: str, status: int) -> ResponseTooLargeError:
    """The error for an answer over ``max_response_bytes``."""
    return ResponseTooLargeError(
        f"the answer is larger than max_response_bytes={cap} once decoded; it was not read",
        method=method,
        url=url,
        status=status,
        body="",
    )


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a transport's object: its repr may do anything
        return f"<{type(value).__name__}>"


class Sender:
    """Sends a client's requests through one transport and keeps the promises above.

    ``prepare`` is called by :meth:`open` (the built-in transport makes the
    running loop's session there, or says why this loop cannot have one).
    """

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        base_url: str,
        token: HoldsToken,
        max_response_bytes: int,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {token.reveal()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        # Read-only and made once: a transport cannot change what the next request carries.
        self._headers = MappingProxyType(headers)
        self._json_headers = MappingProxyType({**headers, "Content-Type": "application/json"})
        self._echoes = TokenEchoes(token)
        self._max_response_bytes = max_response_bytes
        self._prepare = prepare
        self.closed = False

    def __repr__(self) -> str:
        return f"Sender({type(self._transport).__name__}, base_url={self._base_url!r})"

    def __reduce__(self) -> str:
        raise TypeError("a Sender cannot be pickled: it holds the API token")

    def url(self, request: Request) -> str:
        """The request's full URL: the one place a URL is built."""
        return self._base_url + request.target()

    def open(self) -> None:
        """Get ready to send from the running loop, or say why it cannot.

        The client runs on asyncio whatever the transport (its limits wait on
        asyncio's futures): without ``prepare`` (a transport of the user's),
        the loop is checked here, and again before each send.
        """
        (self._prepare or running_loop)()

    async def call(
        self,
        request: Request,
        into: type[T] | proto.Lenient[T],
        timeouts: Timeouts,
        url: str,
        *,
        deadline: float | None,
        clock: Callable[[], float],
        watch: CallWatch | None = None,
    ) -> T:
        """One attempt: send, then read a 2xx as ``into`` or raise the answer's error.

        ``deadline`` (on ``clock``, or None) shortens ``timeouts.total`` to the
        time left, measured now: after any wait before this attempt. A 3xx is
        never success (nor followed). A ``watch`` is told as the request goes
        out and as the transport's answer (or its failure) comes back.
        """
        if self.closed:  # closed by another task while this call waited to retry
            raise ClientClosedError("this client was closed while the call was running")
        if self._prepare is None:  # the built-in transport checks the loop as it sends
            running_loop()
        if deadline is not None:
            left = deadline - clock()
            if timeouts.total is None or left < timeouts.total:
                timeouts = Timeouts(max(left, _LEAST_TIME), timeouts.connect)
        if watch is not None:
            watch.sending()
        if _http_log.isEnabledFor(logging.DEBUG):
            outcome = await self._logged_exchange(request, timeouts, url)
        else:
            outcome = await self._exchange(request, timeouts, url)
        if watch is not None:
            watch.answered(outcome)
        if not isinstance(outcome, Answer):
            # Raised here, and alone: the transport's exception (which may hold the request,
            # and so the token) is neither its __cause__ nor its __context__, and the frame
            # that met it or the raw answer is not on its traceback.
            raise_alone(outcome)
        if not 200 <= outcome.status < 300:
            raise proto.error_for(
                outcome,
                method=request.method,
                url=url,
                operation=request.operation,
                now=time.time(),
            )
        return proto.decode(outcome, into, method=request.method, url=url)

    async def _logged_exchange(
        self, request: Request, timeouts: Timeouts, url: str
    ) -> Answer | FathomError:
        """:meth:`_exchange`, with a DEBUG line for the request and one for what came back.

        The method and URL only (a URL never holds the token: it goes in a header).
        """
        _http_log.debug("request %s %s", request.method, url)
        started = time.perf_counter()
        outcome = await self._exchange(request, timeouts, url)
        took = time.perf_counter() - started
        if isinstance(outcome, Answer):
            _http_log.debug(
                "answer %d to %s %s in %.3f s", outcome.status, request.method, url, took
            )
        else:
            what = type(outcome).__name__
            _http_log.debug("no answer to %s %s: %s after %.3f s", request.method, url, what, took)
        return outcome

    async def _exchange(
        self, request: Request, timeouts: Timeouts, url: str
    ) -> Answer | FathomError:
        """The transport's answer, or the error to raise for what it did (the caller raises it)."""
        try:
            result = await self._transport.send(
                TransportRequest(
                    request.method,
                    url,
                    self._headers if request.body is None else self._json_headers,
                    request.body,
                ),
                timeouts,
            )
        except FathomError as error:
            failure: FathomError = error
        except Exception as exc:  # noqa: BLE001 - any failure of a transport
            failure = self._failed(exc, request.method, url)
        except BaseException as stop:  # noqa: BLE001 - re-raised as it is, frames cut
            # A cancellation or an interrupt passes as it is, without the frames below
            # this one (which may hold the request, and so the token).
            raise_alone(stop)
        else:
            return self._answer(result, request.method, url)
        return self._shortened(self._blot_out(failure))

    def _answer(self, result: object, method: str, url: str) -> Answer | FathomError:
        status, headers, body = (
            result if isinstance(result, tuple) and len(result) == 3 else (None, None, None)
        )
        if not (
            type(status) is int
            and status in _STATUS_RANGE
            and isinstance(headers, Mapping)
            and isinstance(body, bytes)
        ):
            kinds = (
                ", ".join(type(part).__name__ for part in result)
                if isinstance(result, tuple)
                else type(result).__name__
            )
            return APIConnectionError(
                "the transport's answer must be (status, headers, body): an int from 100 to 599,"
                f" a mapping and bytes; it gave ({kinds})",
                method=method,
                url=url,
            )
        if len(body) > self._max_response_bytes:
            return too_large(self._max_response_bytes, method=method, url=url, status=status)
        return self._blot_out(Answer(status, headers, body))

    def _failed(self, failure: Exception, method: str, url: str) -> APIConnectionError:
        """The error for a transport's own exception: its class and words (blotted later)."""
        said = words_of(failure)
        if isinstance(failure, (TimeoutError, asyncio.TimeoutError)):
            return APITimeoutError(
                f"timed out waiting for the answer ({said})", method=method, url=url
            )
        return APIConnectionError(f"the transport failed ({said})", method=method, url=url)

    def _blot_out(self, found: _Found) -> _Found:  # noqa: C901 - the one function that blots: every kind of value is here
        """``found`` with the token blotted out: the one function that does it.

        An answer comes back anew, its body and headers (names too) blotted where
        the token was quoted. An error is blotted in place (it stays the object
        the transport raised): its text fields, args and notes, a header mapping,
        a parsed body, a request it kept; its ``__cause__`` and ``__context__``
        are dropped.
        """
        echoes = self._echoes
        if isinstance(found, Answer):
            if not echoes.found_in(found.body, found.headers):
                return found
            body, pairs = echoes.blot_answer(found.body, found.headers)
            # A repeated name (Set-Cookie) keeps its last value.
            return Answer(found.status, dict(pairs), body)  # type: ignore[return-value]

        def blotted(value: Any) -> Any:
            # Each value an error may hold, token blotted out: text, bytes, containers (keys
            # too), headers (names in any case, still found in any case), a request kept;
            # any other object but a number becomes its repr, blotted.
            if isinstance(value, str):
                return echoes.blot(value)
            if isinstance(value, (bytes, bytearray)):
                return echoes.blot_bytes(bytes(value))
            if isinstance(value, _Headers):
                return _Headers(dict(echoes.blot_answer(b"", value)[1]))
            if isinstance(value, Mapping):
                return {blotted(key): blotted(item) for key, item in value.items()}
            if isinstance(value, (list, tuple)):
                items = [blotted(item) for item in value]
                return items if isinstance(value, list) else tuple(items)
            if isinstance(value, (set, frozenset)):
                return type(value)(blotted(item) for item in value)
            if isinstance(value, TransportRequest):
                headers = blotted(value.headers)
                return TransportRequest(value.method, echoes.blot(value.url), headers, value.body)
            if value is None or isinstance(value, (bool, int, float)):
                return value
            return echoes.blot(_safe_repr(value))

        for name, value in list(vars(found).items()):
            setattr(found, name, blotted(value))
        found.args = blotted(found.args)
        found.__cause__ = None
        found.__context__ = None
        return found

    @staticmethod
    def _shortened(error: FathomError) -> FathomError:
        """``error``'s message on one line and cut short (once blotted: never before)."""
        for name in _MESSAGES:
            value = getattr(error, name, None)
            if isinstance(value, str):
                setattr(error, name, one_line(value, _ERROR_TEXT_CHARS))
        error.args = tuple(
            one_line(arg, _ERROR_TEXT_CHARS) if isinstance(arg, str) else arg for arg in error.args
        )
        return error

    async def aclose(self) -> None:
        """Close the transport, once (a closing client owns what it was given)."""
        if self.closed:
            return
        self.closed = True
        await self._transport.aclose()
