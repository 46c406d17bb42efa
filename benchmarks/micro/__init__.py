"""Micro-benchmarks (pytest-benchmark): ``pytest benchmarks/micro --benchmark-enable``.

The test suite runs them too, untimed (``--benchmark-disable`` is in pytest's
``addopts``), so that they cannot rot; ``--benchmark-enable`` times them.
"""
