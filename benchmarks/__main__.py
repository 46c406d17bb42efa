"""``python -m benchmarks``: see runner.py and README.md in this folder."""

import sys

from .runner import main

sys.exit(main())
