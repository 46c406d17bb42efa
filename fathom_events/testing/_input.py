"""How the fake reads the values a request sends, as Fathom's Laravel application does.

Fathom's API is a Laravel application, and Laravel's default global middleware
changes every input value (query and body alike) before any check sees it. No
live answer confirms this for Fathom (see the API facts page), so the fake
follows Laravel's defaults:

- TrimStrings: a string is trimmed with Laravel 11's `Str::trim`, a regular
  expression in PHP's Unicode mode (`/u`): at either end it removes every
  character PCRE's `\\s` then matches (Unicode category Z, plus tab, LF, VT,
  FF, CR, U+0085 and U+180E), NUL (which later Laravel 11 releases add), and
  U+FEFF, U+200B and U+200E. Python's `str.strip()` differs: it would also
  remove U+001C..U+001F, which PHP keeps.
- ConvertEmptyStringsToNull: a string left empty is None (JSON null).

Laravel cleans nested arrays too; the fake reads only top-level values (a
nested one is refused by its type before its content matters), so only those
are cleaned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, overload

if TYPE_CHECKING:
    from collections.abc import Mapping

#: What `Str::trim` removes at either end (see the module docstring).
TRIMMED: Final = (
    "\x00\t\n\x0b\x0c\r \x85\xa0\u1680\u180e"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u200b\u200e\u2028\u2029\u202f\u205f\u3000\ufeff"
)


@overload
def clean(value: str | None) -> str | None: ...
@overload
def clean(value: object) -> object: ...
def clean(value: object) -> object:
    """`value` as Laravel's middleware leaves it: a string trimmed, then None if empty."""
    if not isinstance(value, str):
        return value
    return value.strip(TRIMMED) or None


def cleaned(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Every top-level value of `fields` cleaned (see `clean`)."""
    return {name: clean(value) for name, value in fields.items()}
