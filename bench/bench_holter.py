"""A 24-hour two-lead Holter through ``heartbeat predict``, in every input format: wall time and peak memory.

Usage: python bench/bench_holter.py [--hours 24] [--formats csv,tsv,edf,npy,wfdb] [--json FILE]
       [--before DIR [--before-formats csv,tsv]]

Builds the recording from the shared MIT-BIH records (../shared/data/mitdb): each record whose first
lead is MLII gives its two leads, resampled from 360 to 250 Hz, and the records are concatenated (in
order, round after round) to ``--hours``. It is written into a temporary folder (removed at the end)
as a CSV and a TSV (a header row ``MLII,V1``, 4 decimals, mV), an EDF (edfio, 1-second data
records), a 1-D ``.npy`` of MLII (the array input takes one lead) and a WFDB record (format 16).

Each file then goes through ``heartbeat predict`` (the default pretrained model; ``--fs 250`` for the
table and the array; rows to a file) in a process of its own, one format after the other; the table
gives its wall time and its peak resident memory (``ru_maxrss`` of that child, from ``wait4`` in a small
launcher process), the
float32 size of the signal it decodes (two leads, one for the array), and their ratio; and the same
ratio for the peak above that of a 5-minute recording (the fixed cost of interpreter, runtime and
model), which is what grows with the recording; both parts are printed in GB too. The issue's
goals: at most 1.5 GB and 2.5x the decoded size in every format, and (the scoring issue's) 30 s end
to end on 2 cores. The machine is shared, so wall times move with its load (printed above the table).
With ``--before DIR`` the formats of ``--before-formats`` run again with the ``heartbeat`` package in
DIR (an earlier commit's, from ``git archive``), and the table says whether their output rows are
byte-identical to this code's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import PYTHON, ROOT, SHARED, TempDir, print_machine, table, write_json

FS = 250
FORMATS = ("csv", "tsv", "edf", "npy", "wfdb")
GOAL_BYTES = 1.5e9
GOAL_RATIO = 2.5
BASELINE_MINUTES = 5
"""A recording this short shows what any run costs (the interpreter, the runtime, the model), whatever
the recording's length: the fixed part of the peak."""


def build_recording(hours: float) -> np.ndarray:
    """``(samples, 2)`` float32 in mV at 250 Hz: MLII and the record's second lead, record after record."""
    import wfdb
    from scipy.signal import resample_poly

    folder = SHARED / "mitdb"
    names = sorted(p.stem for p in folder.glob("*.hea"))
    if not names:
        sys.exit(f"bench_holter: no MIT-BIH records in {folder}; it needs ../shared/data/mitdb")
    pieces, total, want = [], 0, int(hours * 3600 * FS)
    while total < want:
        for name in names:
            record = wfdb.rdrecord(str(folder / name))
            if record.sig_name[0] != "MLII":
                continue
            x = resample_poly(record.p_signal[:, :2], 25, 36, axis=0).astype(np.float32)
            pieces.append(x[: want - total])
            total += len(pieces[-1])
            if total >= want:
                break
    return np.concatenate(pieces)


def write_formats(x: np.ndarray, folder: Path, formats: list[str]) -> dict[str, tuple[Path, list[str], int]]:
    """Each format's file, the options predict needs for it, and the leads it decodes."""
    import edfio
    import pandas as pd
    import wfdb

    out: dict[str, tuple[Path, list[str], int]] = {}
    for kind in formats:
        t0 = time.perf_counter()
        if kind in ("csv", "tsv"):
            path = folder / f"holter.{kind}"
            frame = pd.DataFrame(x, columns=["MLII", "V1"])
            frame.to_csv(path, sep="," if kind == "csv" else "\t", index=False, float_format="%.4f")
            out[kind] = (path, ["--fs", str(FS)], 2)
        elif kind == "edf":
            path = folder / "holter.edf"
            whole = len(x) - len(x) % FS  # whole 1-second data records
            signals = [
                edfio.EdfSignal(
                    x[:whole, i].astype(np.float64),
                    FS,
                    label=name,
                    physical_dimension="mV",
                    physical_range=(-10, 10),
                )
                for i, name in enumerate(("MLII", "V1"))
            ]
            edfio.Edf(signals).write(path)
            out[kind] = (path, [], 2)
        elif kind == "npy":
            path = folder / "holter.npy"
            np.save(path, np.ascontiguousarray(x[:, 0]))
            out[kind] = (path, ["--fs", str(FS)], 1)
        elif kind == "wfdb":
            wfdb.wrsamp(
                "holter",
                fs=FS,
                units=["mV", "mV"],
                sig_name=["MLII", "V1"],
                p_signal=x.astype(np.float64),
                fmt=["16", "16"],
                adc_gain=[200.0, 200.0],
                baseline=[0, 0],
                write_dir=str(folder),
            )
            out[kind] = (folder / "holter", [], 2)
        else:
            sys.exit(f"bench_holter: unknown format {kind!r}; expected some of {', '.join(FORMATS)}")
        size = _file_bytes(out[kind][0])
        print(f"wrote {kind}: {size / 1e6:,.0f} MB in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _file_bytes(path: Path) -> int:
    """A file's size; a WFDB record's header and signal file together."""
    if path.suffix:
        return path.stat().st_size
    return sum(path.with_suffix(ext).stat().st_size for ext in (".hea", ".dat"))


_LAUNCHER = (
    "import json, os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "with open(sys.argv[1], 'w') as fh:\n"
    "    json.dump({'rc': os.waitstatus_to_exitcode(status), 'maxrss_kib': usage.ru_maxrss}, fh)\n"
)
"""Starts the measured process from a small Python of its own: Linux keeps a forked child's peak RSS
across exec, so a child of this script (holding the recording) would report this script's memory."""


_READ_TABLE = (
    "import sys\n"
    "from heartbeat.signal.user_recordings import read_table\n"
    "rec = read_table(sys.argv[1], float(sys.argv[2]))\n"
    "print(rec.signal.size, rec.second is not None, file=sys.stderr)\n"
)
"""The signal-table reader alone, as predict calls it."""


def run_predict(
    path: Path, options: list[str], output: Path, code: Path = ROOT, reader_only: bool = False
) -> dict[str, float | int | str]:
    """One ``heartbeat predict`` (of the ``heartbeat`` package in ``code``) in a fresh process, or with
    ``reader_only`` only its signal-table reader: wall seconds, peak RSS (bytes), exit code, last line."""
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
    # -P: run from ROOT, ``-m`` and ``-c`` would put ROOT first on sys.path, ahead of PYTHONPATH, and
    # import ROOT's package whatever ``code`` says.
    cmd = [PYTHON, "-P", "-m", "heartbeat.serve.cli", "predict", str(path), *options, "-o", str(output)]
    if reader_only:
        cmd = [PYTHON, "-P", "-c", _READ_TABLE, str(path), str(FS)]
    report = output.with_suffix(".rusage.json")
    t0 = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-c", _LAUNCHER, str(report), *cmd], env=env, cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    usage = json.loads(report.read_text()) if report.exists() else {"rc": done.returncode, "maxrss_kib": 0}
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    beats = sum(1 for _ in open(output)) - 1 if output.exists() else 0
    return {
        "seconds": seconds,
        "peak_rss": usage["maxrss_kib"] * 1024,
        "rc": usage["rc"],
        "beats": beats,
        "last": lines[-1] if lines else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument(
        "--before",
        type=Path,
        help="also run the formats of --before-formats with the heartbeat package in this folder (an "
        "earlier commit's, e.g. from git archive), in the same run",
    )
    ap.add_argument("--before-formats", default="csv,tsv")
    args = ap.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    info = print_machine()
    t0 = time.perf_counter()
    x = build_recording(args.hours)
    print(
        f"built {len(x):,} samples x 2 leads at {FS} Hz ({len(x) / FS / 3600:.2f} h) in {time.perf_counter() - t0:.0f} s"
    )
    rows, results, before_rows, reader_rows = [], {}, [], []
    with TempDir("bench_holter_") as folder:
        np.save(folder / "short.npy", np.ascontiguousarray(x[: BASELINE_MINUTES * 60 * FS, 0]))
        files = write_formats(x, folder, formats)
        n = len(x)
        del x
        base = run_predict(folder / "short.npy", ["--fs", str(FS)], folder / "short.out.csv")
        print(
            f"baseline ({BASELINE_MINUTES} minutes, npy): {base['seconds']:.1f} s, {base['peak_rss'] / 1e9:.2f} GB"
        )
        results["baseline"] = base
        for kind, (path, options, leads) in files.items():
            got = run_predict(path, options, folder / f"{kind}.out.csv")
            decoded = n * leads * 4
            size = _file_bytes(path)
            results[kind] = {**got, "decoded_bytes": decoded, "file_bytes": size, "leads": leads}
            ratio = got["peak_rss"] / decoded
            above = (got["peak_rss"] - base["peak_rss"]) / decoded
            ok = got["rc"] == 0
            rows.append(
                [
                    kind,
                    f"{size / 1e6:,.0f} MB",
                    leads,
                    f"{decoded / 1e6:,.0f} MB",
                    f"{got['beats']:,}" if ok else f"failed (rc {got['rc']}): {got['last'][:80]}",
                    f"{got['seconds']:.1f} s",
                    f"{got['peak_rss'] / 1e9:.2f} GB",
                    f"{base['peak_rss'] / 1e9:.2f} GB",
                    f"{(got['peak_rss'] - base['peak_rss']) / 1e9:.2f} GB",
                    f"{ratio:.2f}",
                    f"{above:.2f}",
                    "yes" if ok and got["peak_rss"] <= GOAL_BYTES and ratio <= GOAL_RATIO else "no",
                ]
            )
            print(
                f"{kind}: {got['seconds']:.1f} s, {got['peak_rss'] / 1e9:.2f} GB, rc {got['rc']}", flush=True
            )
        for kind in [k for k in ("csv", "tsv") if k in files]:
            path, _, leads = files[kind]
            for label, code in [("now", ROOT), *([("before", args.before)] if args.before else [])]:
                got = run_predict(path, [], folder / "reader.out", code=code, reader_only=True)
                results[f"{kind} reader {label}"] = got
                reader_rows.append(
                    [
                        kind,
                        label,
                        f"{got['seconds']:.1f} s",
                        f"{got['peak_rss'] / 1e9:.2f} GB",
                        f"{got['peak_rss'] / (n * leads * 4):.2f}",
                    ]
                )
                print(
                    f"{kind} reader {label}: {got['seconds']:.1f} s, {got['peak_rss'] / 1e9:.2f} GB, rc {got['rc']}"
                )
        before_formats = [f for f in args.before_formats.split(",") if f in files] if args.before else []
        for kind in before_formats:
            path, options, leads = files[kind]
            got = run_predict(path, options, folder / f"{kind}.before.csv", code=args.before)
            # Every beat's time, class and probabilities (6 decimals), byte for byte.
            now_rows, before_rows_file = folder / f"{kind}.out.csv", folder / f"{kind}.before.csv"
            got["same_rows"] = (
                now_rows.is_file()
                and before_rows_file.is_file()
                and now_rows.read_bytes() == before_rows_file.read_bytes()
            )
            results[f"{kind} before"] = got
            peak = f"{got['peak_rss'] / 1e9:.2f} GB"
            before_rows.append(
                [
                    kind,
                    f"{got['seconds']:.1f} s",
                    peak,
                    f"{got['peak_rss'] / (n * leads * 4):.2f}",
                    "yes" if got["same_rows"] else "no",
                ]
            )
            print(
                f"{kind} before: {got['seconds']:.1f} s, {peak}, rc {got['rc']}: {got['last'][:120]}",
                flush=True,
            )
    header = [
        "format",
        "file",
        "leads",
        "decoded float32",
        "beats",
        "wall",
        "peak RSS",
        "of it: 5-min run (runtime, model)",
        "of it: the rest (signal work)",
        "peak / decoded",
        "(peak - baseline) / decoded",
        "goals met",
    ]
    print()
    print(table(header, rows))
    if reader_rows:
        print(
            "\nthe signal-table reader alone (read_table in a fresh process; before: the package in --before):\n"
        )
        print(table(["format", "code", "wall", "peak RSS", "peak / decoded"], reader_rows))
    if before_rows:
        print(f"\nthe same files with the heartbeat package in {args.before}:\n")
        print(table(["format", "wall", "peak RSS", "peak / decoded", "rows identical to now's"], before_rows))
    print(f"\ngoals: peak <= {GOAL_BYTES / 1e9:g} GB and <= {GOAL_RATIO:g}x the decoded float32 signal")
    write_json(args.json, {"machine": info, "hours": args.hours, "fs": FS, "results": results})


if __name__ == "__main__":
    main()
