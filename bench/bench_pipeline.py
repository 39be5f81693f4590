"""The whole pipeline on full-size data, stage by stage.

Usage: python bench/bench_pipeline.py [--rounds N] [--json FILE]

In a temporary copy of the project: the demo source at the Kaggle set's size (87,554 + 21,892 +
4,046 + 10,506 beats; fetch writes 583 MB of ``%.18e`` CSVs) with the documented epochs of
params.yaml. One full ``dvc repro`` with each stage's wall time and each model's epochs, then the
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

from heartbeat.fetch.kaggle_set import KAGGLE_ROWS

FULL = {
    "data": {
        "source": "demo",
        "demo": dict(
            zip(
                ("mitbih_train", "mitbih_test", "ptb_normal", "ptb_abnormal"),
                KAGGLE_ROWS.values(),
                strict=True,
            )
        ),
    }
}


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
