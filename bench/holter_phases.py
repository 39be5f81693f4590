"""Where a day's Holter peaks: the live Python/numpy memory in each step of ``heartbeat predict``.

Usage: python bench/holter_phases.py [--hours 24] [--formats edf,npy,wfdb] [--code DIR]

Builds the recording of bench/bench_holter.py (the shared MIT-BIH records at 250 Hz, two leads) and
writes it in each format into a temporary folder; then runs ``heartbeat predict`` on each, in a
fresh process under ``tracemalloc`` (numpy reports its arrays to it), with the package in ``--code``
(default: this checkout). Each step of reading and cutting the recording prints the memory live
when it starts and the peak while it runs; the table gives every step's peak. These are the bytes
Python and numpy hold, not the process's resident size: the interpreter and the libraries' code,
and memory the allocator keeps after it is freed, come on top (bench/bench_holter.py measures that).
A step missing from the code measured (an earlier commit's) prints "-".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_holter import build_recording, write_formats
from common import PYTHON, ROOT, TempDir, print_machine, table

STEPS = (
    ("heartbeat.signal.user_recordings", "check_lead"),
    ("heartbeat.signal.detect", "r_peaks"),
    ("heartbeat.signal.record_beats", "extract_beats"),
    ("heartbeat.signal.user_recordings", "Recording.second_lead"),
    ("heartbeat.signal.record_beats", "patient_inputs"),
    ("heartbeat.signal.context", "template_features"),
)
"""The steps of reading and cutting a recording, in the order predict runs them."""

_CHILD = """
import functools, importlib, json, sys, tracemalloc
tracemalloc.start(1)
found, overall = {}, [0]
def wrap(owner, name, label):
    orig = getattr(owner, name)
    @functools.wraps(orig)
    def measured(*args, **kwargs):
        live = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            return orig(*args, **kwargs)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            old = found.get(label, (0, 0))
            found[label] = (max(old[0], live), max(old[1], peak))
            overall[0] = max(overall[0], peak)
    setattr(owner, name, measured)
for module, name in json.loads(sys.argv[1]):
    owner = importlib.import_module(module)
    *path, attr = name.split(".")
    for part in path:
        owner = getattr(owner, part, None)
    if owner is not None and hasattr(owner, attr):
        wrap(owner, attr, name)
from heartbeat.serve.cli import main
try:
    main(sys.argv[3:])
except SystemExit:
    pass
with open(sys.argv[2], "w") as fh:
    json.dump({"steps": found, "peak": max(overall[0], tracemalloc.get_traced_memory()[1])}, fh)
"""


def measure(path: Path, options: list[str], out: Path, code: Path) -> dict:
    """One predict under tracemalloc, in a fresh process with the package in ``code``."""
    report = out.with_suffix(".phases.json")
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [PYTHON, "-P", "-c", _CHILD, json.dumps(STEPS), str(report), "predict", str(path), *options]
    subprocess.run([*cmd, "-o", str(out)], env=env, cwd=ROOT, check=True, capture_output=True)
    return json.loads(report.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--formats", default="edf,npy,wfdb")
    ap.add_argument("--code", type=Path, default=ROOT, help="the folder holding the heartbeat package")
    args = ap.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    print_machine()
    x = build_recording(args.hours)
    rows = []
    with TempDir("holter_phases_") as folder:
        files = write_formats(x, folder, formats)
        del x
        for kind, (path, options, _leads) in files.items():
            got = measure(path, options, folder / f"{kind}.out.csv", args.code)
            steps = got["steps"]
            cells = [f"{steps[n][1] / 1e9:.2f}" if n in steps else "-" for _, n in STEPS]
            rows.append([kind, *cells, f"{got['peak'] / 1e9:.2f}"])
            print(
                f"{kind}: "
                + ", ".join(f"{n} {v[0] / 1e9:.2f} -> {v[1] / 1e9:.2f} GB" for n, v in steps.items())
            )
    print(f"\nlive Python/numpy memory, peak GB in each step ({args.code}):\n")
    print(table(["format", *(n for _, n in STEPS), "whole run"], rows))


if __name__ == "__main__":
    main()
