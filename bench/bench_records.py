"""Many recordings in one ``heartbeat predict`` call, and the EC57 score of detector + model.

Usage: python bench/bench_records.py [--records DIR] [--jobs 2] [--rounds 1] [--skip-timing] [--skip-score]
       [--without-gate] [--without-qrs-gate]

(a) Timing: the records of DIR (default: the 26 shared MIT-BIH records) classified by one call
    (``--output-dir``, ``--jobs``; the model loaded once) against one ``heartbeat predict``
    process per record run one after the other, as a shell loop would. Both write the same
    CSVs; the rounds interleave the two, and the ratio is separate / one call, from the same run.
(b) Scoring: R-peaks from the detector (``--peaks detector``), classes from the pretrained model,
    scored against the records' reference annotations (.atr) with ``heartbeat score``, which
    prints the EC57 table. The shared records are among the pretrained model's TRAINING records
    (its model card lists them): this scores the whole chain on data it has seen, not a new patient.
    ``--without-gate`` scores it a second time, in the same run, with a copy of the model whose
    sidecar leaves out the irregular-rhythm gate (heartbeat/model/rhythm_gate.py): what the gate does;
    ``--without-qrs-gate`` the same with the QRS gate (heartbeat/model/qrs_gate.py) left out.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, SHARED, print_machine

CLI = [PYTHON, "-m", "heartbeat.serve.cli"]


def records(folder: Path) -> list[Path]:
    listing = folder / "RECORDS"
    names = listing.read_text().split() if listing.is_file() else sorted(p.stem for p in folder.glob("*.hea"))
    return [folder / n for n in names]


def run(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def one_call(recs: list[Path], out: Path, jobs: int, parallel: str = "threads") -> float:
    argv = [
        *CLI,
        "predict",
        *map(str, recs),
        "--output-dir",
        str(out),
        "--jobs",
        str(jobs),
        "--parallel",
        parallel,
    ]
    return run([*argv, "-q"])


def separate(recs: list[Path], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for rec in recs:
        subprocess.run(
            [*CLI, "predict", str(rec), "-q", "-o", str(out / f"{rec.name}.csv")], check=True, cwd=ROOT
        )
    return time.perf_counter() - start


def timing(recs: list[Path], jobs: int, rounds: int) -> None:
    """Separate processes against one call: --jobs N with threads and with processes, and --jobs 1."""
    calls = {
        f"one call, `--jobs {jobs}` (threads, the default)": (jobs, "threads"),
        f"one call, `--jobs {jobs} --parallel processes`": (jobs, "processes"),
        "one call, `--jobs 1`": (1, "threads"),
    }
    times: dict[str, list[float]] = {"separate": [], **{k: [] for k in calls}}
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            times["separate"].append(separate(recs, Path(tmp) / f"sep{r}"))
            for k, (name, (n, how)) in enumerate(calls.items()):
                out = Path(tmp) / f"one{r}-{k}"
                times[name].append(one_call(recs, out, n, how))
                same &= all(
                    (Path(tmp) / f"sep{r}" / f"{rec.name}.csv").read_bytes()
                    == (out / f"{rec.name}.csv").read_bytes()
                    for rec in recs
                )
    base = statistics.median(times["separate"])
    print(
        f"\n(a) {len(recs)} records, pretrained model, R-peaks from the .atr; median of {rounds} round(s)\n"
    )
    print("| how | wall (s) | per record (s) | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| {len(recs)} separate `heartbeat predict` processes | {base:.1f} | {base / len(recs):.2f} | 1.00 |"
    )
    for name in calls:
        t = statistics.median(times[name])
        print(f"| {name} | {t:.1f} | {t / len(recs):.2f} | {base / t:.2f}x |")
    print(f"\nsame CSVs from every way: {'yes' if same else 'NO'}")


def ungated_copy(folder: Path, key: str) -> Path:
    """A copy of the pretrained model's folder (the model, its exports and manifest) in ``folder``,
    whose sidecar leaves out the gate stored under ``key``; the path of its ``.keras`` file."""
    import json
    import shutil

    from heartbeat.serve import pretrained

    copy = folder / "pretrained"
    shutil.copytree(pretrained.FOLDER, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    sidecar = copy / pretrained.MODEL.with_suffix(".json").name
    data = json.loads(sidecar.read_text())
    data.pop(key, None)
    sidecar.write_text(json.dumps(data, indent=2))
    return copy / pretrained.MODEL.name


def scoring(recs: list[Path], jobs: int, model: Path | None = None, without: str = "") -> None:
    """(b): ``model`` (default: the pretrained one), named as the pretrained model ``without`` a step."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pred"
        which = "pretrained model" if model is None else f"pretrained model WITHOUT {without}"
        seconds = run(
            [
                *CLI,
                "predict",
                *([] if model is None else ["-m", str(model)]),
                *map(str, recs),
                "--peaks",
                "detector",
                "--output-dir",
                str(out),
                "--jobs",
                str(jobs),
                "-q",
            ]
        )
        print(
            f"\n(b) detector + {which} on {len(recs)} records ({seconds:.1f} s), scored against their .atr; "
            "these are TRAINING records of the pretrained model\n"
        )
        report = subprocess.run(
            [*CLI, "score", str(recs[0].parent), str(out)],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        print("```\n" + report.stdout.rstrip() + "\n```")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, default=SHARED / "mitdb")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-score", action="store_true")
    ap.add_argument(
        "--without-gate", action="store_true", help="also score the model without its irregular-rhythm gate"
    )
    ap.add_argument(
        "--without-qrs-gate", action="store_true", help="also score the model without its QRS gate"
    )
    args = ap.parse_args()
    recs = records(args.records)
    if not recs:
        sys.exit(f"{args.records}: no records (give --records with WFDB records and their .atr)")
    print_machine()
    if not args.skip_timing:
        timing(recs, args.jobs, args.rounds)
    if not args.skip_score:
        scoring(recs, args.jobs)
        from heartbeat.model.qrs_gate import SIDECAR_KEY as QRS_GATE_KEY
        from heartbeat.model.rhythm_gate import SIDECAR_KEY as GATE_KEY

        for key, wanted in ((GATE_KEY, args.without_gate), (QRS_GATE_KEY, args.without_qrs_gate)):
            if wanted:
                with tempfile.TemporaryDirectory() as tmp:
                    scoring(recs, args.jobs, ungated_copy(Path(tmp), key), key)


if __name__ == "__main__":
    main()
