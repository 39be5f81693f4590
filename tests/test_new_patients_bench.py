"""bench/new_patients.py: the stress variants' beat mix and the blend of two models' stored runs."""

from __future__ import annotations

import sys

import numpy as np

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import new_patients


def test_a_stress_mix_keeps_every_ectopic_beat_and_thins_the_normal_ones_evenly() -> None:
    labels = np.array([0] * 300 + [1] * 40 + [2] * 5)
    np.random.default_rng(0).shuffle(labels)
    keep = new_patients.stress_mask(labels, 1)
    assert (keep[labels != 0]).all()
    # S beats make two thirds of the mix: 40 S, 5 V, so 15 N
    assert int((keep & (labels == 0)).sum()) == 15
    kept_normal = np.flatnonzero(keep & (labels == 0))
    assert (
        np.ptp(np.diff(np.flatnonzero(labels == 0)[np.isin(np.flatnonzero(labels == 0), kept_normal)])) >= 0
    )
    assert (
        kept_normal[0] == np.flatnonzero(labels == 0)[0]
        and kept_normal[-1] == np.flatnonzero(labels == 0)[-1]
    )
    # when the other classes already outnumber half the S beats, one N beat stays
    crowded = np.array([0] * 50 + [1] * 10 + [2] * 20)
    assert int((new_patients.stress_mask(crowded, 1) & (crowded == 0)).sum()) == 1
    # without a class, the ectopic beats of every class make two thirds: 30 of them, so 15 N
    mix = new_patients.stress_mask(crowded)
    assert mix[crowded != 0].all() and int((mix & (crowded == 0)).sum()) == 15


def test_a_blend_is_the_beat_by_beat_mean_of_two_runs() -> None:
    def run(p: list[list[float]]) -> dict:
        return {
            "y": [0, 1],
            "proba": p,
            "proba_alone": p,
            "stress": {"1": {"y": [1], "proba": [p[1]]}},
        }

    results = {
        "a": {"0": {"101": run([[0.6, 0.4, 0, 0, 0], [0.6, 0.4, 0, 0, 0]])}},
        "b": {"0": {"101": run([[0.7, 0.3, 0, 0, 0], [0.1, 0.9, 0, 0, 0]])}},
    }
    blended = new_patients.blend(results, "a", "b")["0"]["101"]
    assert blended["pred"] == [0, 1] and blended["stress"]["1"]["pred"] == [1]
