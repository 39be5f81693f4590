"""The beat split (random beats of the patients the model trains on) with each recording reference.

The new-patients recipe must not cost the beats of known patients: this trains params.yaml's
``train_resnet_mitbih`` (no epoch cap) on a random 80/10/10 split, stratified by class, of the beats
of the 22 DS1 records and the 4 paced ones in ``--mirror``, once per ``data.reference`` method, in
one run, and prints test accuracy, macro-F1 (5 classes and N, S, V, F) and the training's wall time.

    python bench/beat_split_reference.py                      # median and rhythm, seed 0
    python bench/beat_split_reference.py --references rhythm
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import new_patients  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from heartbeat.core.beat_spec import MITBIH_CLASSES  # noqa: E402
from heartbeat.core.config import DS1_RECORDS, PACED_RECORDS  # noqa: E402
from heartbeat.evaluate.metrics import classification_metrics  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--references", nargs="+", default=["median", "rhythm"], choices=["median", "rhythm"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from heartbeat.train.stage import fit_stage

    recs = new_patients.load_records(args.mirror, [*DS1_RECORDS, *PACED_RECORDS])
    cfg = new_patients.shipped_config().model_copy(update={"seed": args.seed})
    print("| reference | beats | test accuracy | macro-F1 | macro-F1 NSVF | best epoch | training s |")
    print("|---|---|---|---|---|---|---|")
    for method in args.references:
        whole = new_patients.concat(
            [new_patients.prepare(r, method, (), rich=10**9, seed=args.seed).split for r in recs]
        )
        rows = np.arange(len(whole.y))
        tr, rest = train_test_split(rows, test_size=0.2, stratify=whole.y, random_state=args.seed)
        va, te = train_test_split(rest, test_size=0.5, stratify=whole.y[rest], random_state=args.seed)

        def take(idx: np.ndarray, s=whole) -> new_patients.Split:
            return new_patients.Split(X=s.X[idx], y=s.y[idx], W=s.W[idx], P=s.P[idx], G=s.G[idx])

        t0 = time.perf_counter()
        trained = fit_stage("train_resnet_mitbih", cfg, take(tr), take(va), len(MITBIH_CLASSES))
        seconds = time.perf_counter() - t0
        test = take(te)
        _, proba = new_patients.final_proba(trained.model, trained.info, test)
        m = classification_metrics(test.y, proba, tuple(MITBIH_CLASSES))
        print(
            f"| {method} | {len(whole.y)} | {m['accuracy']:.4f} | {m['macro_f1']:.3f} | "
            f"{m['macro_f1_nsvf']:.3f} | {trained.info.get('best_epoch')} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
