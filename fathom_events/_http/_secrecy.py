"""Keeping the token secret: holding it, finding an echo of it, and raising alone.

:class:`Secret` holds the token (and a proxy's credentials) and never shows
it. :class:`TokenEchoes` finds the token wherever a server (or a transport) quotes
it back; the sender is the one place that uses it to blot the token out.
:func:`raise_alone` raises an error with no context and no frames below the
caller, so that nothing holding the request (and so the token) rides along.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import NoReturn, Protocol

__all__ = [
    "MIN_BLOTTED_TOKEN",
    "REDACTED",
    "HoldsToken",
    "Secret",
    "TokenEchoes",
    "raise_alone",
]

REDACTED = "********"


class HoldsToken(Protocol):
    """What holds the token and shows it only when asked (:class:`Secret` is one)."""

    def reveal(self) -> str:
        """The token itself."""
        ...


class Secret:
    """A value that never shows itself in a repr or a string: the API token (or a proxy's
    credentials), once read."""

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

    __slots__ = ("_anchor", "_anchor_bytes", "_anchor_lower", "_bytes", "_name", "_short", "_text")

    def __init__(self, token: HoldsToken) -> None:
        secret = token.reveal()
        pattern = "".join(map(_echo_pattern, secret))
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode())
        # A header's name may come back in another case (HTTP/2 and httpx lower-case
        # names), the token in it too: a name is searched without regard to case.
        self._name = re.compile(pattern, re.IGNORECASE)
        self._short = len(secret) < MIN_BLOTTED_TOKEN
        # A form made by an encoder in common use holds the token's longest run of what
        # comes back as sent: looked for first, as a plain search (a 13 kB page with a token
        # like Fathom's: 4 us in all, against 9 us for the pattern alone). A form escaping
        # every character needs an escape in the text: the pattern runs then too.
        self._anchor = max(_RUN_AS_SENT.findall(secret), key=len, default="")
        self._anchor_bytes = self._anchor.encode()
        self._anchor_lower = self._anchor.lower()

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
            self._quoted_in_name(name) or self._quoted_in(value) for name, value in headers.items()
        )

    def blot_answer(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The body, and the headers as pairs, with the token blotted out (names too).

        For an answer :meth:`found_in` found the token in.
        """
        return self.blot_bytes(body), [
            (
                self._name.sub(REDACTED, name) if self._quoted_in_name(name) else name,
                self.blot(value),
            )
            for name, value in headers.items()
        ]

    def blot_bytes(self, data: bytes) -> bytes:
        """``data`` with the token blotted out."""
        return self._bytes.sub(REDACTED.encode(), data) if not self._short else data

    def blot(self, text: str) -> str:
        """``text`` with the token blotted out."""
        return self._text.sub(REDACTED, text) if self._quoted_in(text) else text

    def _quoted_in(self, text: str) -> bool:
        return (
            not self._short
            and (self._anchor in text or _may_escape(text))
            and self._text.search(text) is not None
        )

    def _quoted_in_name(self, name: str) -> bool:
        return (
            not self._short
            and (self._anchor_lower in name.lower() or _may_escape(name))
            and self._name.search(name) is not None
        )


def words_of(exc: BaseException, text: object = None) -> str:
    """An exception's class and its own words (or ``text``), as they are; it never raises.

    Not blotted: the sender blots every error's text before it leaves.
    """
    try:
        said = str(exc if text is None else text)
    except Exception:  # noqa: BLE001 - an exception's str may do anything
        said = ""
    return f"{type(exc).__name__}: {said}" if said else type(exc).__name__


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
