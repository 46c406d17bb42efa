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

A Laravel app reads a JSON body (a Content-Type ending in /json or +json) and
a form body (application/x-www-form-urlencoded) alike; PHP reads the form, and
the query string, into fields (`php_fields`). Any other body is refused, as is
one the fake cannot read: malformed or too deeply nested JSON, a form that is
not UTF-8 or has more than 1000 fields (PHP's max_input_vars would drop the
rest with a warning; the fake says so instead).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, overload
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

FORM_TYPE: Final = "application/x-www-form-urlencoded"
MAX_FIELDS: Final = 1000  # PHP's default max_input_vars
NOT_READABLE: Final = (
    "Send the request body as JSON (Content-Type: application/json)"
    f" or as a form (Content-Type: {FORM_TYPE})."
)

#: A field as PHP reads it: a string, or an array (`key[]=...`; its values, however nested).
Field = str | list[str]

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


class InputError(ValueError):
    """A body the fake cannot read; the message is the 400 answer's `error`."""


def load_json(raw: bytes | str) -> Any:
    """Parse JSON; raises ValueError when it is malformed, nested too deeply to parse, or
    holds a lone surrogate (``"\\ud800"``), which is not text: PHP's json_decode refuses it
    too, and a stored one could never be written out again."""
    try:
        parsed = json.loads(raw)
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")  # a lone surrogate fails here
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("JSON holds a lone surrogate") from None
    return parsed


def php_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, Field]:
    """Decoded `key=value` pairs (a query, a form) as PHP registers them as variables.

    A key is cut at a NUL and its leading spaces dropped; spaces and dots in
    its name become "_" (so "starting.after" is starting_after). `key[...]`
    (with a closing "]") makes `key` an array, whatever the brackets hold; an
    unclosed "[" becomes "_" too. A key given again replaces the earlier value,
    so the last one wins (array entries add up).
    """
    fields: dict[str, Field] = {}
    for key, value in pairs:
        name, is_array = _php_name(key)
        previous = fields.get(name)
        if not is_array:
            fields[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            fields[name] = [value]
    return fields


def _php_name(key: str) -> tuple[str, bool]:
    """The variable PHP registers for `key`, and whether it is an array."""
    name, bracket, rest = key.partition("\0")[0].lstrip(" ").partition("[")
    name = _underscored(name)
    if not bracket:
        return name, False
    if "]" in rest:
        return name, True
    return f"{name}_{_underscored(rest).replace('[', '_')}", False


def _underscored(name: str) -> str:
    return name.replace(" ", "_").replace(".", "_")


def read_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """The fields of a create or update body, JSON or a form, cleaned; raises InputError."""
    if not raw.strip():
        return {}
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == FORM_TYPE:
        return cleaned(_form(raw))
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise InputError(NOT_READABLE)
    try:
        body = load_json(raw)
    except ValueError:
        raise InputError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InputError("The request body must be a JSON object.")
    return cleaned(body)


def _form(raw: bytes) -> dict[str, Field]:
    try:
        pairs = parse_qsl(
            raw.decode(), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise InputError("The form body is not UTF-8 text.") from None
    except ValueError:
        raise InputError(f"The form body has more than {MAX_FIELDS} fields.") from None
    return php_fields(pairs)
