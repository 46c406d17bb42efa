"""Faults played out in memory, for `MemoryTransport(fake)`: the answer, after the waits.

With no wire, each fault becomes what a client would end up reading: an
answer, an exception (`disconnect` raises `ConnectionResetError`, as a
dropped connection does), or a wait (`delay`, `hang`, `trickle`, which the
memory transport bounds by the client's timeout). Nothing is compressed or
streamed, so a fault's body arrives whole and as it was written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from fathom_events.testing._wire import JSON_TYPE, huge_chunks, json_bytes, reply

if TYPE_CHECKING:
    from collections.abc import Callable

    from fathom_events.testing._api import Answer
    from fathom_events.testing._faults import Fault
    from fathom_events.testing._wire import Reply

_JSON_HEADERS = {"Content-Type": JSON_TYPE}


async def play_at_once(fault: Fault, perform: Callable[[], Answer], *, json_errors: bool) -> Reply:
    """Play `fault` out in memory; `perform` does the real action and answers."""
    if fault.kind == "delay":
        await anyio.sleep(fault.seconds)
        return reply(perform(), json_errors=json_errors)
    if fault.kind == "hang":
        await anyio.sleep_forever()
    if fault.kind == "truncated_json":
        answer = perform()
        whole = json_bytes(answer.body)
        return answer.status, dict(_JSON_HEADERS), whole[: len(whole) // 2]
    if fault.kind == "trickle":
        status, headers, body = reply(perform(), json_errors=json_errors)
        # The wire pauses between chunks: the whole body is read after every pause.
        chunks = -(-len(body) // fault.size)
        await anyio.sleep(fault.seconds * max(chunks - 1, 0))
        return status, headers, body
    if fault.after_action:
        perform()
    if fault.kind == "disconnect":
        raise ConnectionResetError("the fake closed the connection without answering")
    if fault.kind == "huge_body":
        return 200, dict(_JSON_HEADERS), b"".join(huge_chunks(fault.size))
    if fault.kind == "malformed_json":
        return 200, dict(_JSON_HEADERS), fault.body
    return fault.status, dict(fault.headers), fault.body
