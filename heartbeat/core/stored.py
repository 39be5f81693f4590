"""Settings a training stage stores beside its model (``models/<name>.json``) that inference reads back.

One type per value, checked once, on construction: params.yaml's schema (heartbeat/core/config.py)
takes it as the type of its key, and the sidecar reader (heartbeat/model/smoothing.py) builds it from
the stored JSON, so the two cannot accept different values. Plain dataclasses, not pydantic models:
``heartbeat predict`` reads them on every start, and pydantic alone takes longer to import than the
TFLite runtime.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from heartbeat.core.budget import SMOOTHING_MAX_NEIGHBOURS, SMOOTHING_MAX_SPAN


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RecordSmoothing:
    """patient_net: each beat's probabilities blended with the mean of its nearest beats in the same
    recording (heartbeat/model/smoothing.py); applied by evaluate and ``heartbeat predict``, not in
    training."""

    neighbours: int = 20
    """How many of the recording's beats are averaged, the beat itself included."""
    weight: float = 0.0
    """Share of the neighbours' mean in the result: 0 leaves each beat alone, 1 keeps only the mean."""
    span: int = 5000
    """Most beats searched for a beat's neighbours: a longer recording is cut into equal consecutive
    stretches no longer than this, so the search grows linearly with a Holter's length, not as its
    square (a 30-minute MIT-BIH record, at most 3,400 beats, is one stretch)."""

    def __post_init__(self) -> None:
        k, w, span = self.neighbours, self.weight, self.span
        if not (_is_int(k) and 1 <= k <= SMOOTHING_MAX_NEIGHBOURS):
            raise ValueError(
                f"neighbours must be an integer in [1, {SMOOTHING_MAX_NEIGHBOURS}] (got {k!r:.40})"
            )
        if not (isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and 0 <= w <= 1):
            raise ValueError(f"weight must be a number in [0, 1] (got {w!r:.40})")
        if not (_is_int(span) and k <= span <= SMOOTHING_MAX_SPAN):
            raise ValueError(
                f"span must be an integer in [neighbours, {SMOOTHING_MAX_SPAN}] (got {span!r:.40}, neighbours {k})"
            )
        object.__setattr__(self, "weight", float(w))

    @classmethod
    def from_mapping(cls, value: object) -> RecordSmoothing:
        """Built from a mapping as params.yaml and the sidecar hold it, every key checked, none coerced
        ("20" is no integer); a :class:`ValueError` names the first key that is wrong."""
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping of neighbours, weight and span (got {value!r:.40})")
        unknown = [str(k) for k in value if k not in cls.__dataclass_fields__]
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r:.40}; expected neighbours, weight and span")
        return cls(**value)

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)
