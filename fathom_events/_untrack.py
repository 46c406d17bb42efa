"""Tell CPython's garbage collector to stop watching objects that can never be in a cycle.

The collector walks every object it tracks, and CPython tracks every instance
of a class with slots, whatever they hold. A read :class:`~fathom_events.types.Event`
holds only strings, ``None`` and an aware ``datetime`` (whose ``tzinfo`` is
the ``timezone.utc`` singleton): nothing that could lead back to it, so it can
never be part of a reference cycle, just as a tuple of strings cannot, which
the collector itself stops tracking. Kept in tens of thousands (a ``pull``),
tracked events were promoted through the generations and walked again by
every full collection: a third of ``pull``'s CPU time in a fresh process.

:func:`untrack` calls the C API's ``PyObject_GC_UnTrack`` (what C extension
types call for such objects; it is a no-op on an untracked object, and an
object's deallocation calls it again safely). The object is freed by
reference counting, as before. Elsewhere than CPython it does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["untrack"]


def _keep(_: object) -> None:
    """Elsewhere than CPython: leave the object to the collector."""


def _load() -> Callable[[object], None]:
    if sys.implementation.name != "cpython":  # pragma: no cover - CPython runs the tests
        return _keep
    try:
        import ctypes  # noqa: PLC0415 - only here, only on CPython

        function = ctypes.pythonapi.PyObject_GC_UnTrack
    except (ImportError, AttributeError):  # pragma: no cover - a CPython built without ctypes
        return _keep
    function.argtypes = [ctypes.py_object]
    function.restype = None
    return function


#: Stop the collector tracking an object that cannot be part of a reference cycle.
untrack: Callable[[object], None] = _load()
