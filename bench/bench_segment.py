"""Time beat extraction over the shared MIT-BIH records (and, with --end-to-end, the whole physionet source).

Usage: python bench/bench_segment.py [DATA_DIR] [--end-to-end]

DATA_DIR defaults to ../shared/data beside the checkout. Prints, for all
records in DATA_DIR/mitdb/RECORDS: reading (header, lead, annotations),
resampling, segmentation with the annotated R-peaks, and the paper's
detector, each as a total and per record. ``--end-to-end`` also runs
``fetch_physionet`` from the local folder into a temporary directory (with
one PTB header rewritten to a healthy control, since the shared PTB records
are all infarction), which includes writing the CSVs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb

from heartbeat.signal import segment as sg

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def bench_records(mitdb: Path) -> None:
    records = (mitdb / "RECORDS").read_text().split()
    t = dict.fromkeys(("read", "resample", "segment", "detect"), 0.0)
    beats = annotated = 0
    for record in records:
        t0 = time.perf_counter()
        header = wfdb.rdheader(str(mitdb / record))
        lead = "MLII" if "MLII" in header.sig_name else "V5"
        signal = wfdb.rdrecord(str(mitdb / record), channel_names=[lead]).p_signal[:, 0]
        ann = wfdb.rdann(str(mitdb / record), "atr")
        labels = records.aami_labels(ann.symbol)
        samples = np.asarray(ann.sample)[labels >= 0]
        t1 = time.perf_counter()
        x = sg.resample(signal, header.fs)
        t2 = time.perf_counter()
        p = sg.resample_peaks(samples, header.fs, x.size)
        X, _ = sg.segment_beats(x, p, sg.nominal_periods(p, x.size))
        t3 = time.perf_counter()
        sg.detect_peaks(sg.normalise_windows(x))
        t4 = time.perf_counter()
        t["read"] += t1 - t0
        t["resample"] += t2 - t1
        t["segment"] += t3 - t2
        t["detect"] += t4 - t3
        beats += X.shape[0]
        annotated += samples.size
    n = len(records)
    print(f"{n} MIT-BIH records, {annotated:,} annotated beats, {beats:,} beats cut")
    for key, label in (
        ("read", "load (wfdb)"),
        ("resample", "resample to 125 Hz"),
        ("segment", "segment (annotations)"),
        ("detect", "detector"),
    ):
        print(f"  {label:<24}{t[key]:7.2f} s total  {1000 * t[key] / n:7.1f} ms/record")
    print(f"  {'load + resample':<24}{t['read'] + t['resample']:7.2f} s")
    print(f"  {'all of the above':<24}{sum(t.values()):7.2f} s")


def bench_end_to_end(data: Path) -> None:
    from heartbeat.core.config import PhysionetConfig
    from heartbeat.fetch.physionet import fetch_physionet

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mirror"
        root.mkdir()
        (root / "mitdb").symlink_to(data / "mitdb", target_is_directory=True)
        shutil.copytree(data / "ptbdb", root / "ptbdb", copy_function=lambda s, d: Path(d).symlink_to(s))
        header = root / "ptbdb" / "patient003" / "s0017lre.hea"
        text = header.read_text()
        header.unlink()
        header.write_text(text.replace("Myocardial infarction", "Healthy control"))
        t0 = time.perf_counter()
        fetch_physionet(PhysionetConfig(mirror=str(root)), 0, Path(tmp) / "out", Path(tmp) / "cache")
        print(
            f"end to end (fetch_physionet from the local folder, CSVs written): {time.perf_counter() - t0:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args()
    if not (args.data / "mitdb" / "RECORDS").is_file():
        raise SystemExit(f"no MIT-BIH records at {args.data / 'mitdb'}")
    logging.getLogger("heartbeat").setLevel(logging.WARNING)
    bench_records(args.data / "mitdb")
    if args.end_to_end:
        bench_end_to_end(args.data)


if __name__ == "__main__":
    main()
