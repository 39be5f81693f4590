"""Would calling no S beat in an irregular stretch of a recording help new patients? Measured, not shipped.

In atrial fibrillation no beat is premature, yet on DS1 the network calls hundreds of 203's beats S
(leave one record out, bench/new_patients.py). A candidate fix moves a beat's S probability to N
wherever few beats around it are regular: under ``--share`` (1/3, the share below which
:func:`heartbeat.signal.patient.rhythm_reference` gives up on a rhythm) of the 21 beats centred on it
are regular (:func:`heartbeat.signal.patient.regular_beats`). Two measurements:

1. On DS1: the stored leave-one-record-out runs of ``--models`` (``--results``, as
   bench/new_patients.py writes them) re-scored with the fix applied to each run's final
   probabilities: S F1 pooled over the 22 records, per seed, with the S beats lost and the false S
   alarms removed.
2. On the demo generator's patients (heartbeat/fetch/synth.py, ``--demo-seeds``, 40 records of 10
   minutes each): the share of the S beats that sit in such a stretch, per rhythm profile. The
   ectopy-dominated profile imitates the hidden patient whose S beats the project most needs to find.

    python bench/irregular_stretches.py --models patient_net_rhythm patient_net_rhythm_ens3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from new_patients import load_records, scored_rows  # noqa: E402

from heartbeat.core.config import DS1_RECORDS, PACED_RECORDS  # noqa: E402
from heartbeat.fetch import synth  # noqa: E402
from heartbeat.signal.patient import LEAST_REGULAR, LOCAL_HALF, regular_beats  # noqa: E402

S_SYMBOLS = ("A", "a", "J", "S")


def local_regular_share(peaks: np.ndarray, fs: float, half: int = LOCAL_HALF) -> np.ndarray:
    """Per beat: the share of regular beats among the ``2 * half + 1`` beats centred on it (fewer at
    the recording's edges)."""
    regular = regular_beats(peaks, fs).astype(np.float64)
    total = np.concatenate([[0.0], np.cumsum(regular)])
    i = np.arange(regular.size)
    lo, hi = np.clip(i - half, 0, regular.size), np.clip(i + half + 1, 0, regular.size)
    return (total[hi] - total[lo]) / (hi - lo)


def without_s(proba: np.ndarray, irregular: np.ndarray) -> np.ndarray:
    """Class predictions with the S probability of the ``irregular`` beats moved to N."""
    p = np.array(proba, dtype=np.float64)
    p[irregular, 0] += p[irregular, 1]
    p[irregular, 1] = 0.0
    return p.argmax(axis=1)


def ds1_table(mirror: Path, results: Path, models: list[str], share: float) -> str:
    recs = {r.name: r for r in load_records(mirror, list(DS1_RECORDS))}
    # each record's beats as the runs scored them
    shares = {name: local_regular_share(rec.peaks, rec.fs)[scored_rows(rec)] for name, rec in recs.items()}
    lines = [
        "| model | seed | S F1 as run | S F1, no S in irregular stretches | S beats lost | false S removed |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        path = results / f"{model}.json"
        if not path.is_file():
            continue
        for seed, runs in sorted(json.loads(path.read_text()).items()):
            if sorted(runs) != sorted(DS1_RECORDS):
                continue  # only complete runs are pooled
            counts = np.zeros((2, 3), dtype=np.int64)  # (as run, fixed) x (tp, fp, fn)
            lost = removed = 0
            for name, run in runs.items():
                y, pred = np.array(run["y"]), np.array(run["pred"])
                irregular = (shares[name] < share) & (pred == 1)
                fixed = without_s(np.array(run["proba"]), irregular)
                lost += int((irregular & (y == 1)).sum())
                removed += int((irregular & (y != 1)).sum())
                for k, p in enumerate((pred, fixed)):
                    counts[k] += [
                        ((y == 1) & (p == 1)).sum(),
                        ((y != 1) & (p == 1)).sum(),
                        ((y == 1) & (p != 1)).sum(),
                    ]
            f1 = [2 * c[0] / max(2 * c[0] + c[1] + c[2], 1) for c in counts]
            lines.append(f"| {model} | {seed} | {f1[0]:.3f} | {f1[1]:.3f} | {lost} | {removed} |")
    return "\n".join(lines)


def profile_of(index: int, name: str) -> str:
    """The rhythm profile synth.mitdb_records gives its ``index``-th non-paced record."""
    return "paced" if name in PACED_RECORDS else synth.PROFILES[(index // 2) % len(synth.PROFILES)]


def demo_table(seeds: list[int], share: float, n: int = 40, minutes: float = 10.0) -> str:
    found: dict[str, list[int]] = {}
    for seed in seeds:
        plain = 0
        for rec in synth.mitdb_records(seed, n, minutes):
            if rec.name in PACED_RECORDS:
                continue
            profile = profile_of(plain, rec.name)
            plain += 1
            s = np.isin(rec.symbols, S_SYMBOLS)
            irregular = local_regular_share(rec.peaks, rec.fs) < share
            tally = found.setdefault(profile, [0, 0, 0, 0, 0])
            tally[0] += 1
            tally[1] += int(s.sum())
            tally[2] += int((s & irregular).sum())
            tally[3] += int((~s).sum())
            tally[4] += int((~s & irregular).sum())
    lines = [
        "| demo profile | records | S beats | S beats in irregular stretches | other beats in them |",
        "|---|---|---|---|---|",
    ]
    for profile, (records, n_s, s_irr, n_other, other_irr) in found.items():
        s_cell = f"{s_irr / n_s:.0%} of {n_s:,}" if n_s else "–"
        lines.append(f"| {profile} | {records} | {n_s:,} | {s_cell} | {other_irr / max(n_other, 1):.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "new_patients")
    ap.add_argument("--models", nargs="+", default=["patient_net_rhythm"])
    ap.add_argument("--share", type=float, default=LEAST_REGULAR)
    ap.add_argument("--demo-seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args(argv)
    print(
        f"Irregular stretch: under {args.share:.2f} of the {2 * LOCAL_HALF + 1} beats around a beat regular.\n"
    )
    if args.mirror.is_dir():
        print(ds1_table(args.mirror, args.results, args.models, args.share), end="\n\n")
    print(demo_table(args.demo_seeds, args.share))


if __name__ == "__main__":
    main()
