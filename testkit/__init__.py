"""What the test suite and the benchmarks share: tiny pipeline projects, local PhysioNet mirrors and
HTTP servers on 127.0.0.1, and the earlier CSV code kept as a baseline.

Nothing in the pipeline imports this package, and it is not installed with heartbeat (pyproject.toml
packages only ``heartbeat*``): tests/ find it through pytest's ``pythonpath``, bench/ through
bench/common.py, so that both use one copy.
"""
