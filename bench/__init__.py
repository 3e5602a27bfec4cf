"""Benchmarks: each module is run with ``python -m bench.<name>`` and writes its section of docs/benchmarks.md."""
