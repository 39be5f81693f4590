"""What the test suite and the benchmarks share: tiny pipeline projects, local PhysioNet mirrors and
HTTP servers on 127.0.0.1, and the earlier CSV code kept as a baseline.

Nothing in the pipeline imports this package; it is here so that tests and bench/ use one copy.
"""
