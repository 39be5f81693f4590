"""The whole pipeline on full-size data, stage by stage.

Usage: python bench/bench_pipeline.py [--rounds N] [--no-baseline] [--json FILE]

In temporary copies of the project: the demo source at about the Kaggle set's size (109,446
MIT-BIH and 14,552 PTB beats there; fetch logs the counts of these synthetic records) with the
documented epochs of params.yaml. First the baseline: one full ``dvc repro`` with the MIT-BIH recipe
of ``BASELINE`` (the 3-seed ensemble the 21-minute figure of BENCHMARKS.md was measured with), then
the same with params.yaml as shipped, each with every stage's wall time and each model's epochs, and
the ratio of the two totals. Then the DVC overhead measurements of bench/bench_dvc.py on the shipped
project: no-op ``dvc repro``, the rerun after editing ``train_mlp.dropout`` against the full run, and
evaluate for one model against all four. Takes 30 to 60 minutes on 2 cores (without the baseline,
10 to 20); run it once.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dvc import bench_project, full_repro, make_project
from common import TempDir, print_machine, write_json

from testkit.projects import deep_update

FULL = {
    "data": {
        "source": "demo",
        # Synthetic records cut as physionet's: about 72 MIT-BIH-like and 45 PTB-like beats per
        # record-minute, so these give about the Kaggle set's 109,446 + 14,552 beats.
        "demo": {"mitdb_records": 48, "mitdb_minutes": 31.5, "ptbdb_records": 215, "ptbdb_minutes": 1.5},
    }
}
"""The demo source at about the Kaggle set's size (``KAGGLE_ROWS``); fetch logs the exact counts."""

BASELINE = {
    "train_resnet_mitbih": {
        "architecture": "resnet",
        "batch_size": 128,
        "lr": 0.001,
        "lr_decay_steps": 10000,
        "monitor": "val_macro_f1",
        "kernel_size": 5,
        "blocks": 5,
        "dense": 32,
        "dropout": 0.0,
        "rhythm": True,
        "template": True,
        "ensemble": 3,
    }
}
"""The MIT-BIH recipe the pipeline's 21 minutes were measured with (BENCHMARKS.md): the paper's ResNet
with the R-R and record-template inputs, a 3-seed ensemble; every other section as params.yaml."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument(
        "--no-baseline", action="store_true", help="skip the baseline recipe's full run (half the time)"
    )
    args = ap.parse_args()
    info = print_machine()
    results: dict = {}
    with TempDir("heartbeat-bench-pipeline-") as tmp:
        if not args.no_baseline:
            baseline = make_project(tmp / "baseline", deep_update(copy.deepcopy(FULL), BASELINE))
            full = full_repro(baseline, "baseline: the 3-seed ResNet ensemble (`BASELINE`)")
            results["baseline"] = {"params": BASELINE, "full": full}
        project = make_project(tmp / "project", FULL)
        results.update(
            bench_project(
                project, args.rounds, "demo source at full size, documented epochs", identical=False
            )
        )
    if "baseline" in results:
        base, ours = results["baseline"]["full"]["seconds"], results["full"]["seconds"]
        print("\n### Shipped recipe against the baseline, same run\n")
        print(f"full `dvc repro`: {ours:.1f} s against {base:.1f} s: {ours / base:.3f} × the baseline")
    print_machine()
    write_json(args.json, {"machine": info, **results})


if __name__ == "__main__":
    main()
