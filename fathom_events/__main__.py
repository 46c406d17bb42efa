"""``python -m fathom_events``: the command line, as ``fathom-events``."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
