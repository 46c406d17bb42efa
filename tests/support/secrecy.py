"""Proof that a secret reaches nothing an exception leads to, here or in another process.

:func:`assert_token_free` walks every object reachable from an exception (its
args, its ``__dict__`` and slots, its ``__cause__`` and ``__context__``, and
whatever those hold, such as aiohttp's ``request_info``) and fails if the
token shows in any repr or str. It then does the same for the locals of every
frame along the tracebacks of the exception, its cause, its context and the
members of an exception group, as ``traceback`` with ``capture_locals=True``,
pytest's ``--showlocals``, rich's ``show_locals`` and Sentry show them.
:func:`summary` describes an error by what a caller reads from it;
:func:`unpickled_summary` is that summary taken in another process, from
pickled bytes.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from fathom_events._http._sender import Sender
from fathom_events._options import Secret

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


def reachable(root: object, limit: int = _LIMIT, opaque: tuple[type, ...] = ()) -> Iterator[object]:
    """Each object reachable from ``root`` through data (not code), once, ``limit`` at most.

    An ``opaque`` object is given, but what it holds is not walked.
    """
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if not isinstance(obj, (*_ATOMS, *opaque)):
            stack.extend(_children(obj))


def _shows(obj: object, forms: Iterable[str]) -> bool:
    for show in (repr, str):
        try:
            text = show(obj)
        except Exception:  # noqa: BLE001, S112 - an object that cannot show itself shows nothing
            continue
        if any(form in text for form in forms):
            return True
    return False


#: What holds the token by design, and shows it in no repr or str: the Secret, and the
#: sender (the headers it builds, the echoes it looks for). A frame of the library may
#: hold these (a client,
#: its settings and its resources lead to them); their repr and str are checked, and what
#: they hold is not walked: it is the token, on purpose.
KEEPERS: tuple[type, ...] = (Secret, Sender)
#: The tests' own code: its frames hold the token (they hand it to the client).
_TESTS = str(Path(__file__).parents[1])


def exceptions_along(error: BaseException) -> Iterator[BaseException]:
    """``error`` and, once each, every exception its cause, context and group members lead to."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        exc = stack.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        stack += [exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())]


def frames_along(error: BaseException) -> Iterator[FrameType]:
    """Each frame on the traceback of every exception :func:`exceptions_along` gives."""
    for exc in exceptions_along(error):
        tb = exc.__traceback__
        while tb is not None:
            yield tb.tb_frame
            tb = tb.tb_next


def _captured(error: BaseException) -> Iterator[traceback.FrameSummary]:
    """Every frame summary ``traceback`` builds with ``capture_locals=True``, chain and groups."""
    stack = [traceback.TracebackException.from_exception(error, capture_locals=True)]
    while stack:
        summary = stack.pop()
        yield from summary.stack
        # An exception group's members (TracebackException has them from Python 3.11).
        members = getattr(summary, "exceptions", None) or ()
        linked = [summary.__cause__, summary.__context__, *members]
        stack += [each for each in linked if each is not None]


def _name_of(frame: FrameType) -> str:
    code = frame.f_code
    return getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11 and later


def assert_frames_token_free(error: BaseException, forms: Iterable[str]) -> None:
    """No frame along ``error``'s tracebacks holds the token, the tests' own frames aside.

    What ``traceback`` prints with ``capture_locals=True`` is checked, and then every
    object a frame's locals lead to (the :data:`KEEPERS` are only shown, not walked).
    """
    for summary in _captured(error):
        if summary.filename.startswith(_TESTS):
            continue
        for name, shown in (summary.locals or {}).items():
            assert not any(form in shown for form in forms), (
                f"the token shows in {summary.name}'s local {name!r} ({summary.filename}:"
                f"{summary.lineno}): {shown:.300}"
            )
    for frame in frames_along(error):
        if frame.f_code.co_filename.startswith(_TESTS):
            continue
        for name, value in frame.f_locals.items():
            for obj in reachable(value, opaque=KEEPERS):
                assert not _shows(obj, forms), (
                    f"the token shows in {_name_of(frame)}'s local {name!r}"
                    f" ({frame.f_code.co_filename}:{frame.f_lineno}), in a"
                    f" {type(obj).__name__}: {obj!r:.300}"
                )


def assert_chain_free(error: BaseException, secret: str, *forms: str) -> None:
    """Nothing ``error`` holds shows ``secret`` (or one of its ``forms``), nor does a pickle.

    That is every object reachable from it: its message, args and attributes,
    its ``__cause__`` and ``__context__`` and what they hold.
    """
    every = (secret, *forms)
    for obj in reachable(error):
        assert not _shows(obj, every), f"the secret shows in a {type(obj).__name__}: {obj!r:.300}"
    blob = pickle.dumps(error)
    assert not any(form.encode() in blob for form in every)


def assert_token_free(error: BaseException, token: str, *forms: str) -> None:
    """Nothing ``error`` leads to shows ``token`` (or one of its ``forms``), nor does a pickle.

    That is every object reachable from it (:func:`assert_chain_free`), and
    every frame along its tracebacks but the tests' own (see
    :func:`assert_frames_token_free`).
    """
    assert_chain_free(error, token, *forms)
    assert_frames_token_free(error, (token, *forms))


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


def assert_records_token_free(records: Iterable[object], token: str, *forms: str) -> None:
    """No record ``on_event`` was handed shows ``token`` (or one of its ``forms``), nor does
    anything it holds."""
    every = (token, *forms)
    for record in records:
        for obj in reachable(record):
            assert not _shows(obj, every), (
                f"the token shows in a {type(obj).__name__} of {record!r:.300}"
            )
