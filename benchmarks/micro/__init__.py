"""Micro-benchmarks (pytest-benchmark): ``pytest benchmarks/micro -p no:cacheprovider``."""
