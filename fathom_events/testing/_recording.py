"""What the fake heard: one frozen `RecordedRequest` per request received."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from fathom_events.testing._api import bearer_token
from fathom_events.testing._input import load_json

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from aiohttp import web

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


def _masked_headers(headers: dict[str, str]) -> str:
    shown = {}
    for name, value in headers.items():
        if name in _SECRET_HEADERS:
            scheme, _, secret = value.partition(" ")
            value = f"{scheme} ***" if secret else "***"  # noqa: PLW2901 - masking in place
        shown[name] = value
    return repr(shown)


@attrs.frozen
class RecordedRequest:
    """One request as the fake received it. The repr masks the Authorization header.

    Attributes:
        method: The HTTP method, upper case.
        path: The path, percent-decoded segment by segment (joined with "/").
        raw_path: The path as sent, without the query.
        query: The last value of each query parameter, as the fake reads it.
        query_pairs: Every query pair, repeats included, in order.
        headers: The headers, with lower-case names; repeated headers are
            joined with ", ".
        body: The body as sent.
        json: The parsed body, or None if it is empty or not JSON.
    """

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    query_pairs: tuple[tuple[str, str], ...]
    headers: dict[str, str] = attrs.field(repr=_masked_headers)
    body: bytes
    json: Any

    @property
    def token(self) -> str | None:
        """The bearer token sent, or None if there was no `Bearer <token>` header."""
        return bearer_token(self.headers.get("authorization"))

    def header(self, name: str) -> str | None:
        """The value of header `name` (any case), or None."""
        return self.headers.get(name.lower())


def split_raw_path(raw_path: str) -> tuple[str, str]:
    """Split a request target into its raw path and raw query."""
    path, _, query = raw_path.partition("?")
    return path, query


def decode_segments(raw_path: str) -> tuple[str, ...] | None:
    """Percent-decode each segment of `raw_path` on its own; None if not UTF-8.

    Splitting before decoding keeps an encoded "/" (%2F) inside its segment.
    """
    try:
        return tuple(unquote(part, errors="strict") for part in raw_path.split("/")[1:])
    except UnicodeDecodeError:
        return None


def record(request: web.BaseRequest, body: bytes) -> RecordedRequest:
    """What the fake received over HTTP."""
    return _recorded(request.method, request.raw_path, request.headers.items(), body)


def record_sent(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None
) -> RecordedRequest:
    """What the fake would receive for a request a client sends to the absolute `url`."""
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    return _recorded(method, target, headers.items(), body or b"")


def _recorded(
    method: str, target: str, header_items: Iterable[tuple[str, str]], body: bytes
) -> RecordedRequest:
    raw_path, raw_query = split_raw_path(target)
    # The checks only skip work that would change nothing (the memory transport records
    # every request a micro-benchmark sends, so its cost is measured with the client's).
    path = (
        "/".join(unquote(part, errors="replace") for part in raw_path.split("/"))
        if "%" in raw_path
        else raw_path
    )
    pairs = tuple(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else ()
    headers: dict[str, str] = {}
    for name, value in header_items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    try:
        parsed = load_json(body) if body else None
    except ValueError:  # UnicodeDecodeError too
        parsed = None
    return RecordedRequest(
        method=method,
        path=path,
        raw_path=raw_path,
        query=dict(pairs),
        query_pairs=pairs,
        headers=headers,
        body=body,
        json=parsed,
    )
