"""Which beats the irregular-rhythm flags take, on real and synthetic recordings, and at which settings.

Usage: python bench/irregular_rhythm.py [--mirror ../shared/data/mitdb] [--demo-records 48] [--minutes 10]

The flags (heartbeat/signal/irregular.py) decide where the irregular-rhythm gate gives a beat's S
probability to the other classes (heartbeat/model/rhythm_gate.py). They must cover atrial
fibrillation and leave S beats alone, above all in a patient whose rhythm is mostly runs of
ectopic atrial beats (the hidden test's failure class, MIT-BIH 232, which is not among our records).
No model is involved: this measures the flags against the annotations.

1. Each MIT-BIH record in ``--mirror`` (DS1 and the paced records): its beats annotated as in atrial
   fibrillation or flutter (the ``(AFIB`` and ``(AFL`` rhythm annotations) and how many of them are
   flagged, how many other beats are, and how many S beats.
2. The demo source's synthetic patients (two seeds of ``--demo-records`` records), by rhythm profile:
   the share of their beats flagged, of their fibrillation episodes' beats, and of their S beats.
   The ectopy-dominated profile imitates MIT-BIH 232.
3. The settings: the sample-entropy threshold and the share of pauses a window may hold, pooled.
4. What the flags cost ``heartbeat predict`` on a day's recording: the time and the peak of the
   memory Python and numpy hold while :func:`~heartbeat.signal.irregular.irregular_beats` runs on
   110,000 R-peaks (a day at 76 bpm), beside the same for the R-R features every beat gets already
   (:func:`heartbeat.signal.context.rr_features`), in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, print_machine, table

from heartbeat.fetch.synth import ATRIAL_FIBRILLATION, mitdb_records
from heartbeat.signal import irregular
from heartbeat.signal.context import rr_features
from heartbeat.signal.wfdb_records import read_beat_annotations, read_header

S_SYMBOLS = ("A", "a", "J", "S")
FIBRILLATION = ("(AFIB", "(AFL")


def rhythm_of_beats(base: Path, peaks: np.ndarray) -> np.ndarray:
    """The rhythm annotation in force at each beat (the ``aux_note`` of the last ``+`` before it)."""
    import wfdb

    ann = wfdb.rdann(str(base), "atr")
    changes = [
        (s, a.strip("\x00").strip())
        for s, sym, a in zip(ann.sample, ann.symbol, ann.aux_note, strict=True)
        if sym == "+"
    ]
    if not changes:
        return np.full(peaks.size, "", dtype=object)
    at = np.array([s for s, _ in changes])
    names = np.array([a for _, a in changes], dtype=object)
    index = np.searchsorted(at, peaks, side="right") - 1
    return np.where(index >= 0, names[np.clip(index, 0, None)], "")


def flags_at(peaks: np.ndarray, threshold: float, pauses: float) -> np.ndarray:
    """:func:`heartbeat.signal.irregular.irregular_beats` with other settings."""
    return irregular.irregular_beats(peaks, threshold=threshold, most_pauses=pauses)


def real_records(mirror: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    listing = mirror / "RECORDS"
    names = listing.read_text().split() if listing.is_file() else sorted(p.stem for p in mirror.glob("*.hea"))
    for name in names:
        header = read_header(mirror / name, name)
        peaks, symbols = read_beat_annotations(mirror / name, name, int(header.sig_len))
        out.append((name, peaks, np.asarray(symbols), rhythm_of_beats(mirror / name, peaks)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=SHARED / "mitdb")
    ap.add_argument("--demo-records", type=int, default=48)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    print_machine()
    real = real_records(args.mirror)
    rows, totals = [], np.zeros(6, dtype=int)
    for name, peaks, symbols, rhythm in real:
        flags = irregular.irregular_beats(peaks)
        af, s = np.isin(rhythm, FIBRILLATION), np.isin(symbols, S_SYMBOLS)
        counts = np.array(
            [len(peaks), af.sum(), (flags & af).sum(), (flags & ~af).sum(), s.sum(), (flags & s).sum()]
        )
        totals += counts
        rows.append([name, *map(str, counts)])
    rows.append(["all", *map(str, totals)])
    print(f"\n### 1. MIT-BIH records ({len(real)}): beats flagged by the annotated rhythm\n")
    head = [
        "record",
        "beats",
        "AF/AFL beats",
        "of them flagged",
        "other beats flagged",
        "S beats",
        "S flagged",
    ]
    print(table(head, rows))
    print(
        f"\nflagged: {totals[2] / max(totals[1], 1):.1%} of the fibrillation and flutter beats, "
        f"{totals[3] / max(totals[0] - totals[1], 1):.2%} of the others, {totals[5]} of {totals[4]} S beats"
    )

    synth = [r for seed in (0, 1) for r in mitdb_records(seed, args.demo_records, args.minutes)]
    by_profile: dict[str, np.ndarray] = {}
    for rec in synth:
        profile = rec.profile.get("profile", "paced")
        flags = irregular.irregular_beats(rec.peaks)
        s = np.isin(rec.symbols, S_SYMBOLS)
        during = np.zeros(rec.peaks.size, dtype=bool)
        for episode in rec.profile.get("episodes", []) if profile == ATRIAL_FIBRILLATION else []:
            t = rec.peaks / rec.fs
            during |= (t >= episode["start_s"]) & (t < episode["end_s"]) & (episode["rhythm"] == "AFIB")
        counts = np.array(
            [1, len(flags), flags.sum(), during.sum(), (flags & during).sum(), s.sum(), (flags & s).sum()]
        )
        by_profile[profile] = by_profile.get(profile, np.zeros(7, dtype=int)) + counts
    rows = [
        [
            p,
            str(c[0]),
            str(c[1]),
            f"{c[2] / c[1]:.1%}",
            f"{c[4] / c[3]:.1%}" if c[3] else "–",
            str(c[5]),
            f"{c[6] / c[5]:.1%}" if c[5] else "–",
        ]
        for p, c in by_profile.items()
    ]
    print(
        f"\n### 2. The demo's synthetic patients (seeds 0 and 1, {args.demo_records} records of {args.minutes:g} min each)\n"
    )
    print(
        table(
            ["profile", "records", "beats", "flagged", "of fibrillation beats", "S beats", "of S flagged"],
            rows,
        )
    )

    rows = []
    for threshold in (0.8, 1.0, 1.2):
        for pauses in (1.0, 0.2, 0.15, 0.1):
            c = np.zeros(5, dtype=int)
            for _, peaks, symbols, rhythm in real:
                flags = flags_at(peaks, threshold, pauses)
                af = np.isin(rhythm, FIBRILLATION)
                c += [
                    af.sum(),
                    (flags & af).sum(),
                    (~af).sum(),
                    (flags & ~af).sum(),
                    (flags & np.isin(symbols, S_SYMBOLS)).sum(),
                ]
            ectopic = [r for r in synth if r.profile.get("profile") == "ectopy-dominated"]
            s_total = sum(int(np.isin(r.symbols, S_SYMBOLS).sum()) for r in ectopic)
            s_flagged = sum(
                int((flags_at(r.peaks, threshold, pauses) & np.isin(r.symbols, S_SYMBOLS)).sum())
                for r in ectopic
            )
            shipped = (
                " (shipped)" if (threshold, pauses) == (irregular.THRESHOLD, irregular.MOST_PAUSES) else ""
            )
            rows.append(
                [
                    f"{threshold:g}",
                    f"{pauses:g}{shipped}",
                    f"{c[1] / c[0]:.1%}",
                    f"{c[3] / c[2]:.2%}",
                    str(c[4]),
                    f"{s_flagged / max(s_total, 1):.1%}",
                ]
            )
    print("\n### 3. Settings (sample entropy above; share of pauses at most), pooled\n")
    head = [
        "entropy",
        "pauses",
        "AF/AFL beats flagged",
        "other beats flagged",
        "real S flagged",
        "synthetic ectopy-dominated S flagged",
    ]
    print(table(head, rows))

    peaks = np.cumsum(np.random.default_rng(0).uniform(0.55, 1.05, 110_000) * 360).round()
    rows = []
    for name, step in (
        ("R-R features (rr_features), the baseline", lambda: rr_features(peaks, 360.0)),
        ("irregular-rhythm flags (irregular_beats)", lambda: irregular.irregular_beats(peaks)),
    ):
        tracemalloc.start()
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append([name, f"{seconds:.2f}", f"{peak / 1e6:.1f}"])
    print("\n### 4. Cost on a day's 110,000 beats\n")
    print(table(["step", "seconds", "peak MB (tracemalloc)"], rows))


if __name__ == "__main__":
    main()
