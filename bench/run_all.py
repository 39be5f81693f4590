"""Run every benchmark, one after another, and keep their figures.

Usage: python bench/run_all.py [--out DIR] [--skip NAME ...] [--only NAME ...]

NAME is one of csv, preprocess, train, dvc, pipeline (the data path, training speed and DVC
overhead; bench_predict.py, bench_segment.py and compare.py run on their own). Each script prints its tables; with ``--out`` each also
writes ``DIR/<name>.json``. The full suite takes about an hour on 2 cores, most of it
``pipeline`` (the whole pipeline at full size, run once) and ``train``. Temporary files go under
$HEARTBEAT_BENCH_TMP (default: the system's) and are removed at the end of each script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SUITE = {
    "csv": ["bench_csv.py", "--cold"],
    "preprocess": ["bench_preprocess.py"],
    "train": ["bench_train.py"],
    "dvc": ["bench_dvc.py"],
    "pipeline": ["bench_pipeline.py"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="folder for the JSON figures of each benchmark")
    ap.add_argument("--skip", nargs="*", default=[], choices=list(SUITE))
    ap.add_argument("--only", nargs="*", choices=list(SUITE))
    args = ap.parse_args()
    names = [n for n in (args.only or SUITE) if n not in args.skip]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        cmd = [sys.executable, str(BENCH / SUITE[name][0]), *SUITE[name][1:]]
        if args.out:
            cmd += ["--json", str(args.out / f"{name}.json")]
        print(f"\n## {name}: {' '.join(cmd[1:])}\n", flush=True)
        t0 = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
