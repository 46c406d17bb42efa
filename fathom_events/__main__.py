"""``python -m fathom_events``: the demo walk over a fake Fathom."""

from ._demo import main

if __name__ == "__main__":
    main()
