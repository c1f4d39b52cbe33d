"""Benchmarks: ``kreuzberg_webhooks`` against the hand-written floor and the peer libraries.

Run everything with ``benchmarks/run`` (or ``python -m benchmarks``); ``--quick``
runs each benchmark once, as the smoke test does.
"""
