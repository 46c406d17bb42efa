"""What the command line says before anything heavy is loaded, and how it is made safe.

``--help``, ``--version`` and a usage error need only this module (no rich,
no client, no aiohttp): the command's name, the token's variable, the error
shown as it is, and :func:`escape_controls`.

Names and messages come from the API and the user, so nothing is printed as
it came: :func:`escape_controls` shows every character that could move the
cursor, retitle the window, reorder the text or start a new line as a visible
escape (``\x1b``, ``\n``, ``\u202e``); :func:`json_text` escapes the same
characters the JSON way.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "BASE_URL_ENV",
    "PROG",
    "REDIS_URL_ENV",
    "TOKEN_ENV",
    "UsageError",
    "escape_controls",
    "json_text",
]

PROG = "fathom-events"
# The variable AsyncClient reads its token from when given none (as documented there);
# the command line names it in its help and its messages.
TOKEN_ENV = "FATHOM_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret
BASE_URL_ENV = "FATHOM_API_BASE_URL"
# The command line's own variable for --redis-url (the library takes the URL as given).
REDIS_URL_ENV = "FATHOM_EVENTS_REDIS_URL"


class UsageError(Exception):
    """Arguments or input the command cannot use: exit code 2, nothing sent; shown as it is."""


# What no name or message may print raw. C0 controls (ESC starts escape sequences;
# \n \r \v \f and \x1c-\x1e end a line for someone), DEL, C1 controls (\x9b is an
# 8-bit CSI to some terminals), the line and paragraph separators (str.splitlines
# ends lines there), the bidi embeddings, overrides and isolates that reorder what is
# shown ("Trojan Source"; the set Rust's text_direction_codepoint lints refuse), and
# lone surrogates (no UTF-8 stream can carry them).
_BEYOND_C0 = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# JSON's encoder escapes C0 itself; a raw \n left in its text is its own indentation.
_UNSAFE_IN_JSON = re.compile(f"[{_BEYOND_C0}]")
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` safe for a terminal and for a line reader: each unsafe character escaped.

    Control characters become ``\\t``, ``\\n``, ``\\r`` or ``\\xHH``; bidi controls,
    line separators and lone surrogates ``\\uHHHH``. Everything else (accents, CJK,
    emoji, a backslash, rich markup) is kept as it is, so the escapes are for people
    to read, not to decode. ``keep`` names characters to leave (a traceback's ``\\n``).
    """
    return _UNSAFE.sub(lambda found: found[0] if found[0] in keep else _escape(found[0]), text)


def json_text(document: object, *, compact: bool = False) -> str:
    """``document`` as JSON text that is safe on a terminal and in any UTF-8 file.

    Non-ASCII text stays readable; what :func:`escape_controls` escapes is
    written as a JSON ``\\uXXXX`` escape, so a decoder gets every value back
    exactly, a lone surrogate included.
    """
    text = json.dumps(document, indent=None if compact else 2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda found: f"\\u{ord(found[0]):04x}", text)
