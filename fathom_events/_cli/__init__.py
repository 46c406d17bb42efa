"""The command line, ``fathom-events`` (and ``python -m fathom_events``).

Its rich output needs the ``cli`` extra; without it the command says so in one
line instead of failing on an import deep inside. Everything else lives in
the rooms behind this door:

* ``_app``: arguments, dispatch, errors and exit codes;
* ``_text``: the words and the escaping that parsing and errors need (nothing heavy);
* ``_commands``: the API commands (list, get, create, update, delete, pull);
* ``_account``: the commands about the account (sites, token);
* ``_sync`` and ``_syncfile``: the sync command, and reading and checking a sync file;
* ``_output``: progress bars or plain lines, tables, JSON, output files;
* ``_fakeserver`` and ``_demo``: the commands that run a ``FakeFathom``.

It is written on the public names of ``fathom_events`` (and ``fathom_events.testing``
in ``demo`` and ``fake-server`` only). A command's module is imported when the
command runs, so ``--help``, ``--version`` and a usage error load neither the
client nor aiohttp nor the fake.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["EXTRA_HINT", "main"]

EXTRA_HINT = (
    "fathom-events: the command line needs the 'cli' extra: pip install 'fathom-events[cli]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        import rich  # noqa: F401, PLC0415 - only probing for the extra

        if sys.version_info < (3, 11):
            import tomli  # noqa: F401, PLC0415
    except ImportError:
        print(EXTRA_HINT, file=sys.stderr)  # noqa: T201 - a command line speaks on stderr
        return 2
    from ._app import run  # noqa: PLC0415 - imported only once the extra is known present

    return run(argv)
