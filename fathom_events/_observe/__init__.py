"""Watching what a client does: the records its ``on_event`` callback gets, and OpenTelemetry.

``_records.py`` holds the public records; ``_observer.py`` the one observer a
client holds, which makes them at each step of a call and hands them to the
callback and, when the application has configured it, to ``_otel.py``, the
OpenTelemetry bridge (imported only then). This file imports nothing, so that
naming a record does not load the observer.
"""
