"""Bounds on settings that decide how much memory and time a run takes, in one place.

params.yaml's schema (heartbeat/core/config.py) and the model sidecar's check
(heartbeat/model/smoothing.py) both read these, so a value one accepts the other accepts too.
This module imports nothing: the CLI reads it without pydantic, and the stages without the model
package.
"""

from __future__ import annotations

SMOOTHING_MAX_NEIGHBOURS = 100
SMOOTHING_MAX_SPAN = 20_000
"""``record_smoothing``'s ``neighbours`` and ``span``, chosen for a budget: on a day's Holter (about
100,000 beats) the neighbour search costs at most 4x the default span of 5,000 (it grows linearly
with ``span``: BENCHMARKS.md, 4.2 s at 5,000), and a stretch's neighbour lists stay under
20,000 x 100 x (8 + 8 + 5 x 8) bytes, about 112 MB. (1,000 neighbours and a span of 1,000,000 took
4.1 GB and 212 s.)"""
SMOOTHING_WORKING_MEMORY_MB = 128
"""scikit-learn computes the smoothing's distances in blocks of this many MB (its default is 1,024)."""
