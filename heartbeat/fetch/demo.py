"""The offline ``demo`` source: synthetic patients' records, cut and written as the physionet source does.

The records come from :mod:`heartbeat.fetch.synth`. Each is cut by
:func:`heartbeat.signal.record_beats.cut_record`, MIT-BIH-like ones at their annotated R-peaks, PTB-like
ones at the peaks the paper's detector finds, exactly as the physionet source cuts real records,
and :func:`heartbeat.fetch.beatset.write_beat_files` writes the four CSVs and
``provenance.parquet``. So ``dvc repro`` on a fresh machine, with no network, runs the shipped
recipe (R-R and record-template inputs) and ``preprocess.split: patient`` works. ``report.json``
says who the synthetic patients are.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from heartbeat.core.atomic import write_json
from heartbeat.core.beat_spec import MITBIH_CLASSES, PTB_CLASSES
from heartbeat.core.beatcsv import Beats
from heartbeat.core.config import DemoConfig
from heartbeat.core.errors import DataError
from heartbeat.fetch.beatset import RecordRows, class_counts, concat, plan_files, write_beat_files
from heartbeat.fetch.synth import SynthRecord, mitdb_records, ptbdb_records
from heartbeat.signal import wfdb_records
from heartbeat.signal.record_beats import cut_record

log = logging.getLogger("heartbeat")


def mitdb_rows(
    record: SynthRecord, reference: str = "median", amplitude_stretch_s: float = 0.0
) -> RecordRows:
    """The beats of a MIT-BIH-like record, cut at its annotated R-peaks and labelled by their symbols."""
    beats = cut_record(
        record.signal,
        record.fs,
        record.peaks,
        record.symbols,
        reference=reference,
        amplitude_stretch_s=amplitude_stretch_s,
    )
    return RecordRows.of(beats, "mitdb", record.name, record.patient, wfdb_records.aami_labels(beats.symbol))


def ptbdb_rows(
    record: SynthRecord, reference: str = "median", amplitude_stretch_s: float = 0.0
) -> RecordRows:
    """The beats of a PTB-like record, at the detector's peaks, labelled by the record's diagnosis."""
    beats = cut_record(
        record.signal,
        record.fs,
        None,
        polarity="auto",
        reference=reference,
        amplitude_stretch_s=amplitude_stretch_s,
    )
    label = wfdb_records.diagnosis_label([f"Reason for admission: {record.diagnosis}"])
    return RecordRows.of(beats, "ptbdb", record.name, record.patient, np.full(len(beats), label))


def demo_rows(
    cfg: DemoConfig, seed: int, reference: str = "median", amplitude_stretch_s: float = 0.0
) -> tuple[list[RecordRows], list[RecordRows], dict]:
    """The beats of every synthetic record (MIT-BIH-like, PTB-like) and a report of each record;
    ``reference`` as ``data.reference`` (:func:`heartbeat.signal.patient.reference_mask`), and
    ``amplitude_stretch_s`` as ``data.amplitude_stretch_s``."""
    mit, ptb, report = [], [], {"mitdb": {}, "ptbdb": {}}
    for record in mitdb_records(seed, cfg.mitdb_records, cfg.mitdb_minutes):
        rows = mitdb_rows(record, reference, amplitude_stretch_s)
        mit.append(rows)
        report["mitdb"][record.name] = {
            **record.profile,
            "written": class_counts(rows.label, MITBIH_CLASSES),
        }
    for record in ptbdb_records(seed, cfg.ptbdb_records, cfg.ptbdb_minutes):
        rows = ptbdb_rows(record, reference, amplitude_stretch_s)
        ptb.append(rows)
        report["ptbdb"][record.name] = {
            **record.profile,
            "diagnosis": record.diagnosis,
            "beats": int(record.peaks.size),
            "detected": len(rows.label),
        }
    return mit, ptb, report


def _empty_file_error(name: str) -> DataError:
    return DataError(
        f"{name}: the demo records gave no beats for this file; "
        "use more or longer records (data.demo.mitdb_records, mitdb_minutes)"
    )


def demo_beats(cfg: DemoConfig, seed: int) -> dict[str, Beats]:
    """The four files' beats and labels as the demo source writes them, without writing anything."""
    mit, ptb, _ = demo_rows(cfg, seed)
    plan, _ = plan_files(concat(mit), concat(ptb), cfg.test_fraction, seed)
    return {name: Beats(X=cols["X"][rows], y=cols["label"][rows]) for name, (cols, rows) in plan.items()}


def fetch_demo(
    cfg: DemoConfig, seed: int, dest: Path, reference: str = "median", amplitude_stretch_s: float = 0.0
) -> None:
    """Generate, cut and write the demo set into ``dest`` (the four CSVs, provenance, report.json)."""
    mit_parts, ptb_parts, report = demo_rows(cfg, seed, reference, amplitude_stretch_s)
    mit, ptb = concat(mit_parts), concat(ptb_parts)
    written = write_beat_files(dest, mit, ptb, cfg.test_fraction, seed, _empty_file_error)
    test = written["test_mask"]
    write_json(
        dest / "report.json",
        {
            "source": "demo",
            "synthetic": True,
            "seed": seed,
            "rows": written["rows"],
            "mitdb": {
                "classes": {
                    name: {
                        "train": int(((mit["label"] == i) & ~test).sum()),
                        "test": int(((mit["label"] == i) & test).sum()),
                    }
                    for i, name in enumerate(MITBIH_CLASSES)
                },
                "records": report["mitdb"],
            },
            "ptbdb": {
                "classes": {name: int((ptb["label"] == i).sum()) for i, name in enumerate(PTB_CLASSES)},
                "records": report["ptbdb"],
            },
        },
    )
    log.info(
        "demo: %s synthetic MIT-BIH-like beats from %d records, %s PTB-like beats from %d records",
        f"{mit['label'].size:,}",
        len(mit_parts),
        f"{ptb['label'].size:,}",
        len(ptb_parts),
    )
