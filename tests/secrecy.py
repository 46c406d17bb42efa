"""Proof that a secret reaches nothing an exception leads to, here or in another process.

:func:`assert_token_free` walks every object reachable from an exception (its
args, its ``__dict__`` and slots, its ``__cause__`` and ``__context__``, and
whatever those hold, such as aiohttp's ``request_info``) and fails if the
token shows in any repr or str. :func:`summary` describes an error by what a
caller reads from it; :func:`unpickled_summary` is that summary taken in
another process, from pickled bytes.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None))
_LIMIT = 20_000  # objects visited per exception: enough for any chain we raise


def _children(obj: object) -> Iterator[object]:
    if isinstance(obj, BaseException):
        yield from obj.args
        yield obj.__cause__
        yield obj.__context__
    if isinstance(obj, (list, tuple, set, frozenset)):
        yield from obj
    elif isinstance(obj, dict) or callable(getattr(obj, "items", None)):
        try:
            for key, value in obj.items():  # type: ignore[attr-defined]
                yield key
                yield value
        except Exception:  # noqa: BLE001, S110 - an odd mapping: its repr is still checked
            pass
    if isinstance(obj, type):
        return  # a class's namespace is code, not data the error carries
    yield from getattr(obj, "__dict__", {}).values()
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in {"__dict__", "__weakref__"} and hasattr(obj, name):
                yield getattr(obj, name)


def reachable(root: object, limit: int = _LIMIT) -> Iterator[object]:
    """Each object reachable from ``root`` through data (not code), once, ``limit`` at most."""
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if not isinstance(obj, _ATOMS):
            stack.extend(_children(obj))


def _shows(obj: object, token: str) -> bool:
    for show in (repr, str):
        try:
            text = show(obj)
        except Exception:  # noqa: BLE001, S112 - an object that cannot show itself shows nothing
            continue
        if token in text:
            return True
    return False


def assert_token_free(error: BaseException, token: str) -> None:
    """No object reachable from ``error`` shows ``token`` in its repr or str, nor in a pickle."""
    for obj in reachable(error):
        assert not _shows(obj, token), f"the token shows in a {type(obj).__name__}: {obj!r:.300}"
    assert token.encode() not in pickle.dumps(error)


def summary(error: BaseException) -> dict[str, Any]:
    """What a caller reads from an error: class, message, args and every attribute."""
    fields = {
        name: getattr(error, name)
        for name in ("status", "message", "method", "url", "attempts", "may_have_been_applied")
        if hasattr(error, name)
    }
    return {
        "class": f"{type(error).__module__}.{type(error).__qualname__}",
        "str": str(error),
        "repr": repr(error),
        "args": error.args,
        "fields": fields,
        "dict": dict(vars(error)),
    }


def unpickled_summary(blob: bytes) -> dict[str, Any]:
    """The summary of the error pickled in ``blob``: run in another process by the tests."""
    return summary(pickle.loads(blob))  # noqa: S301 - bytes our own test just made
