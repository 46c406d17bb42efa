"""Putting answers and faults on the wire with aiohttp.

Successful answers are always JSON. Error answers are JSON only when the
request's Accept header asks for JSON; otherwise they are an HTML page, as
the API does. Every wait here ends early when the server shuts down, so no
fault can hold up a shutdown.
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fathom_events.testing._api import Answer
    from fathom_events.testing._faults import Fault

# An answer as a client reads it: status, headers, body.
Reply = tuple[int, dict[str, str], bytes]
JSON_TYPE: Final = "application/json"
_CHUNK: Final = 64 * 1024
_HUGE_PREFIX: Final = b'{"id": "HUGEBODY", "object": "event", "name": "'
_HUGE_SUFFIX: Final = b'"}'
_HTML_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{reason}</title></head>
<body><div>{status} | {reason}</div></body>
</html>
"""


def wants_json(accept: str | None) -> bool:
    """Whether an Accept header lists application/json (or a +json type)."""
    for media_range in (accept or "").split(","):
        media_type = media_range.partition(";")[0].strip().lower()
        if media_type == JSON_TYPE or media_type.endswith("+json"):
            return True
    return False


def json_bytes(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def encode(answer: Answer, *, json_errors: bool) -> tuple[bytes, str]:
    """Return the body and Content-Type for `answer`: JSON, or an HTML error page."""
    if answer.status < http.HTTPStatus.BAD_REQUEST or json_errors:
        return json_bytes(answer.body), JSON_TYPE
    reason = http.HTTPStatus(answer.status).phrase
    page = _HTML_PAGE.format(status=answer.status, reason=reason)
    return page.encode(), "text/html; charset=utf-8"


def reply(answer: Answer, *, json_errors: bool) -> Reply:
    """`answer` as its status, headers and body bytes."""
    body, content_type = encode(answer, json_errors=json_errors)
    return answer.status, {**dict(answer.headers), "Content-Type": content_type}, body


def render(answer: Answer, *, json_errors: bool) -> web.Response:
    status, headers, body = reply(answer, json_errors=json_errors)
    return web.Response(status=status, body=body, headers=headers)


def drop(request: web.BaseRequest) -> web.Response:
    """Close the connection without a byte; the returned response is never sent."""
    request.protocol.force_close()
    return web.Response()


async def wait_or_stop(seconds: float, stopping: asyncio.Event) -> bool:
    """Sleep `seconds`; return True at once if the server starts shutting down."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        return False
    return True


def huge_chunks(size: int) -> Iterator[bytes]:
    """Yield `size` bytes of JSON-looking text (one huge string), chunk by chunk."""
    fill = size - len(_HUGE_PREFIX) - len(_HUGE_SUFFIX)
    if fill < 0:
        yield (_HUGE_PREFIX + _HUGE_SUFFIX)[:size]
        return
    yield _HUGE_PREFIX
    while fill > 0:
        count = min(_CHUNK, fill)
        yield b"x" * count
        fill -= count
    yield _HUGE_SUFFIX


async def deliver(
    fault: Fault,
    request: web.BaseRequest,
    perform: Callable[[], Answer],
    *,
    json_errors: bool,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """Play `fault` out for `request`; `perform` does the real action and answers."""
    if fault.kind == "delay":
        if await wait_or_stop(fault.seconds, stopping):
            return drop(request)
        return render(perform(), json_errors=json_errors)
    if fault.kind == "hang":
        await stopping.wait()
        return drop(request)
    if fault.kind == "truncated_json":
        answer = perform()
        whole = json_bytes(answer.body)
        return web.Response(
            status=answer.status, body=whole[: len(whole) // 2], content_type=JSON_TYPE
        )
    if fault.kind == "trickle":
        answer = perform()
        body, content_type = encode(answer, json_errors=json_errors)
        response = web.StreamResponse(status=answer.status, headers=answer.headers)
        response.headers["Content-Type"] = content_type
        chunks = (body[start : start + fault.size] for start in range(0, len(body), fault.size))
        return await _stream(
            request, response, chunks, length=len(body), interval=fault.seconds, stopping=stopping
        )
    if fault.after_action:
        perform()
    if fault.kind == "disconnect":
        return drop(request)
    if fault.kind == "huge_body":
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
        return await _stream(
            request,
            response,
            huge_chunks(fault.size),
            length=fault.size,
            interval=0,
            stopping=stopping,
        )
    if fault.kind == "malformed_json":
        return web.Response(status=200, body=fault.body, content_type=JSON_TYPE)
    return web.Response(status=fault.status, body=fault.body, headers=fault.headers)


async def _stream(
    request: web.BaseRequest,
    response: web.StreamResponse,
    chunks: Iterator[bytes],
    *,
    length: int,
    interval: float,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """Send `chunks` as the `length`-byte body of `response`, `interval` apart."""
    response.content_length = length
    try:
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if index and interval and await wait_or_stop(interval, stopping):
                return drop(request)
            await response.write(chunk)
    except ConnectionError:
        # The client went away mid-body (it gave up on purpose, in most tests).
        return drop(request)
    return response
