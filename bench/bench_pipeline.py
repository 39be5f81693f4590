"""The whole pipeline on full-size data, stage by stage.

Usage: python bench/bench_pipeline.py [--rounds N] [--json FILE]

In a temporary copy of the project: the demo source at about the Kaggle set's size (109,446
MIT-BIH and 14,552 PTB beats there; fetch logs the counts of these synthetic records) with the
documented epochs of params.yaml. One full ``dvc repro`` with each stage's wall time and each model's epochs, then the
DVC overhead measurements of bench/bench_dvc.py on that project: no-op ``dvc repro``, the rerun
after editing ``train_mlp.dropout`` against the full run, and evaluate for one model against all
four. Takes 15 to 40 minutes on 2 cores; run it once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dvc import bench_project, make_project
from common import TempDir, print_machine, write_json

FULL = {
    "data": {
        "source": "demo",
        # Synthetic records cut as physionet's: about 72 MIT-BIH-like and 45 PTB-like beats per
        # record-minute, so these give about the Kaggle set's 109,446 + 14,552 beats.
        "demo": {"mitdb_records": 48, "mitdb_minutes": 31.5, "ptbdb_records": 215, "ptbdb_minutes": 1.5},
    }
}
"""The demo source at about the Kaggle set's size (``KAGGLE_ROWS``); fetch logs the exact counts."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    info = print_machine()
    with TempDir("heartbeat-bench-pipeline-") as tmp:
        project = make_project(tmp / "project", FULL)
        results = bench_project(
            project, args.rounds, "demo source at full size, documented epochs", identical=False
        )
    print_machine()
    write_json(args.json, {"machine": info, **results})


if __name__ == "__main__":
    main()
