"""R-peak detection against the MIT-BIH annotations: the detector ``heartbeat predict`` uses on a
recording without annotations, beside the paper's detector and (``--others``) other libraries.

On every record of ../shared/data/mitdb (lead MLII, V5 where there is none), each detector's output
is matched to the ``.atr`` beat annotations (beat symbols only): a detection and a beat match when
each is the other's nearest neighbour within the tolerance (50 ms, and 150 ms as in AAMI EC57). The
table gives sensitivity (Se), positive predictivity (+P), F1, the share of ventricular beats (V, E)
found at 150 ms, the three worst records and the median seconds per record; ``--rates 250 125`` also runs each detector on the records resampled to those
rates (detections are mapped back to 360 Hz before matching).

    python bench/bench_detector.py                      # ours and the paper's, at 360 Hz
    python bench/bench_detector.py --rates 250 125      # and on resampled records
    pip install neurokit2==0.3.0 sleepecg==0.6.0 && python bench/bench_detector.py --others
    python bench/bench_detector.py --missed             # the beats XQRS alone misses, and why

``--missed`` looks at XQRS alone at 360 Hz: per record, the ventricular beats it misses, the 5-20 Hz
band energy XQRS thresholds (its moving-wave integration, the largest within 150 ms) near those
beats and near the normal beats it finds, and the places ``wide_beats`` weighs (``wide_candidates``):
the size and slope of those that are missed beats against the others, and how many of each it keeps.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, print_machine, table, write_json

from heartbeat.signal import detect, segment, wfdb_records

Detector = Callable[[np.ndarray, float], np.ndarray]


def paper(signal: np.ndarray, fs: float) -> np.ndarray:
    """The paper's detector as the physionet source runs it (``peaks: detector``, polarity auto)."""
    return segment.extract_beats(signal, fs, None, polarity="auto", require_next=False).peaks


def others() -> dict[str, Detector]:
    """Other libraries' detectors, where installed (they are not dependencies of the project)."""
    found: dict[str, Detector] = {}
    if importlib.util.find_spec("neurokit2"):
        import neurokit2 as nk

        def neurokit(signal: np.ndarray, fs: float) -> np.ndarray:
            clean = nk.ecg_clean(signal, sampling_rate=round(fs), method="neurokit")
            return np.asarray(nk.ecg_peaks(clean, sampling_rate=round(fs))[1]["ECG_R_Peaks"])

        found["neurokit2 (neurokit)"] = neurokit
    if importlib.util.find_spec("sleepecg"):
        import sleepecg

        found["sleepecg"] = lambda signal, fs: np.asarray(sleepecg.detect_heartbeats(signal, fs))
    return found


def score(
    detector: Detector, rate: float | None, data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> dict:
    """Totals and per-record F1 at both tolerances, ventricular beats found at 150 ms, and the
    seconds each record took."""
    totals = {tol: [0, 0, 0] for tol in (0.05, 0.15)}
    per_record, seconds, ventricular = {}, [], [0, 0]
    for name, (signal, reference, is_v) in data.items():
        x, fs = signal, 360.0
        if rate is not None and rate != 360:
            ratio = Fraction(rate / 360).limit_denominator(1000)
            x, fs = resample_poly(signal, ratio.numerator, ratio.denominator), float(rate)
        t0 = time.perf_counter()
        found = np.asarray(detector(x, fs), dtype=np.float64)
        seconds.append(time.perf_counter() - t0)
        found = np.rint(found * 360.0 / fs).astype(np.int64)
        per_record[name] = {}
        for tol, acc in totals.items():
            s = detect.score_detector(found, reference, 360.0, tol)
            acc[0] += s.true_positives
            acc[1] += s.false_positives
            acc[2] += s.false_negatives
            per_record[name][tol] = (
                2 * s.true_positives / max(1, 2 * s.true_positives + s.false_positives + s.false_negatives)
            )
        matched = detect.match_peaks(found, reference, 360.0, 0.15)
        ventricular[0] += int(is_v[matched[matched >= 0]].sum())
        ventricular[1] += int(is_v.sum())
    out = {"seconds_per_record": statistics.median(seconds), "records": per_record}
    out["ventricular_found"] = {"found": ventricular[0], "of": ventricular[1]}
    for tol, (tp, fp, fn) in totals.items():
        out[f"{int(tol * 1000)}ms"] = {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "se": tp / max(1, tp + fn),
            "ppv": tp / max(1, tp + fp),
            "f1": 2 * tp / max(1, 2 * tp + fp + fn),
        }
    return out


def load(
    folder: Path,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Each record's lead, its annotated beats' samples, and which of them are ventricular (V, E);
    and each record's beat symbols."""
    data, symbols = {}, {}
    for name in (folder / "RECORDS").read_text().split():
        base = folder / name
        header = wfdb_records.read_header(base, name)
        lead = wfdb_records.pick_lead(header.sig_name, ("MLII", "V5"))
        samples, beat_symbols = wfdb_records.read_beat_annotations(base, name, int(header.sig_len))
        symbols[name] = np.asarray(beat_symbols)
        is_v = np.isin(symbols[name], ["V", "E"])
        data[name] = (wfdb_records.read_lead(base, header, lead, name), samples, is_v)
    return data, symbols


def missed(
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], symbols: dict[str, np.ndarray]
) -> None:
    """Print ``--missed``: what XQRS alone misses and what tells those beats from the rest."""
    rows, energy_missed, energy_normal, hidden, other = [], [], [], [], []
    for name, (signal, reference, is_v) in data.items():
        xqrs = detect._xqrs_class()(sig=np.asarray(signal, dtype=np.float64), fs=360.0)
        xqrs.detect(verbose=False)
        found = detect.xqrs_peaks(signal, 360.0)
        hit = detect.match_peaks(reference, found, 360.0)  # for each annotated beat, its detection
        window = round(0.15 * 360)

        def band(beats: np.ndarray, energy: np.ndarray = xqrs.sig_i, window: int = window) -> list[float]:
            return [float(energy[max(b - window, 0) : b + window].max()) for b in beats]

        lost = reference[(hit < 0) & is_v]
        energy_missed += band(lost)
        energy_normal += band(reference[(hit >= 0) & (symbols[name] == "N")])
        cand, size, slope = detect.wide_candidates(signal, 360.0, found)
        gone = reference[hit < 0]
        near = np.zeros(cand.size, dtype=bool)
        if gone.size:
            j = np.clip(np.searchsorted(gone, cand), 1, gone.size) - 1
            for k in (j, np.minimum(j + 1, gone.size - 1)):
                near |= np.abs(gone[k] - cand) <= window
        hidden.append(np.column_stack([size[near], slope[near]]))
        other.append(np.column_stack([size[~near], slope[~near]]))
        keep = (size >= detect.WIDE_MIN_SIZE) & (slope >= detect.WIDE_MIN_SLOPE)
        rows.append(
            [
                name,
                f"{int(is_v.sum())}",
                f"{lost.size}",
                f"{int((keep & near).sum())}",
                f"{int((keep & ~near).sum())}",
            ]
        )
    print(table(["record", "V beats", "V missed by XQRS", "pass: missed beats", "pass: others"], rows))
    hidden_all, other_all = np.concatenate(hidden), np.concatenate(other)
    print(
        f"\n5-20 Hz band energy (XQRS's moving-wave integration, median): near the missed V beats "
        f"{np.median(energy_missed):.3g}, near the normal beats XQRS finds {np.median(energy_normal):.3g}"
    )
    for label, values in (("missed beats", hidden_all), ("other deflections", other_all)):
        q = np.quantile(values, [0.1, 0.5, 0.9], axis=0)
        print(
            f"{label} ({len(values):,}): size 10/50/90% {q[0, 0]:.2f} / {q[1, 0]:.2f} / {q[2, 0]:.2f}, "
            f"slope {q[0, 1]:.2f} / {q[1, 1]:.2f} / {q[2, 1]:.2f} (shares of the median detected beat's)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mitdb", type=Path, default=SHARED / "mitdb")
    parser.add_argument("--rates", type=float, nargs="*", default=[], help="also at these rates (Hz)")
    parser.add_argument("--others", action="store_true", help="also neurokit2 and sleepecg, if installed")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--missed", action="store_true", help="only: the beats XQRS alone misses, and why")
    args = parser.parse_args()
    if not (args.mitdb / "RECORDS").is_file():
        raise SystemExit(f"{args.mitdb}: no RECORDS index; the benchmark needs the real MIT-BIH records")
    print_machine()
    data, symbols = load(args.mitdb)
    if args.missed:
        missed(data, symbols)
        return
    print(f"{len(data)} records, {sum(len(r) for _, r, _ in data.values()):,} annotated beats\n")
    detectors: dict[str, Detector] = {
        "xqrs + correct_peaks + wide beats (heartbeat predict)": detect.r_peaks,
        "xqrs + correct_peaks alone": detect.xqrs_peaks,
        "paper": paper,
    }
    if args.others:
        detectors.update(others())
    results, rows = {}, []
    for rate in [None, *args.rates]:
        for name, fn in detectors.items():
            r = score(fn, rate, data)
            results[f"{name} @ {rate or 360:g} Hz"] = r
            worst = sorted(r["records"].items(), key=lambda kv: kv[1][0.05])[:3]
            rows.append(
                [
                    name,
                    f"{rate or 360:g}",
                    *(f"{r[t]['se']:.2%} / {r[t]['ppv']:.2%} / {r[t]['f1']:.2%}" for t in ("50ms", "150ms")),
                    f"{r['ventricular_found']['found']:,} of {r['ventricular_found']['of']:,}",
                    ", ".join(f"{k} {v[0.05]:.1%}" for k, v in worst),
                    f"{r['seconds_per_record']:.2f}",
                ]
            )
            print(f"{name} @ {rate or 360:g} Hz done", file=sys.stderr)
    header = [
        "detector",
        "Hz",
        "Se / +P / F1 at 50 ms",
        "Se / +P / F1 at 150 ms",
        "V beats found (150 ms)",
        "worst 3 (F1 at 50 ms)",
        "s/record",
    ]
    print(table(header, rows))
    write_json(
        args.json,
        {
            k: {**v, "records": {n: {str(t): f for t, f in d.items()} for n, d in v["records"].items()}}
            for k, v in results.items()
        },
    )


if __name__ == "__main__":
    main()
