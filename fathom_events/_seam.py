"""The transport seam: what a transport is, and the client's promises around one it is given.

``AsyncClient(transport=...)`` takes any object with two async methods (the
:class:`AsyncTransport` protocol): ``send(request, timeouts)`` sends one
:class:`TransportRequest` and returns its answer as ``(status, headers,
body)``, and ``aclose()`` lets it go. The default transport (aiohttp, in
``_transport``) is the only module that imports aiohttp at run time; this one
imports none, so a transport can be written and typed without it.

A given transport is held to the promises of the default one by
:class:`GivenTransport`, which the client talks to instead:

* every request carries the standard headers, the API token among them;
* ``max_response_bytes`` holds: a longer body is refused (once the transport
  has read it: a transport that streams should stop at the cap itself);
* only an answer or a :class:`FathomError` comes out of a send. A
  ``FathomError`` the transport raises passes as it is; a ``TimeoutError``
  becomes :class:`APITimeoutError`, and any other exception
  :class:`APIConnectionError` (taken as sent: a create that fails so is not
  retried unless the policy says so; others are retried as a dropped
  connection is). Neither keeps the transport's exception (it may hold the
  request, and so the token) as its cause or context, nor has on its
  traceback the frame that met it or the raw answer, and the token is
  blotted out of every message, header (name and value) and body.
"""

from __future__ import annotations

import asyncio
import platform
import re
import string
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NoReturn, Protocol, SupportsIndex

import attrs

from ._checks import one_line
from ._protocol import Answer, Request
from ._version import __version__
from .exceptions import (
    APIConnectionError,
    APITimeoutError,
    FathomError,
    InvalidRequestError,
    ResponseTooLargeError,
)

__all__ = [
    "AsyncTransport",
    "GivenTransport",
    "Secret",
    "Timeouts",
    "TokenEchoes",
    "TransportRequest",
    "detail",
    "standard_headers",
    "too_large",
]

REDACTED = "********"
_DETAIL_CHARS = 300
_JSON = {"Content-Type": "application/json"}
_STATUS_RANGE = range(100, 600)


class Secret:
    """A value that never shows itself in a repr or a string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")


@attrs.frozen
class Timeouts:
    """Per-attempt limits in seconds: the whole attempt, and the connect phase within it."""

    total: float | None
    connect: float | None


def _masked(headers: Mapping[str, str]) -> str:
    shown = {
        name: REDACTED if name.lower() == "authorization" else value
        for name, value in headers.items()
    }
    return repr(shown)


@attrs.frozen
class TransportRequest:
    """One request as a transport sends it.

    ``url`` is absolute and already percent-encoded (send it as it is);
    ``headers`` hold the token (``Authorization``), ``Accept``, ``User-Agent``
    and, with a body, ``Content-Type``; ``body`` is JSON, or None. The repr
    hides the token.
    """

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=_masked)
    body: bytes | None = None


class AsyncTransport(Protocol):
    """What ``AsyncClient(transport=...)`` needs: send one request, get one answer; close.

    ``send`` answers ``(status, headers, body)``: an int status, a mapping of
    headers (looked up without regard to case), and the body as bytes, already
    decoded from any ``Content-Encoding``. It should apply ``timeouts.total``
    (seconds, or None for no limit) to the whole attempt, and raise a
    :class:`~fathom_events.FathomError` when it can say precisely what went
    wrong (an :class:`~fathom_events.APIConnectionError` with
    ``request_sent=False`` when nothing left). The client calls ``aclose`` once,
    when it closes.
    """

    async def send(
        self, request: TransportRequest, timeouts: Timeouts, /
    ) -> tuple[int, Mapping[str, str], bytes]: ...

    async def aclose(self) -> None: ...


def standard_headers(token: Secret, user_agent: str) -> dict[str, str]:
    """The headers every request carries: the token, what we accept, who we are."""
    return {
        "Authorization": f"Bearer {token.reveal()}",
        "Accept": "application/json",
        "User-Agent": user_agent,
    }


#: A token shorter than this is not looked for in answers: so short a string may be
#: ordinary data ("abc" in "abc signup"), and blotting it out would change the answer.
#: Fathom's tokens are far longer.
MIN_BLOTTED_TOKEN = 16
#: What no JSON or URL encoder in common use changes: a hostile one may still escape them.
_AS_SENT = frozenset(string.ascii_letters + string.digits + "-._")
_RUN_AS_SENT = re.compile(r"[A-Za-z0-9._-]+")


def _echo_pattern(char: str) -> str:
    """A pattern matching ``char`` in each form a server may quote it back in.

    Any character may come back as it is, as JSON's ``\\uXXXX`` (a surrogate
    pair beyond the BMP), or percent-encoded, a byte of its UTF-8 at a time,
    and encoded again when its URL sits inside another (``%252F``); hex digits
    in either case. One other than a letter, a digit, ``-``, ``.`` or ``_``
    may also come back after a backslash (JSON's ``\\/``, a repr's ``\\'``).
    """
    utf16 = char.encode("utf-16-be")
    json = "".join(rf"\\u(?i:{utf16[i : i + 2].hex()})" for i in range(0, len(utf16), 2))
    percent = "".join(f"%(?:25)*(?i:{byte:02x})" for byte in char.encode())
    backslash = "" if char in _AS_SENT else r"\\?"
    return rf"(?:{backslash}{re.escape(char)}|{json}|{percent})"


def _may_escape(text: bytes | str) -> bool:
    """Whether ``text`` holds a JSON ``\\u`` escape or a ``%``: then the token may be in it
    with every character escaped, with no run of it as it was sent.

    A body's backslashes are looked at one by one: a search for the two bytes
    ``\\u`` costs ~10 us on a 12 kB page, where Fathom's pages hold a few
    backslashes at most (PHP writes "/" as ``\\/``): ~1 us.
    """
    if isinstance(text, str):
        return "\\u" in text or "%" in text
    if b"%" in text:
        return True
    at = text.find(b"\\")
    while at != -1:
        if text[at + 1 : at + 2] == b"u":
            return True
        at = text.find(b"\\", at + 2)
    return False


class TokenEchoes:
    """The token wherever a server quotes it back, as sent or re-encoded, to blot it out.

    A server that quotes the request back (a debugging proxy, a hostile host)
    would put the token in an error's message, body or headers (a header's
    name too), or in an event's name, as it was sent or JSON-escaped or
    percent-encoded (see :func:`_echo_pattern`). A token shorter than
    :data:`MIN_BLOTTED_TOKEN` is looked for nowhere.
    """

    __slots__ = ("_anchor", "_anchor_bytes", "_bytes", "_short", "_text")

    def __init__(self, token: Secret) -> None:
        secret = token.reveal()
        pattern = "".join(map(_echo_pattern, secret))
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode())
        self._short = len(secret) < MIN_BLOTTED_TOKEN
        # A form made by an encoder in common use holds the token's longest run of what
        # comes back as sent: looked for first, as a plain search (a 13 kB page with a token
        # like Fathom's: 4 us in all, against 9 us for the pattern alone). A form escaping
        # every character needs an escape in the text: the pattern runs then too.
        self._anchor = max(_RUN_AS_SENT.findall(secret), key=len, default="")
        self._anchor_bytes = self._anchor.encode()

    def __repr__(self) -> str:
        return "TokenEchoes('********')"

    def __reduce__(self) -> str:
        raise TypeError("TokenEchoes cannot be pickled: it holds the API token")

    def found_in(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether the body, or a header's name or value, quotes the token."""
        if self._short:
            return False
        if (self._anchor_bytes in body or _may_escape(body)) and self._bytes.search(body):
            return True
        return any(
            self._quoted_in(name) or self._quoted_in(value) for name, value in headers.items()
        )

    def blot_answer(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The body, and the headers as pairs, with the token blotted out (names too).

        For an answer :meth:`found_in` found the token in.
        """
        blotted = self._bytes.sub(REDACTED.encode(), body)
        return blotted, [(self.blot(name), self.blot(value)) for name, value in headers.items()]

    def blot(self, text: str) -> str:
        """``text`` with the token blotted out."""
        return self._text.sub(REDACTED, text) if self._quoted_in(text) else text

    def _quoted_in(self, text: str) -> bool:
        return (
            not self._short
            and (self._anchor in text or _may_escape(text))
            and self._text.search(text) is not None
        )


def raise_alone(error: BaseException) -> NoReturn:
    """Raise ``error`` from the caller's frame: no ``__context__``, no frame below it.

    Our errors are raised outside the ``except`` block that caught a transport's
    failure, so that it (holding the request, and so the token) is neither
    their ``__cause__`` nor their ``__context__``. On Python 3.10 that is not
    enough: an exception aiohttp handled inside an awaited coroutine can still
    be the one being handled in ours (3.11 keeps it out), and a plain ``raise``
    would make it the context. Clearing the context and re-raising with a bare
    ``raise``, which sets no context, leaves the error alone on every version.

    An error raised below the caller and caught there is raised without the
    traceback it had: the frames it passed through (holding a session, a
    response, a raw answer) are not kept for a debugger or an error tracker
    to show their locals.
    """
    try:
        raise error.with_traceback(None)  # noqa: TRY301 - raised to be caught here, context cleared
    except BaseException:
        error.__context__ = None
        raise


def too_large(cap: int, *, method: str, url: str, status: int) -> ResponseTooLargeError:
    """The error for an answer over ``max_response_bytes``."""
    return ResponseTooLargeError(
        f"the answer is larger than max_response_bytes={cap} once decoded; it was not read",
        method=method,
        url=url,
        status=status,
        body="",
    )


def detail(exc: BaseException, echoes: TokenEchoes, words: str | None = None) -> str:
    """An exception's class and its own words (or ``words``), on one line; it never raises.

    The token is blotted out before the line is cut short, so that no part of it is left.
    """
    try:
        text = one_line(echoes.blot(str(exc) if words is None else words), _DETAIL_CHARS)
    except Exception:  # noqa: BLE001 - a transport's exception: its str may do anything
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def refuse_to_travel(holds: str) -> Callable[[object, SupportsIndex], NoReturn]:
    """A ``__reduce_ex__`` refusing pickle, copy and deepcopy for an object that ``holds`` ..."""

    def refuse(self: object, _protocol: SupportsIndex, /) -> NoReturn:
        name = type(self).__name__
        raise TypeError(
            f"{name} cannot be pickled or copied: it holds {holds} and the API token."
            f" Create a new {name} where you need one (in the other process), or share this one."
        )

    return refuse


def check_transport(given: object) -> AsyncTransport:
    """A given transport must have ``send`` and ``aclose`` methods."""
    missing = [name for name in ("send", "aclose") if not callable(getattr(given, name, None))]
    if missing:
        raise InvalidRequestError(
            "transport",
            "must have async send(request, timeouts) and aclose() methods (such as"
            f" fathom_events.testing.MemoryTransport); {type(given).__name__} has no"
            f" {' or '.join(missing)}",
        )
    return given  # type: ignore[return-value]  # its methods were checked just above


class GivenTransport:
    """A transport given as ``AsyncClient(transport=...)``, held to the default's promises."""

    def __init__(
        self,
        given: AsyncTransport,
        *,
        base_url: str,
        token: Secret,
        timeouts: Timeouts,
        max_response_bytes: int,
    ) -> None:
        self._given = check_transport(given)
        self.base_url = base_url.rstrip("/")
        user_agent = f"fathom-events/{__version__} (Python {platform.python_version()})"
        # Read-only and made once: a transport cannot change what the next request carries.
        headers = standard_headers(token, user_agent)
        self._headers = MappingProxyType(headers)
        self._json_headers = MappingProxyType({**headers, **_JSON})
        self._echoes = TokenEchoes(token)
        self._default_timeouts = timeouts
        self._max_response_bytes = max_response_bytes
        self.closed = False

    def __repr__(self) -> str:
        return f"GivenTransport({type(self._given).__name__}, base_url={self.base_url!r})"

    def open(self) -> None:
        """Nothing to make: a given transport serves every event loop it is awaited in."""

    async def send(
        self, request: Request, timeouts: Timeouts | None = None, url: str | None = None
    ) -> Answer:
        """Send once through the given transport; return the answer or raise a FathomError."""
        target = url or self.base_url + request.target()
        outcome = await self._exchange(request, target, timeouts or self._default_timeouts)
        if isinstance(outcome, Answer):
            return outcome
        # Raised out here, and alone: the transport's exception (which may hold the
        # request, and so the token) is neither its __cause__ nor its __context__, and the
        # frame that met it or the raw answer is not on its traceback.
        raise_alone(outcome)

    async def _exchange(
        self, request: Request, url: str, timeouts: Timeouts
    ) -> Answer | FathomError:
        """The transport's answer, or the error to raise for what it did (the caller raises it).

        A FathomError the transport raises passes as it is, with this frame on its
        traceback: the request (the token in its headers) is in no local of it.
        """
        try:
            result = await self._given.send(
                TransportRequest(
                    request.method,
                    url,
                    self._headers if request.body is None else self._json_headers,
                    request.body,
                ),
                timeouts,
            )
        except FathomError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a transport we do not know
            return self._failed(exc, request.method, url)
        return self._answer(result, request.method, url)

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
        if self._echoes.found_in(body, headers):
            body, pairs = self._echoes.blot_answer(body, headers)
            headers = dict(pairs)
        return Answer(status, headers, body)

    def _failed(self, failure: Exception, method: str, url: str) -> APIConnectionError:
        said = detail(failure, self._echoes)
        if isinstance(failure, (TimeoutError, asyncio.TimeoutError)):
            return APITimeoutError(
                f"timed out waiting for the answer ({said})", method=method, url=url
            )
        return APIConnectionError(f"the transport failed ({said})", method=method, url=url)

    async def aclose(self) -> None:
        """Close the given transport, once (a closing client owns what it was given)."""
        if self.closed:
            return
        self.closed = True
        await self._given.aclose()
