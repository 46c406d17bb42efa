"""Scripted misbehaviour: what a `Fault` is, and the queue that hands them out.

A test injects faults by method and path glob; each request takes the first
matching fault (first injected, first used) until its `times` run out.
How a fault is played out on the wire lives in `_wire.py`.
"""

from __future__ import annotations

import fnmatch
import http
import json as jsonlib
import re
import threading
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

FaultKind = Literal[
    "respond",
    "delay",
    "hang",
    "disconnect",
    "truncated_json",
    "malformed_json",
    "huge_body",
    "trickle",
]

_NGINX_PAGE = """<html>
<head><title>{status} {reason}</title></head>
<body>
<center><h1>{status} {reason}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""

_STATUS_MIN = 100
_STATUS_MAX = 599


def _check_status(status: int) -> int:
    if not isinstance(status, int) or not _STATUS_MIN <= status <= _STATUS_MAX:
        raise ValueError(f"status must be an integer from 100 to 599; got {status!r}")
    return status


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers that frame the answer: set by aiohttp, never by a fault (a wrong one breaks it).
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_HEADER_VALUE_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_headers(headers: Mapping[str, str]) -> None:
    """Header names are tokens and values hold no line break or control: else aiohttp could
    not send the fault's answer (and would drop the connection instead)."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"header name {name!r:.100} is not an HTTP token")
        if name.lower() in _FRAMING:
            raise ValueError(
                f"header {name!r} cannot be set: the fake frames its answers itself"
                " (use Fault.trickle, huge_body or truncated_json for odd bodies)"
            )
        if not isinstance(value, str) or _HEADER_VALUE_UNSAFE.search(value):
            raise ValueError(
                f"header {name!r} must be text without line breaks or controls; got {value!r:.100}"
            )


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0; got {value!r}")


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted misbehaviour. Build it with a classmethod, e.g. `Fault.hang()`.

    Give it to `FakeFathom.inject` (or describe it in JSON for
    `FakeFathom.inject_spec` and ``fake-server --fault``).

    Attributes:
        kind: What happens (see the classmethods).
        status: The status of the answer sent by `respond` and the canned-body kinds.
        headers: The headers of that answer.
        body: The body of that answer.
        seconds: The wait of `delay`, the pause between chunks of `trickle`.
        size: Total body bytes of `huge_body`; bytes per chunk of `trickle`.
        after_action: Perform the real action first (the create takes
            effect), then misbehave. `delay`, `truncated_json` and `trickle`
            always do.
    """

    kind: FaultKind
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    seconds: float = 0.0
    size: int = 0
    after_action: bool = False

    @classmethod
    def respond(
        cls,
        status: int,
        *,
        json: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        after_action: bool = False,
    ) -> Fault:
        """Answer with this status, headers and body instead of the real answer.

        `status` is any status from 100 to 599; `headers` are added to the
        answer's. `json` is serialised with Content-Type application/json;
        `text` is sent as UTF-8 with `content_type` (default text/plain). Pass
        at most one. `after_action=True` performs the real action first (a
        create takes effect), then misbehaves.
        """
        if json is not None and text is not None:
            raise ValueError("pass json or text, not both")
        extra = dict(headers or {})
        if json is not None:
            try:
                body = jsonlib.dumps(json, allow_nan=False).encode()
            except ValueError:
                raise ValueError("json must be JSON: no NaN or infinity") from None
            content_type = content_type or "application/json"
        elif text is not None:
            body = text.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            body = b""
        has_type = any(name.lower() == "content-type" for name in extra)
        if content_type is not None and not has_type:
            extra["Content-Type"] = content_type
        _check_headers(extra)
        return cls(
            kind="respond",
            status=_check_status(status),
            headers=tuple(extra.items()),
            body=body,
            after_action=after_action,
        )

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Fault:
        """A 429 `{"error": "Too many requests."}`; `retry_after` its `Retry-After` (None: none)."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        return cls.respond(429, json={"error": "Too many requests."}, headers=headers)

    @classmethod
    def html(cls, status: int = 502, *, after_action: bool = False) -> Fault:
        """An nginx-style HTML error page of `status`, as a gateway in front of the API sends.

        `after_action=True` performs the real action first (a create takes effect), then misbehaves.
        """
        reason = http.HTTPStatus(_check_status(status)).phrase
        return cls.respond(
            status,
            text=_NGINX_PAGE.format(status=status, reason=reason),
            headers={"Server": "nginx"},
            content_type="text/html",
            after_action=after_action,
        )

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait `seconds`, then perform the request and answer normally."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative; got {seconds!r}")
        return cls(kind="delay", seconds=seconds)

    @classmethod
    def hang(cls) -> Fault:
        """Accept the request and never answer; the connection drops at shutdown."""
        return cls(kind="hang")

    @classmethod
    def disconnect(cls, *, after_action: bool = False) -> Fault:
        """Close the connection without sending a byte.

        `after_action=True` performs the real action first (a create takes effect), then misbehaves.
        """
        return cls(kind="disconnect", after_action=after_action)

    @classmethod
    def truncated_json(cls) -> Fault:
        """Perform the request; send its status with the JSON body cut in half."""
        return cls(kind="truncated_json", after_action=True)

    @classmethod
    def malformed_json(cls, body: str = '{"id": ', *, after_action: bool = False) -> Fault:
        """A 200 with Content-Type application/json and `body`, which is not JSON.

        `after_action=True` performs the real action first (a create takes effect), then misbehaves.
        """
        return cls(kind="malformed_json", body=body.encode(), after_action=after_action)

    @classmethod
    def huge_body(cls, size_bytes: int, *, after_action: bool = False) -> Fault:
        """A 200 application/json answer of `size_bytes` bytes, streamed in chunks.

        `after_action=True` performs the real action first (a create takes effect), then misbehaves.
        """
        _check_positive("size_bytes", size_bytes)
        return cls(kind="huge_body", size=size_bytes, after_action=after_action)

    @classmethod
    def trickle(cls, bytes_per_chunk: int, interval: float) -> Fault:
        """Perform the request; send the body `bytes_per_chunk` at a time, `interval` apart."""
        _check_positive("bytes_per_chunk", bytes_per_chunk)
        if interval < 0:
            raise ValueError(f"interval must not be negative; got {interval!r}")
        return cls(kind="trickle", size=bytes_per_chunk, seconds=interval, after_action=True)


@attrs.define
class _Rule:
    fault: Fault
    method: str
    path: str
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return fnmatch.fnmatchcase(method.upper(), self.method) and fnmatch.fnmatchcase(
            path, self.path
        )


class FaultQueue:
    """Injected faults, consumed first in, first out; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def add(self, fault: Fault, method: str, path: str, times: int) -> None:
        if not isinstance(fault, Fault):
            raise TypeError(f"fault must be a Fault; got {type(fault).__name__}")
        if not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an integer of at least 1; got {times!r}")
        with self._lock:
            self._rules.append(_Rule(fault, method.upper(), path, times))

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._rules[index]
                    return rule.fault
            return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(rule.remaining for rule in self._rules)
