"""The preprocess stage end to end on full-size data: wall time and peak memory.

Usage: python bench/bench_preprocess.py [--rounds N] [--json FILE]

Writes the full-size stand-ins of the four Kaggle CSVs (bench/common.py) into a temporary
project's data/raw, then runs ``python stages/preprocess.py`` there as DVC would: a fresh process,
imports included. Peak memory is that process's peak resident set (VmHWM). The
baseline is the same stage with the CSV reader before (testkit/csv_baseline.py) patched in.
Rounds interleave the two; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, TempDir, make_full_size_csvs, median, print_machine, table, write_json

BENCH = Path(__file__).resolve().parent

# The stage run by runpy in a fresh interpreter, which then prints its own peak resident set
# (VmHWM: reset at exec, unlike the rusage of a forked child, which counts the parent's pages).
STAGE = """
import runpy, sys
sys.argv = ["stages/preprocess.py"]
try:
    runpy.run_path("stages/preprocess.py", run_name="__main__")
finally:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("PEAK", int(line.split()[1]) * 1024)
"""
BEFORE = f"""
import sys
sys.path.insert(0, {str(BENCH)!r})
sys.path.append({str(BENCH.parent)!r})  # testkit/; the project copy's heartbeat stays first
import heartbeat.core.beatcsv as csvio
from testkit.csv_baseline import read_beats_csv_before
def read_before(path, allowed_labels=None, labelled=True):
    X, y = read_beats_csv_before(path)
    return csvio.Beats(X=X, y=y)
csvio.read_beats_csv = read_before
"""


def run_stage(project: Path, before: bool) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one preprocess run in a fresh process, imports included."""
    code = (BEFORE if before else "") + STAGE
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run([PYTHON, "-c", code], cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peaks = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK ")]
    if proc.returncode != 0 or not peaks:
        raise RuntimeError(f"preprocess failed: {proc.stderr[-2000:]}")
    return seconds, peaks[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the files (to try the script only)")
    ap.add_argument("--json")
    args = ap.parse_args()
    info = print_machine()
    with TempDir("heartbeat-bench-preprocess-") as tmp:
        project = tmp / "project"
        shutil.copytree(ROOT / "stages", project / "stages")
        shutil.copy2(ROOT / "params.yaml", project / "params.yaml")
        files = make_full_size_csvs(project / "data" / "raw", scale=args.scale)
        (project / "data" / "raw" / "source.json").write_text(
            json.dumps({"source": "local", "synthetic": False})
        )
        size = sum(p.stat().st_size for p in files.values())
        runs: dict[str, list[tuple[float, int]]] = {"earlier reader": [], "read_beats_csv now": []}
        for _ in range(args.rounds):
            runs["earlier reader"].append(run_stage(project, before=True))
            runs["read_beats_csv now"].append(run_stage(project, before=False))
    base_t = median([t for t, _ in runs["earlier reader"]])
    base_m = median([m for _, m in runs["earlier reader"]])
    rows = []
    for name, rs in runs.items():
        t, m = median([r[0] for r in rs]), median([r[1] for r in rs])
        rows.append(
            [
                name,
                f"{t:.2f}",
                f"{min(r[0] for r in rs):.2f}",
                f"{m / 1e6:,.0f}",
                f"{t / base_t:.2f}",
                f"{m / base_m:.2f}",
            ]
        )
    print(f"\n### python stages/preprocess.py on {size / 1e6:,.0f} MB of raw CSVs, {args.rounds} rounds\n")
    print(
        table(
            ["reader", "median wall s", "best s", "peak RSS MB", "× before (time)", "× before (memory)"], rows
        )
    )
    write_json(args.json, {"machine": info, "bytes": size, "runs": runs})


if __name__ == "__main__":
    main()
