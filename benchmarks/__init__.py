"""Benchmarks of fathom_events against raw aiohttp, httpx and requests.

``python -m benchmarks`` runs the side-by-side workloads (see README.md in
this folder); ``benchmarks/micro`` holds pytest-benchmark micro-benchmarks.
Neither is part of the test suite.
"""
