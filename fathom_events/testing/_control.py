"""Faults described in JSON, for test suites in any language, and the endpoint that takes them.

A fault description is one JSON object: `fault` names a `Fault` classmethod,
its keywords are the other fields, and `method`, `path` (globs, default "*")
and `times` (default 1) say which requests it hits, as `FakeFathom.inject`
takes them:

    {"method": "POST", "path": "/v1/sites/*/events", "fault": "respond",
     "status": 503, "times": 2}

`parse_fault_spec` is the one reader of it: `FakeFathom.inject_spec`,
`fake-server --fault SPEC` and the control endpoint (`POST /_fake/faults`)
all go through it, so each refuses the same input with the same message.

The control endpoint, served only when `FakeFathom(control_endpoint=True)`
(and by `fake-server`), lives beside the API, not under /v1: its requests are
not recorded, take no fault and spend no rate budget. `GET /_fake/faults`
answers `{"pending_faults": N}`, `POST` injects the body's fault (and answers
the same), `DELETE` clears every fault. A description it cannot read answers
400 `{"error": "fault description: ..."}`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
from aiohttp import web

from fathom_events.testing._faults import Fault
from fathom_events.testing._input import load_json
from fathom_events.testing._wire import json_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

CONTROL_PATH: Final = "/_fake/faults"
_ALLOWED: Final = "GET, POST, DELETE"
_WHERE: Final = {"method": "*", "path": "*", "times": 1}
_EXAMPLE: Final = (
    '{"method": "POST", "path": "/v1/sites/*/events", "fault": "respond", "status": 503}'
)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_headers(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


# What a field must be: the check, and its words in a message.
_TYPES: Final[dict[str, tuple[Callable[[object], bool], str]]] = {
    "integer": (_is_integer, "an integer"),
    "number": (_is_number, "a number"),
    "string": (lambda value: isinstance(value, str), "a string"),
    "string or null": (lambda value: value is None or isinstance(value, str), "a string or null"),
    "boolean": (lambda value: isinstance(value, bool), "true or false"),
    "headers": (_is_headers, "an object of strings"),
    "any": (lambda _: True, "JSON"),
}


@attrs.frozen
class _Kind:
    """One Fault classmethod: its fields' types, and which of them it needs."""

    build: Callable[..., Fault]
    fields: Mapping[str, str]
    required: frozenset[str] = frozenset()


_AFTER: Final = {"after_action": "boolean"}
_KINDS: Final[dict[str, _Kind]] = {
    "respond": _Kind(
        Fault.respond,
        {
            "status": "integer",
            "json": "any",
            "text": "string",
            "headers": "headers",
            "content_type": "string",
            **_AFTER,
        },
        frozenset({"status"}),
    ),
    "rate_limited": _Kind(Fault.rate_limited, {"retry_after": "string or null"}),
    "html": _Kind(Fault.html, {"status": "integer", **_AFTER}),
    "delay": _Kind(Fault.delay, {"seconds": "number"}, frozenset({"seconds"})),
    "hang": _Kind(Fault.hang, {}),
    "disconnect": _Kind(Fault.disconnect, _AFTER),
    "truncated_json": _Kind(Fault.truncated_json, {}),
    "malformed_json": _Kind(Fault.malformed_json, {"body": "string", **_AFTER}),
    "huge_body": _Kind(
        Fault.huge_body, {"size_bytes": "integer", **_AFTER}, frozenset({"size_bytes"})
    ),
    "trickle": _Kind(
        Fault.trickle,
        {"bytes_per_chunk": "integer", "interval": "number"},
        frozenset({"bytes_per_chunk", "interval"}),
    ),
}


@attrs.frozen
class FaultSpec:
    """A fault and the requests it hits, as `FakeFathom.inject` takes them."""

    fault: Fault
    method: str = "*"
    path: str = "*"
    times: int = 1


class FaultSpecError(ValueError):
    """A fault description that cannot be read; the message says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"fault description: {problem}")


def parse_fault_spec(text: str | bytes) -> FaultSpec:
    """Read one fault description (JSON text); raises FaultSpecError saying what is wrong."""
    try:
        spec = load_json(text)
    except ValueError:
        raise FaultSpecError("not valid JSON") from None
    if not isinstance(spec, dict):
        raise FaultSpecError(f"must be a JSON object, like {_EXAMPLE}")
    kinds = ", ".join(_KINDS)
    if "fault" not in spec:
        raise FaultSpecError(f"'fault' is missing: one of {kinds}")
    kind = _KINDS.get(spec["fault"]) if isinstance(spec["fault"], str) else None
    if kind is None:
        raise FaultSpecError(f"'fault' must be one of {kinds}; got {spec['fault']!r:.100}")
    where = {**_WHERE, **{name: spec[name] for name in _WHERE if name in spec}}
    if not isinstance(where["method"], str):
        raise FaultSpecError("'method' must be a string (a glob, e.g. POST or *)")
    if not isinstance(where["path"], str):
        raise FaultSpecError("'path' must be a string (a glob, e.g. /v1/sites/*/events)")
    if not _is_integer(where["times"]) or where["times"] < 1:
        raise FaultSpecError(f"'times' must be an integer >= 1; got {where['times']!r:.100}")
    keywords = {name: value for name, value in spec.items() if name not in {"fault", *_WHERE}}
    return FaultSpec(_build(spec["fault"], kind, keywords), **where)


def _build(name: str, kind: _Kind, keywords: dict[str, Any]) -> Fault:
    for field, value in keywords.items():
        if field not in kind.fields:
            takes = ", ".join(kind.fields) or "no other field"
            raise FaultSpecError(
                f"unknown field {field!r:.100} for fault {name!r} (it takes {takes})"
            )
        check, words = _TYPES[kind.fields[field]]
        if not check(value):
            raise FaultSpecError(f"{field!r} must be {words}; got {value!r:.100}")
    missing = sorted(kind.required - keywords.keys())
    if missing:
        raise FaultSpecError(f"{missing[0]!r} is missing: fault {name!r} needs it")
    try:
        return kind.build(**keywords)
    except ValueError as exc:  # the Fault's own checks
        raise FaultSpecError(str(exc)) from None


class Faults(Protocol):
    """What the control endpoint drives: a `FakeFathom`'s faults."""

    def inject_spec(self, spec: str | bytes) -> None: ...
    def clear_faults(self) -> None: ...
    def pending_faults(self) -> int: ...


async def answer_control(faults: Faults, request: web.Request) -> web.Response:
    """Answer a request to the control endpoint (any path under /_fake/)."""
    if request.path != CONTROL_PATH:
        return _json(404, {"error": f"Not found; the control endpoint is {CONTROL_PATH}."})
    if request.method == "POST":
        try:
            faults.inject_spec(await request.read())
        except FaultSpecError as exc:
            return _json(400, {"error": str(exc)})
    elif request.method == "DELETE":
        faults.clear_faults()
    elif request.method != "GET":
        return _json(405, {"error": f"Use {_ALLOWED}."}, Allow=_ALLOWED)
    return _json(200, {"pending_faults": faults.pending_faults()})


def _json(status: int, body: object, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=json_bytes(body), content_type="application/json", headers=headers
    )
