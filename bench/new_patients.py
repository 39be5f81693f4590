"""New patients: leave-one-record-out over the DS1 records, and ectopy-dominated stress variants.

The proxy for the hidden inter-patient test (train on DS1, test on DS2). Every model is trained on
21 of the 22 DS1 records and tested on the 22nd, for each record and seed, all in one run; the
tables pool the 22 test records (mean ± std over seeds) and list each record.

Stress variants reproduce a patient whose usual beat is not a normal beat (a rhythm that is mostly
ectopic): each DS1 record with at least ``--rich`` S (or V) beats has its N beats thinned, evenly in
time, until the ectopic beats are two thirds of what is left (of every class; and, stricter, of the
S or V class alone). The R-R intervals stay the record's own (the rhythm is real), but everything
that stands for the patient (median R-R, median beat, QRS amplitude, z-score centres, and the beats
that record smoothing draws neighbours from) comes from the thinned mix, and the thinned mix is what
is scored, by the model trained without that record.

    python bench/new_patients.py --models gbt lda --seeds 0 1 2            # the tables
    python bench/new_patients.py --models gbt --seeds 0 --records 209 220   # a quick look

Data: the MIT-BIH records in ``--mirror`` (../shared/data/mitdb), beats at the annotated R-peaks as
the physionet source cuts them (lead MLII, the record's second lead beside it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from heartbeat.core.beat_spec import MITBIH_CLASSES  # noqa: E402
from heartbeat.core.config import DS1_RECORDS, PhysionetConfig  # noqa: E402
from heartbeat.evaluate.metrics import per_class_metrics  # noqa: E402
from heartbeat.fetch.physionet import segment_options  # noqa: E402
from heartbeat.model.calibration import apply_temperature  # noqa: E402
from heartbeat.model.outputs import OutputSteps  # noqa: E402
from heartbeat.model.rhythm_gate import gate_irregular  # noqa: E402
from heartbeat.prepare.arrays import Split  # noqa: E402
from heartbeat.signal import wfdb_records  # noqa: E402
from heartbeat.signal.irregular import irregular_beats  # noqa: E402
from heartbeat.signal.patient import (  # noqa: E402
    BEAT_COLUMNS,
    RR_COLUMNS,
    neighbours,
    patient_inputs,
    record_amplitude,
    record_standardised,
    rhythm_reference,
    rr_features,
    stretches,
    unlike_qrs,
    wide_windows,
)
from heartbeat.signal.record_beats import cut_record  # noqa: E402
from heartbeat.signal.segment import extract_beats  # noqa: E402
from heartbeat.train.bagging import held_out_records  # noqa: E402

log = logging.getLogger("new_patients")

NSVF = (0, 1, 2, 3)
STRESS_MIX = "ectopic"
"""The stress variant whose N beats are thinned until the ectopic beats of every class make 2/3."""
SOURCE = PhysionetConfig()
"""The physionet source's settings: its leads and segmentation, which the beats here are cut with."""


@dataclass
class Record:
    """One record's raw material: leads, annotated R-peaks and their AAMI labels."""

    name: str
    fs: float
    leads: list[np.ndarray]
    peaks: np.ndarray
    labels: np.ndarray
    minutes: float


def load_records(mirror: Path, names: list[str]) -> list[Record]:
    cfg = SOURCE
    out = []
    for name in names:
        base = mirror / name
        header = wfdb_records.read_header(base, name)
        lead = wfdb_records.pick_lead(header.sig_name, (cfg.mitdb_lead, cfg.mitdb_fallback_lead))
        signal = wfdb_records.read_lead(base, header, lead, name)
        other = wfdb_records.second_lead(header, lead)
        leads = [signal] if other is None else [signal, wfdb_records.read_lead(base, header, other, name)]
        peaks, symbols = wfdb_records.read_beat_annotations(base, name, int(header.sig_len))
        labels = wfdb_records.aami_labels(symbols)
        out.append(Record(name, float(header.fs), leads, peaks, labels, header.sig_len / header.fs / 60))
    return out


def featurise(
    rec: Record, reference: np.ndarray | None = None, amplitude_stretch_s: float | None = None
) -> tuple[np.ndarray, ...]:
    """Windows, patient features, labels and the row of each beat in ``rec.peaks``, as the physionet
    source cuts them (edge beats without a full window are dropped); ``amplitude_stretch_s``: each
    stretch of that many seconds brought to the record's QRS amplitude first
    (:func:`heartbeat.signal.patient.patient_inputs`)."""
    symbols = np.array(["N"] * rec.peaks.size, dtype=object)  # labels travel separately
    beats = cut_record(
        rec.leads[0],
        rec.fs,
        rec.peaks,
        symbols,
        second=rec.leads[1] if len(rec.leads) > 1 else None,
        reference=reference,
        amplitude_stretch_s=amplitude_stretch_s,
        **segment_options(SOURCE),
    )
    rows = np.searchsorted(rec.peaks, beats.sample)
    return beats.window, beats.patient, rec.labels[rows], rows


def scored_rows(rec: Record) -> np.ndarray:
    """The row in ``rec.peaks`` of each beat :func:`featurise` keeps, without its features."""
    seg = extract_beats(rec.leads[0], rec.fs, rec.peaks, **segment_options(SOURCE))
    return np.searchsorted(rec.peaks, np.asarray(seg.peaks)[seg.index])


def stress_mask(labels: np.ndarray, ectopic: int | None = None, share: float = 2 / 3) -> np.ndarray:
    """The beats a thinned mix keeps: every beat that is not N, and N beats evenly spaced in time so
    that the ectopic beats (every class but N, or with ``ectopic`` that class alone) make ``share``
    of the mix. At least one N beat stays."""
    keep = labels != 0
    target = keep if ectopic is None else labels == ectopic
    normal = np.flatnonzero(labels == 0)
    wanted = round(int(target.sum()) * (1 - share) / share) - int((keep & ~target).sum())
    wanted = int(np.clip(wanted, 1, normal.size))
    keep[normal[np.linspace(0, normal.size - 1, wanted).round().astype(int)]] = True
    return keep


def random_reference(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random beat mix for a training record's reference: a random share (5-100%) of its N beats,
    evenly in time, and all the others. No labels reach the model; they only pick the mix."""
    keep = labels != 0
    normal = np.flatnonzero(labels == 0)
    if normal.size == 0:
        return np.ones(labels.size, dtype=bool)
    n = max(1, round(normal.size * rng.uniform(0.05, 1.0)))
    keep[normal[np.linspace(0, normal.size - 1, n).round().astype(int)]] = True
    return keep


def references(rec: Record, method: str, among: np.ndarray | None = None) -> np.ndarray | None:
    """The reference mask of ``method`` for ``rec`` (chosen among ``among``, the beats the recording
    holds; all of them by default): ``median`` takes them all, ``rhythm`` the beats of the patient's
    own rhythm (:func:`heartbeat.signal.patient.rhythm_reference`); ``rhythm_local`` the same beats,
    each :data:`LOCAL_SECONDS` of the record scaled to the record's QRS amplitude by them."""
    if method == "median":
        return among
    return rhythm_reference(rec.peaks, rec.fs, among)


LOCAL_SECONDS = {"rhythm_local": 300.0}
"""Reference methods that scale each stretch of the record to its QRS amplitude, and the stretch's
length in seconds (:func:`heartbeat.signal.patient.patient_inputs`)."""


def stretch_ratios(
    rec: Record, lead: int, reference: np.ndarray | None, seconds: float
) -> tuple[list[slice], list[float]]:
    """The stretches of ``rec`` (:func:`heartbeat.signal.patient.stretches`) and the QRS amplitude of
    each on lead ``lead`` over the whole record's, both by the ``reference`` beats."""
    W = wide_windows(rec.leads[lead], rec.fs, rec.peaks)
    whole = record_amplitude(W, reference=reference)
    runs = stretches(rec.peaks, rec.fs, seconds, reference)
    ratios = [
        record_amplitude(W[r], reference=None if reference is None else reference[r]) / whole for r in runs
    ]
    return runs, ratios


def stretch_amplitudes(rec: Record, seconds: float = LOCAL_SECONDS["rhythm_local"]) -> list[float]:
    """The QRS amplitude of each stretch of ``rec``'s first lead (:func:`heartbeat.signal.patient.stretches`)
    over the whole record's, both by the reference beats of the patient's own rhythm: what
    ``data.amplitude_stretch_s`` scales each stretch by, inverted."""
    return stretch_ratios(rec, 0, references(rec, "rhythm"), seconds)[1]


AMPLITUDE_TOLERANCE = 1.25
"""The ``amplitude`` scoring levels a stretch whose QRS amplitude is more than this factor from the
record's, either way. In the 22 DS1 records such stretches are in five (``--amplitudes``: 109 at
1.53, 116 0.63, 108 0.65, 223 0.70, 207 0.79); every stretch of the other 17 is within 0.91-1.16."""


def amplitude_levelled(
    rec: Record,
    method: str,
    tolerance: float = AMPLITUDE_TOLERANCE,
    seconds: float = LOCAL_SECONDS["rhythm_local"],
) -> Record | None:
    """``rec`` with each stretch whose QRS amplitude (by ``method``'s reference beats) is more than
    ``tolerance`` times the whole record's, or less than its inverse, scaled to the record's, lead by
    lead, in the signal itself (from midway to the stretch's first beat to midway past its last):
    the features see a steady amplitude there, and nothing else changes. None when no stretch is
    that far off."""
    reference = references(rec, method)
    leads, changed = [], False
    for i, lead in enumerate(rec.leads):
        runs, ratios = stretch_ratios(rec, i, reference, seconds)
        edges = np.concatenate([[0], (rec.peaks[:-1] + rec.peaks[1:]) // 2, [lead.size]])
        out = lead
        for run, ratio in zip(runs, ratios, strict=True):
            if 1 / tolerance <= ratio <= tolerance:
                continue
            out = out if out is not lead else lead.copy()
            out[edges[run.start] : edges[run.stop]] /= ratio
            changed = True
        leads.append(out)
    return Record(rec.name, rec.fs, leads, rec.peaks, rec.labels, rec.minutes) if changed else None


def detected_split(rec: Record, method: str, xqrs_alone: bool = False) -> tuple[Split, np.ndarray]:
    """``rec`` as ``heartbeat predict`` cuts a recording without annotations: R-peaks from its
    detector (with ``xqrs_alone``, from XQRS alone, without the wide beats it misses), every feature
    by its own path (:func:`heartbeat.serve.inputs.from_recording`), with ``method``'s reference. The
    split (labels 0: the detections' labels come from matching them to the annotations when they
    are scored) and the detections' samples."""
    from unittest import mock

    from heartbeat.serve.inputs import from_recording
    from heartbeat.signal import detect
    from heartbeat.signal.user_recordings import Recording

    second = rec.leads[1] if len(rec.leads) > 1 else None
    recording = Recording(
        signal=rec.leads[0], fs=rec.fs, lead=SOURCE.mitdb_lead, where=rec.name, second=second
    )
    reference = "median" if method == "median" else "rhythm"
    detector = detect.xqrs_peaks if xqrs_alone else detect.r_peaks
    with mock.patch.object(detect, "r_peaks", detector):
        beats = from_recording(
            recording, "detector", reference=reference, amplitude_stretch_s=LOCAL_SECONDS.get(method, 0.0)
        )
    n = len(beats.sample)
    irregular = np.zeros(n, np.int64) if beats.irregular is None else np.asarray(beats.irregular, np.int64)
    zeros = np.zeros(n, np.int64)
    split = Split(
        X=np.zeros((n, 1), np.float32), y=zeros, W=beats.window, P=beats.patient, G=zeros, I=irregular
    )
    return split, np.asarray(beats.sample, dtype=np.int64)


SCORINGS = ("detected", "xqrs", "amplitude")
"""Other cuts of a test record that ``--scorings`` scores with the same trained network as the
record itself (a paired comparison: only the test record's features differ). ``detected``: R-peaks
from ``heartbeat predict``'s detector, not the annotations (:func:`detected_split`), scored as
EC57 does, each detection matched to an annotated beat within 150 ms; ``xqrs``: the same with
XQRS's R-peaks alone (the detector before it looked for the wide beats XQRS misses);
``amplitude``: stretches of
the record whose QRS amplitude is far from the record's levelled (:func:`amplitude_levelled`), at
the annotated R-peaks; a record with no such stretch scores as itself."""


@dataclass
class Prepared:
    """One record featurised for a reference method: the whole record and its stress variants."""

    split: Split
    stress: dict[str, Split]
    """The thinned mixes (scored), each with the mix as the reference: :data:`STRESS_MIX`, N thinned
    until the ectopic beats of every class make 2/3; ``"1"`` (``"2"``), until the S (V) beats alone
    make 2/3."""
    augmented: list[Split]
    """Training copies of the record with other references (:data:`COPIES`)."""
    scorings: dict[str, tuple[Split, np.ndarray | None]] = field(default_factory=dict)
    """Other cuts of the record to score (:data:`SCORINGS`), with the samples of their beats where
    those are not the record's annotated ones."""


COPIES = ("random", "median", "irregular", "fusion")
"""Kinds of training copy: ``random``, the reference chosen by the variant's method among a random
beat mix (:func:`random_reference`); ``median``, the whole record against all its beats;
``irregular``, the record's beats with the rhythm of atrial fibrillation (:func:`irregular_copy`);
``fusion``, fusion beats made from the record's own N and V beats (:func:`fusion_copy`)."""
IRREGULAR_EVERY = 3
"""An irregular copy keeps every 3rd beat for training, so that it adds a third to the training set."""


def irregular_timing(peaks: np.ndarray, fs: float, rng: np.random.Generator) -> np.ndarray:
    """R-peak samples with an irregularly irregular rhythm, as in atrial fibrillation: independent
    log-normal R-R intervals (spread 0.15-0.35) around 60-100% of the record's median R-R, none
    under 0.25 s."""
    rr = np.diff(peaks) / fs
    mean = float(np.median(rr)) * rng.uniform(0.6, 1.0)
    fake = np.maximum(mean * np.exp(rng.normal(0.0, rng.uniform(0.15, 0.35), rr.size)), 0.25)
    return peaks[0] + np.rint(np.concatenate([[0.0], np.cumsum(fake)]) * fs).astype(np.int64)


def irregular_copy(rec: Record, rows: np.ndarray, rng: np.random.Generator, method: str = "rhythm") -> Split:
    """A training copy of ``rec`` as if its rhythm were atrial fibrillation, against the false S
    alarms that irregular rhythm raises in a new patient (DS1 has two such records, 201 and 203).

    The windows and shapes are the record's own; every R-R feature, and the reference the method
    chooses from the rhythm, come from :func:`irregular_timing`. S beats stay in the sequence but
    not among the training beats: an S label means "premature for the patient's rhythm", which
    this rhythm does not have. ``rows`` are the beats the record's own split keeps."""
    fake = irregular_timing(rec.peaks, rec.fs, rng)
    reference = rhythm_reference(fake, rec.fs)
    W, P = patient_inputs(rec.leads, rec.fs, rec.peaks, reference, LOCAL_SECONDS.get(method))
    beat = P[:, : len(BEAT_COLUMNS)].copy()
    rr = rr_features(fake, rec.fs, reference)
    beat[:, : len(RR_COLUMNS)] = rr
    watched = neighbours(rr[:, [RR_COLUMNS.index("pre_rec")]])
    beat[:, [BEAT_COLUMNS.index("prev_pre_rec"), BEAT_COLUMNS.index("next_pre_rec")]] = watched
    P = np.hstack([beat, record_standardised(beat, reference)])
    kept = rows[::IRREGULAR_EVERY]
    kept = kept[rec.labels[kept] != 1]
    y = rec.labels[kept]
    return Split(X=np.zeros((len(y), 1), np.float32), y=y, W=W[kept], P=P[kept], G=np.zeros(len(y), np.int64))


FUSION_BEATS = 40
"""Fusion beats a ``fusion`` copy makes of a record (fewer where it has fewer than 10x as many N beats)."""
FUSION_MIN_V = 10
"""V beats a record needs to lend its fusion beats their ventricular part."""
FUSION_SPAN = (0.25, 0.45)
"""Seconds before and after the R-peak that a fusion beat blends: the P wave to the end of the T wave."""


def fusion_copy(rec: Record, method: str, rng: np.random.Generator) -> Split | None:
    """Training beats labelled F, made the way a fusion beat arises: a sinus and a ventricular
    activation meeting in one beat. Each is one of the record's own N beats with a share (30-70%)
    of one of its V beats blended in, on both leads, around the R-peak (:data:`FUSION_SPAN`,
    tapered to nothing at the edges, each segment's baseline removed first); its timing stays the
    N beat's, as a fusion beat comes when the sinus beat is due. Every feature is then cut from the
    altered record by the same code as the real beats. None when the record has too few V beats.

    DS1 holds almost all of its F beats in one patient (208), so a network trained without that
    patient has none to learn F from; every record with N and V beats can lend them."""
    normal = np.flatnonzero(rec.labels == 0)[1:-1]
    ventricular = np.flatnonzero(rec.labels == 2)
    count = min(FUSION_BEATS, normal.size // 10)
    if ventricular.size < FUSION_MIN_V or count == 0:
        return None
    pre, post = (round(s * rec.fs) for s in FUSION_SPAN)
    width = pre + post
    taper = np.sin(np.linspace(0.0, np.pi, width)) ** 2
    edge = max(1, round(0.02 * rec.fs))
    chosen = np.sort(rng.choice(normal, size=count, replace=False))
    chosen = chosen[np.concatenate([[True], np.diff(rec.peaks[chosen]) > width])]
    sources = rng.choice(ventricular, size=chosen.size)
    shares = rng.uniform(0.3, 0.7, chosen.size)
    leads = [lead.copy() for lead in rec.leads]
    made = []
    for target, source, share in zip(chosen, sources, shares, strict=True):
        t, v = int(rec.peaks[target]) - pre, int(rec.peaks[source]) - pre
        if min(t, v) < 0 or max(t, v) + width > rec.leads[0].size:
            continue
        for lead, original in zip(leads, rec.leads, strict=True):
            seg_n, seg_v = original[t : t + width], original[v : v + width]
            line_n = np.linspace(seg_n[:edge].mean(), seg_n[-edge:].mean(), width)
            line_v = np.linspace(seg_v[:edge].mean(), seg_v[-edge:].mean(), width)
            lead[t : t + width] = seg_n + share * taper * ((seg_v - line_v) - (seg_n - line_n))
        made.append(target)
    labels = rec.labels.copy()
    labels[made] = MITBIH_CLASSES.index("F")
    altered = Record(rec.name, rec.fs, leads, rec.peaks, labels, rec.minutes)
    W, P, y, rows = featurise(altered, references(altered, method), LOCAL_SECONDS.get(method))
    kept = np.isin(rows, made)
    return Split(
        X=np.zeros((int(kept.sum()), 1), np.float32),
        y=y[kept],
        W=W[kept],
        P=P[kept],
        G=np.zeros(int(kept.sum()), np.int64),
    )


def prepare(
    rec: Record, method: str, copies: tuple[str, ...], rich: int, seed: int, scorings: tuple[str, ...] = ()
) -> Prepared:
    def as_split(reference: np.ndarray | None, keep: np.ndarray | None = None, record: Record = rec) -> Split:
        W, P, y, rows = featurise(record, reference, LOCAL_SECONDS.get(method))
        irregular = irregular_beats(rec.peaks[rows]).astype(np.int64)  # the recording's own rhythm
        if keep is not None:
            kept = keep[rows]
            W, P, y, irregular = W[kept], P[kept], y[kept], irregular[kept]
        zeros = np.zeros(len(y), np.int64)
        return Split(X=np.zeros((len(y), 1), np.float32), y=y, W=W, P=P, G=zeros, I=irregular)

    stress = {}
    rich_in = [c for c in (1, 2) if (rec.labels == c).sum() >= rich]
    if rich_in:
        mix = stress_mask(rec.labels)
        stress[STRESS_MIX] = as_split(references(rec, method, mix), mix)
    for ectopic in rich_in:
        mix = stress_mask(rec.labels, ectopic)
        stress[str(ectopic)] = as_split(references(rec, method, mix), mix)
    rng = np.random.default_rng([seed, int(rec.name)])
    extra = []
    for kind in copies:
        if kind == "median":
            extra.append(as_split(None))
        elif kind == "random":
            extra.append(as_split(references(rec, method, random_reference(rec.labels, rng))))
        elif kind == "fusion":
            fused = fusion_copy(rec, method, rng)
            extra += [] if fused is None else [fused]
        else:
            extra.append(irregular_copy(rec, scored_rows(rec), rng, method))
    cuts: dict[str, tuple[Split, np.ndarray | None]] = {}
    for name in ("detected", "xqrs"):
        if name in scorings:
            cuts[name] = detected_split(rec, method, xqrs_alone=name == "xqrs")
    levelled = amplitude_levelled(rec, method) if "amplitude" in scorings else None
    if levelled is not None:
        cuts["amplitude"] = (as_split(references(levelled, method), record=levelled), None)
    return Prepared(as_split(references(rec, method)), stress, extra, cuts)


def concat(splits: list[Split]) -> Split:
    return Split(
        X=np.concatenate([s.X for s in splits]),
        y=np.concatenate([s.y for s in splits]),
        W=np.concatenate([s.W for s in splits]),
        P=np.concatenate([s.P for s in splits]),
        G=np.concatenate([np.full(len(s.y), i, np.int64) for i, s in enumerate(splits)]),
        I=None if any(s.I is None for s in splits) else np.concatenate([s.I for s in splits]),
    )


def final_proba(model, trained_info: dict, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The network's own probabilities and the final ones: the stored steps (temperature, smoothing
    over the record, the irregular-rhythm gate) applied by the package's one path, as evaluate and
    predict do."""
    from heartbeat.model.architectures import model_inputs

    raw = model.predict(model_inputs(model, split), batch_size=1024, verbose=0)
    steps = OutputSteps.from_sidecar(trained_info, "the fold's model")
    return raw, steps.apply(raw, "the fold's model", split.W, split.G, irregular=split.I).final


def loro(prepared: dict[str, Prepared], cfg, test: str, seed: int, val_records: int = 2) -> dict[str, object]:
    """Train on every record but ``test`` (``val_records`` of them, drawn with ``seed``, for validation)
    and score ``test`` and its stress variants."""
    from heartbeat.train.stage import fit_stage

    others = [r for r in sorted(prepared) if r != test]
    val = set(held_out_records(others, val_records, [seed, int(test)]))
    train_parts = [prepared[r].split for r in others if r not in val]
    train_parts += [c for r in others if r not in val for c in prepared[r].augmented]
    tr = concat(train_parts)
    va = concat([prepared[r].split for r in sorted(val)])
    run_cfg = cfg.model_copy(update={"seed": seed})
    trained = fit_stage("train_resnet_mitbih", run_cfg, tr, va, len(MITBIH_CLASSES))
    out: dict[str, object] = {
        "val": sorted(val),
        "info": {k: trained.info.get(k) for k in ("temperature", "best_epoch")},
    }
    raw, proba = final_proba(trained.model, trained.info, prepared[test].split)
    out["y"] = prepared[test].split.y.tolist()
    out["pred"] = np.argmax(proba, axis=1).tolist()
    out["pred_alone"] = np.argmax(raw, axis=1).tolist()
    # The probabilities too (4 decimals), so that the report can combine models' runs.
    out["proba"] = np.round(proba, 4).tolist()
    out["proba_alone"] = np.round(raw, 4).tolist()
    out["stress"] = {}
    for ectopic, split in prepared[test].stress.items():
        _, p = final_proba(trained.model, trained.info, split)
        out["stress"][ectopic] = {
            "y": split.y.tolist(),
            "pred": np.argmax(p, axis=1).tolist(),
            "proba": np.round(p, 4).tolist(),
        }
    if prepared[test].scorings:
        out["scorings"] = {}
    for name, (split, times) in prepared[test].scorings.items():
        _, p = final_proba(trained.model, trained.info, split)
        out["scorings"][name] = {
            "pred": np.argmax(p, axis=1).tolist(),
            "proba": np.round(p, 4).tolist(),
            "irregular": split.I.tolist(),
            **({} if times is None else {"times": times.tolist()}),
        }
    return out


VARIANTS: dict[str, tuple[str, str, tuple[str, ...], dict]] = {
    # name: (title, reference method, training copies of each record (COPIES), config changes)
    "gbt": (
        "boosted trees on the 80 features (Shi et al. 2019's method)",
        "median",
        (),
        {"architecture": "gbt"},
    ),
    "gbt_rhythm": ("gbt, reference from the patient's own rhythm", "rhythm", (), {"architecture": "gbt"}),
    "gbt_random": (
        "gbt, + 2 random-reference copies of each training record",
        "median",
        ("random", "random"),
        {"architecture": "gbt"},
    ),
    "gbt_rhythm_random": (
        "gbt_rhythm + 2 random-reference copies",
        "rhythm",
        ("random", "random"),
        {"architecture": "gbt"},
    ),
    "gbt_window": (
        "gbt, + every 5th sample of the window",
        "median",
        (),
        {"architecture": "gbt", "trees": {"window_stride": 5}},
    ),
    "patient_net_trees": (
        "the network and the boosted trees, one model averaging them (with_trees: true)",
        "median",
        (),
        {"architecture": "patient_net", "with_trees": True},
    ),
    "lda": (
        "linear discriminants on the 80 features (de Chazal et al. 2004's method)",
        "median",
        (),
        {"architecture": "lda"},
    ),
    "lda_rhythm": ("lda, reference from the patient's own rhythm", "rhythm", (), {"architecture": "lda"}),
    "patient_net": ("the network for new patients", "median", (), {"architecture": "patient_net"}),
    "patient_net_rhythm": (
        "the network, reference from the patient's own rhythm",
        "rhythm",
        (),
        {"architecture": "patient_net"},
    ),
    "patient_net_rhythm_gate": (
        "patient_net_rhythm with the irregular-rhythm gate in the training stage's sidecar (as shipped)",
        "rhythm",
        (),
        {"architecture": "patient_net", "irregular_rhythm_gate": True},
    ),
    "patient_net_rhythm_ens3": (
        "patient_net_rhythm, an ensemble of 3 seeds (the fold's seed and the next two) averaged",
        "rhythm",
        (),
        {"architecture": "patient_net", "ensemble": 3},
    ),
    "patient_net_rhythm_irregular": (
        "patient_net_rhythm, + a copy of each training record with an atrial fibrillation rhythm",
        "rhythm",
        ("irregular",),
        {"architecture": "patient_net"},
    ),
    "gbt_rhythm_irregular": (
        "gbt_rhythm, + a copy of each training record with an atrial fibrillation rhythm",
        "rhythm",
        ("irregular",),
        {"architecture": "gbt"},
    ),
    "gbt_rhythm_median": (
        "gbt_rhythm, + a copy of each training record against all its beats",
        "rhythm",
        ("median",),
        {"architecture": "gbt"},
    ),
    "patient_net_rhythm_fusion": (
        "patient_net_rhythm, + fusion beats made from each training record's own N and V beats",
        "rhythm",
        ("fusion",),
        {"architecture": "patient_net"},
    ),
    "patient_net_rhythm_local": (
        "patient_net_rhythm, each 5 minutes of the record scaled to its QRS amplitude",
        "rhythm_local",
        (),
        {"architecture": "patient_net"},
    ),
    "patient_net_rhythm_median": (
        "patient_net_rhythm, + a copy of each training record against all its beats",
        "rhythm",
        ("median",),
        {"architecture": "patient_net"},
    ),
}


def shipped_config():
    """params.yaml's ``train_resnet_mitbih`` section, as the stage reads it."""
    from heartbeat.core.config import stage_params

    return stage_params("train_resnet_mitbih", str(ROOT / "params.yaml"))


def _counts(y: np.ndarray, pred: np.ndarray, c: int) -> tuple[int, int, int]:
    return (
        int(((pred == c) & (y == c)).sum()),
        int(((pred == c) & (y != c)).sum()),
        int(((pred != c) & (y == c)).sum()),
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def pooled(runs: list[dict], key: str = "pred") -> dict[str, float]:
    y = np.concatenate([r["y"] for r in runs])
    pred = np.concatenate([r[key] for r in runs])
    pc = per_class_metrics(y, pred, MITBIH_CLASSES)
    out = {"macro_f1_nsvf": float(np.mean([pc[c]["f1"] for c in "NSVF"]))}
    for c in "SVF":
        out[f"f1_{c}"], out[f"se_{c}"], out[f"p_{c}"] = (
            pc[c]["f1"],
            pc[c]["sensitivity"],
            pc[c]["positive_predictivity"],
        )
    return out


def _mean_std(values: list[float]) -> str:
    v = np.array(values, dtype=float)
    return f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def mean_run(runs: list[dict], calibrated_alone: bool = False) -> dict | None:
    """One record's runs combined into one: the mean of their final probabilities, beat by beat, on
    the record and on each stress variant (None when a run stored no probabilities). Each beat alone:
    the mean of the networks' own probabilities, or with ``calibrated_alone`` of each after its run's
    temperature (what a held-out-records ensemble gives before the smoothing)."""
    if any("proba" not in r for r in runs):
        return None

    def mean(get) -> np.ndarray:
        return np.mean([np.array(get(r)) for r in runs], axis=0)

    def alone(r: dict) -> np.ndarray:
        t = r["info"].get("temperature") if calibrated_alone else None
        return apply_temperature(np.array(r["proba_alone"]), t) if t else r["proba_alone"]

    proba = mean(lambda r: r["proba"])
    stress = {k: mean(lambda r, k=k: r["stress"][k]["proba"]) for k in runs[0]["stress"]}
    return {
        "y": runs[0]["y"],
        "pred": proba.argmax(axis=1).tolist(),
        "proba": proba,
        "pred_alone": mean(alone).argmax(axis=1).tolist(),
        "stress": {
            k: {"y": sa["y"], "pred": stress[k].argmax(axis=1).tolist(), "proba": stress[k]}
            for k, sa in runs[0]["stress"].items()
        },
    }


def blend(results: dict, a: str, b: str) -> dict:
    """The runs of ``a`` and ``b`` combined (:func:`mean_run`) for every seed and record both have
    (what averaging the two models' outputs would about give; an ensemble in the pipeline averages
    before the temperature and smoothing)."""
    out: dict = {}
    for seed, runs in results[a].items():
        for rec, ra in runs.items():
            rb = results[b].get(seed, {}).get(rec)
            combined = None if rb is None else mean_run([ra, rb])
            if combined is not None:
                out.setdefault(seed, {})[rec] = combined
    return out


def seed_mean(results: dict, model: str, seeds: list[int], calibrated_alone: bool = False) -> dict:
    """The runs of ``model``'s ``seeds`` combined as one run (seed ``"0"``, :func:`mean_run`) for every
    record all of them have. Each seed's network saw other validation records, so this is what an
    ensemble of networks trained on different records would about give, not ``ensemble: k`` (the
    same records, averaged before the temperature and smoothing)."""
    runs = [results[model].get(str(s), {}) for s in seeds]
    shared = set.intersection(*(set(r) for r in runs)) if runs else set()
    out: dict = {}
    for rec in sorted(shared):
        combined = mean_run([r[rec] for r in runs], calibrated_alone)
        if combined is not None:
            out.setdefault("0", {})[rec] = combined
    return out


def gate_flags(
    recs: dict[str, Record], qrs_method: str | None = None, mixes: dict[str, set[str]] | None = None
) -> dict[str, dict]:
    """Each record's beats to take S from, as :func:`featurise` keeps them: the irregular-rhythm
    flags, and with ``qrs_method`` (a reference method) also the beats whose QRS is unlike the
    patient's (:func:`heartbeat.signal.patient.unlike_qrs`, against that method's reference); for the
    record (``""``) and each stress mix (against the mix's reference, as the mix is scored). With
    ``mixes`` (:func:`stress_keys`), only the stress mixes each record's runs hold: featurising a mix
    costs seconds."""
    out = {}
    for name, rec in recs.items():
        rows = scored_rows(rec)
        irregular = irregular_beats(rec.peaks[rows]).astype(bool)
        keys = (STRESS_MIX, "1", "2") if mixes is None else sorted(mixes.get(name, ()))
        kept_of = {"": None} | {k: stress_mask(rec.labels, None if k == STRESS_MIX else int(k)) for k in keys}
        flags = {}
        for key, mix in kept_of.items():
            kept = slice(None) if mix is None else mix[rows]
            f = irregular[kept].copy()
            if qrs_method is not None:
                _, P, _, _ = featurise(rec, references(rec, qrs_method, mix), LOCAL_SECONDS.get(qrs_method))
                f |= unlike_qrs(P[kept])
            flags[key] = f
        out[name] = flags
    return out


def stress_keys(results: dict, models: list[str]) -> dict[str, set[str]]:
    """The stress mixes that the stored runs of ``models`` hold, by test record."""
    keys: dict[str, set[str]] = {}
    for model in models:
        for runs in results[model].values():
            for name, run in runs.items():
                keys.setdefault(name, set()).update(run.get("stress", {}))
    return keys


def gated(results: dict, model: str, flags: dict[str, dict]) -> dict:
    """The runs of ``model`` (stored, or combined: an ensemble's mean) with S taken from the beats in
    ``flags`` (:func:`gate_flags`), applied to their final probabilities (and their stress variants'):
    what ``irregular_rhythm_gate: true`` (and ``unlike_qrs_gate: true``) give, since the gates are the
    last steps. A run that had them already is unchanged: a gate takes S from beats that have none.
    Each beat alone is left out: the gates do not touch it."""
    out: dict = {}
    for seed, runs in results[model].items():
        for name, run in runs.items():
            if "proba" not in run:
                continue
            proba = gate_irregular(np.asarray(run["proba"]), flags[name][""])
            stress = {}
            for key, sa in run["stress"].items():
                p = gate_irregular(np.asarray(sa["proba"]), flags[name][key])
                stress[key] = {**sa, "pred": p.argmax(axis=1).tolist(), "proba": p}
            pred = proba.argmax(axis=1).tolist()
            gated_run = {
                k: v for k, v in run.items() if k != "pred_alone"
            }  # as before the gate: not shown twice
            out.setdefault(seed, {})[name] = {**gated_run, "pred": pred, "proba": proba, "stress": stress}
    return out


def held_out_ensembles(results: dict, model: str, members: int, seeds: list[int]) -> dict:
    """The runs of ``model`` combined as the pipeline's ``ensemble: members`` with ``ensemble_holdout``
    would give them, one ensemble per seed ``s`` in ``seeds`` (its members: the single runs with seeds
    ``s`` to ``s + members - 1``, :func:`seed_mean`). Each single run here trained on the other records
    but its own validation ones, fitted its temperature there and smoothed; the pipeline's member does
    the same, and folds that temperature into the network, and smoothing is linear in the
    probabilities, so the ensemble's output is the mean of these runs' final probabilities."""
    out: dict = {}
    for s in seeds:
        combined = seed_mean(results, model, list(range(s, s + members)), calibrated_alone=True)
        if combined:
            out[str(s)] = combined["0"]
    return out


def report(results: dict, models: list[str], seeds: list[int], minutes: dict[str, float]) -> str:
    lines = ["## Leave-one-record-out over DS1 (pooled over the 22 test records; mean ± std over seeds)", ""]
    lines.append("| model | macro-F1 NSVF | F1 S | F1 V | F1 F | Se / +P S | Se / +P V | seeds |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for model in models:
        for key, suffix in (("pred", ""), ("pred_alone", ", each beat alone")):
            per_seed = []
            for seed in seeds:
                done = results[model].get(str(seed), {})
                runs = [done[r] for r in sorted(done)]
                if len(runs) == len(minutes) and all(key in r for r in runs):
                    per_seed.append(pooled(runs, key))
            if not per_seed:
                continue
            col = {k: [p[k] for p in per_seed] for k in per_seed[0]}
            lines.append(
                f"| {model}{suffix} | {_mean_std(col['macro_f1_nsvf'])} | {_mean_std(col['f1_S'])} | "
                f"{_mean_std(col['f1_V'])} | {_mean_std(col['f1_F'])} | {np.mean(col['se_S']):.2f} / "
                f"{np.mean(col['p_S']):.2f} | {np.mean(col['se_V']):.2f} / {np.mean(col['p_V']):.2f} | {len(per_seed)} |"
            )
    lines += [
        "",
        "## Stress: ectopy-dominated variants (pooled over the S-rich or V-rich records; mean over seeds)",
        "",
        "Ectopic 2/3: N thinned until the ectopic beats of every class make 2/3 of the mix. S 2/3 "
        "(V 2/3): until the S (V) beats alone do, at least one N beat kept.",
        "",
    ]
    lines.append(
        "| model | ectopic 2/3, S-rich: S Se / +P | ectopic 2/3, V-rich: V Se / +P | S 2/3: S Se / +P | "
        "V 2/3: V Se / +P |"
    )
    lines.append("|---|---|---|---|---|")
    for model in models:
        cells = []
        for variant, cls in ((STRESS_MIX, 1), (STRESS_MIX, 2), ("1", 1), ("2", 2)):
            se, pp = [], []
            for seed in seeds:
                runs = results[model].get(str(seed), {})
                # a record is S-rich (V-rich) when it has the S 2/3 ("1") or V 2/3 ("2") variant
                # (runs of an older bench may lack a variant: its cell stays empty)
                chosen = [
                    r["stress"][variant]
                    for r in runs.values()
                    if str(cls) in r["stress"] and variant in r["stress"]
                ]
                if not chosen:
                    continue
                y = np.concatenate([np.array(c["y"]) for c in chosen])
                pred = np.concatenate([np.array(c["pred"]) for c in chosen])
                tp, fp, fn = _counts(y, pred, cls)
                se.append(_ratio(tp, tp + fn))
                pp.append(_ratio(tp, tp + fp))
            cells.append(f"{np.nanmean(se):.2f} / {np.nanmean(pp):.2f}" if se else "")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for model in models:
        lines += [
            "",
            f"### {model}: per record (mean over seeds; FA/h: beats of another class called it, per hour)",
            "",
        ]
        lines.append(
            "| record | beats | S | S Se | S +P | S FA/h | V | V Se | V +P | V FA/h | "
            "ectopic 2/3: S Se / +P | S 2/3: S Se / +P |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for rec in sorted(minutes):
            cols = {k: [] for k in ("sse", "sp", "sfa", "vse", "vp", "vfa", "mse", "mp", "tse", "tp")}
            y = None
            for seed in seeds:
                r = results[model].get(str(seed), {}).get(rec)
                if r is None:
                    continue
                y, pred = np.array(r["y"]), np.array(r["pred"])
                hours = minutes[rec] / 60
                for c, a, b, fa in ((1, "sse", "sp", "sfa"), (2, "vse", "vp", "vfa")):
                    tp, fp, fn = _counts(y, pred, c)
                    cols[a].append(_ratio(tp, tp + fn))
                    cols[b].append(_ratio(tp, tp + fp))
                    cols[fa].append(fp / hours)
                if "1" in r["stress"]:
                    for variant, a, b in ((STRESS_MIX, "mse", "mp"), ("1", "tse", "tp")):
                        if variant not in r["stress"]:
                            continue
                        sy, sp = np.array(r["stress"][variant]["y"]), np.array(r["stress"][variant]["pred"])
                        tp, fp, fn = _counts(sy, sp, 1)
                        cols[a].append(_ratio(tp, tp + fn))
                        cols[b].append(_ratio(tp, tp + fp))
            if y is None:
                continue

            def f(k: str, fmt: str = ".2f", cols: dict = cols) -> str:
                v = [x for x in cols[k] if np.isfinite(x)]
                return format(np.mean(v), fmt) if v else "–"

            stress = f"{f('mse')} / {f('mp')} | {f('tse')} / {f('tp')}" if cols["tse"] else " |"
            lines.append(
                f"| {rec} | {len(y)} | {(y == 1).sum()} | {f('sse')} | {f('sp')} | {f('sfa', '.1f')} | "
                f"{(y == 2).sum()} | {f('vse')} | {f('vp')} | {f('vfa', '.1f')} | {stress} |"
            )
    return "\n".join(lines) + "\n"


def _final(run: dict, gate: bool, flags: np.ndarray | None = None) -> np.ndarray:
    """A run's (or a scoring's) predicted classes, through the irregular-rhythm gate with ``gate``."""
    if not gate:
        return np.asarray(run["pred"])
    irregular = np.asarray(run["irregular"]) if flags is None else flags
    return gate_irregular(np.asarray(run["proba"]), irregular).argmax(axis=1)


def _ec57_figures(scores: list) -> dict[str, float]:
    """Pooled EC57 figures of records' :class:`heartbeat.evaluate.ec57.RecordScore`: per-class F1 over
    matched beats (and their macro over N, S, V, F), gross S and V Se / +P counting missed and false
    beats, QRS Se / +P."""
    from heartbeat.evaluate import ec57

    total = ec57.summarize(scores)
    f1 = {c: total.classes[c]["f1"] or 0.0 for c in "NSVF"}
    g = {k: v.value if v.value is not None else float("nan") for k, v in total.gross.items()}
    return {
        "macro_f1_nsvf": float(np.mean(list(f1.values()))),
        "f1_S": f1["S"],
        "f1_V": f1["V"],
        "se_S": g["sveb_se"],
        "p_S": g["sveb_pp"],
        "se_V": g["veb_se"],
        "p_V": g["veb_pp"],
        "qrs_se": g["qrs_se"],
        "qrs_p": g["qrs_pp"],
    }


def scorings_report(results: dict, model: str, seeds: list[int], recs: dict[str, Record], gate: bool) -> str:
    """The ``--scorings`` of ``model``'s runs beside the record's own scoring, by the same networks:
    pooled over the 22 records (mean ± std over the seeds that have every record), then per record
    where a scoring changed anything. EC57 counts for the detected R-peaks (and, to compare, for
    the annotated ones)."""
    from heartbeat.evaluate import ec57

    runs_of = {}
    for seed in seeds:
        runs = results.get(model, {}).get(str(seed), {})
        if all(name in runs and "scorings" in runs[name] for name in recs):
            runs_of[seed] = runs
    if not runs_of:
        return ""
    rows = {name: scored_rows(rec) for name, rec in recs.items()}
    flags = {name: irregular_beats(rec.peaks[rows[name]]).astype(np.int64) for name, rec in recs.items()}
    detectors = ("detected", "xqrs")
    table: dict[str, list[dict]] = {k: [] for k in ("annotated", "amplitude", "annotated, EC57", *detectors)}
    per_record: dict[str, dict[str, list[tuple]]] = {}
    for runs in runs_of.values():
        own, levelled, ec_own = [], [], []
        ec_found: dict[str, list] = {k: [] for k in detectors}
        for name, rec in sorted(recs.items()):
            r = runs[name]
            window = round(ec57.WINDOW_S * rec.fs)
            pred = _final(r, gate, flags[name])
            y = np.asarray(r["y"])
            own.append({"y": y, "pred": pred})
            amp = r["scorings"].get("amplitude")
            amp_pred = pred if amp is None else _final(amp, gate)
            levelled.append({"y": y, "pred": amp_pred})
            ec_own.append(ec57.score_record(name, rec.peaks, rec.labels, rec.peaks[rows[name]], pred, window))
            for kind in detectors:
                det = r["scorings"].get(kind)
                if det is None:
                    continue
                scored = ec57.score_record(
                    name, rec.peaks, rec.labels, det["times"], _final(det, gate), window
                )
                ec_found[kind].append(scored)
                per_record.setdefault(name, {}).setdefault(kind, []).append((ec_own[-1], scored))
            if amp is not None:
                per_record.setdefault(name, {}).setdefault("amplitude", []).append((y, pred, amp_pred))
        table["annotated"].append(pooled(own))
        table["amplitude"].append(pooled(levelled))
        table["annotated, EC57"].append(_ec57_figures(ec_own))
        for kind in detectors:
            if len(ec_found[kind]) == len(recs):
                table[kind].append(_ec57_figures(ec_found[kind]))
    title = {
        "annotated": "annotated R-peaks (the record's own scoring)",
        "amplitude": f"stretches levelled (amplitude off by more than {AMPLITUDE_TOLERANCE}x)",
        "annotated, EC57": "annotated R-peaks, EC57 (missed annotated beats count against Se)",
        "detected": "detected R-peaks as predict cuts them, EC57 (missed and false beats count)",
        "xqrs": "XQRS's R-peaks alone (without the wide beats it misses), EC57",
    }
    lines = [
        "",
        f"## {model}: the same networks, each test record cut other ways (seeds {' '.join(map(str, runs_of))}"
        f"{', through the irregular-rhythm gate' if gate else ''})",
        "",
        "| scoring | macro-F1 NSVF | F1 S | F1 V | Se / +P S | Se / +P V | QRS Se / +P |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, figures in table.items():
        if not figures:
            continue
        col = {k: [f[k] for f in figures] for k in figures[0]}
        qrs = f"{np.mean(col['qrs_se']):.4f} / {np.mean(col['qrs_p']):.4f}" if "qrs_se" in col else ""
        lines.append(
            f"| {title[key]} | {_mean_std(col['macro_f1_nsvf'])} | {_mean_std(col['f1_S'])} | "
            f"{_mean_std(col['f1_V'])} | {np.mean(col['se_S']):.2f} / {np.mean(col['p_S']):.2f} | "
            f"{np.mean(col['se_V']):.2f} / {np.mean(col['p_V']):.2f} | {qrs} |"
        )
    lines += [
        "",
        "Per record, where a scoring changed the classes (mean over seeds; FA/h: beats of another class "
        "called S or V, per hour; EC57 counts false detections called S or V among them):",
        "",
        "| record | scoring | S Se: own → other | S FA/h: own → other | V Se: own → other | V FA/h: own → other |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(per_record):
        hours = recs[name].minutes / 60
        for kind, pairs in sorted(per_record[name].items()):
            cells = {k: ([], []) for k in ("sse", "sfa", "vse", "vfa")}
            for pair in pairs:
                if kind == "amplitude":
                    y, a, b = pair
                    if np.array_equal(a, b):
                        continue
                    for which, pred in enumerate((a, b)):
                        for c, se, fa in ((1, "sse", "sfa"), (2, "vse", "vfa")):
                            tp, fp, fn = _counts(y, pred, c)
                            cells[se][which].append(_ratio(tp, tp + fn))
                            cells[fa][which].append(fp / hours)
                else:
                    for which, score in enumerate(pair):
                        st = score.stats
                        cells["sse"][which].append(
                            st["sveb_se"].value if st["sveb_se"].value is not None else np.nan
                        )
                        cells["vse"][which].append(
                            st["veb_se"].value if st["veb_se"].value is not None else np.nan
                        )
                        m = score.matrix
                        cells["sfa"][which].append(int(m[[0, 2, 3, 5], 1].sum()) / hours)
                        cells["vfa"][which].append(int(m[[0, 1, 5], 2].sum()) / hours)
            if not cells["sse"][0]:
                continue

            def f(k: str, which: int, fmt: str = ".2f", cells: dict = cells) -> str:
                v = [x for x in cells[k][which] if np.isfinite(x)]
                return format(np.mean(v), fmt) if v else "–"

            lines.append(
                f"| {name} | {kind} | {f('sse', 0)} → {f('sse', 1)} | {f('sfa', 0, '.1f')} → {f('sfa', 1, '.1f')} | "
                f"{f('vse', 0)} → {f('vse', 1)} | {f('vfa', 0, '.1f')} → {f('vfa', 1, '.1f')} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--models", nargs="+", default=["gbt", "lda"], choices=sorted(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--records",
        nargs="+",
        default=None,
        help="test only these DS1 records (default: all 22); the --scorings tables pool these alone",
    )
    ap.add_argument("--rich", type=int, default=50, help="ectopic beats a record needs for a stress variant")
    ap.add_argument("--epochs", type=int, default=None, help="cap the network's epochs (bench budget)")
    ap.add_argument(
        "--results",
        type=Path,
        default=ROOT / "bench" / "results" / "new_patients",
        help="folder of finished runs, one JSON file per model: a rerun resumes, and runs of several "
        "processes (one per model) add up",
    )
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--blend",
        nargs="+",
        default=[],
        metavar="A+B",
        help="also report the mean of two models' stored probabilities (runs with probabilities only)",
    )
    ap.add_argument(
        "--seed-mean",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="also report the mean of a model's seeds' stored probabilities, as one run",
    )
    ap.add_argument(
        "--held-out-ensembles",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="also report MODEL's runs as ensembles of --members held-out-records members (the "
        "pipeline's ensemble_holdout): --seeds taken --members at a time, each group one ensemble",
    )
    ap.add_argument("--members", type=int, default=3, help="members of each --held-out-ensembles ensemble")
    ap.add_argument(
        "--irregular-gate",
        action="store_true",
        help="also report every model above (and every blend and ensemble) through the irregular-rhythm "
        "gate, applied to its stored final probabilities (irregular_rhythm_gate: true; runs that had it "
        "already are unchanged)",
    )
    ap.add_argument(
        "--qrs-gate",
        default=None,
        choices=("median", "rhythm"),
        metavar="REFERENCE",
        help="also report every model above through both gates, irregular rhythm and QRS "
        "(unlike_qrs_gate: true), the QRS against the patient's REFERENCE beats (the models' reference "
        "method: rhythm for the shipped recipe)",
    )
    ap.add_argument(
        "--scorings",
        nargs="*",
        default=[],
        choices=SCORINGS,
        help="also score each test record cut these other ways by the same trained network (SCORINGS), "
        "and report them beside the record's own scoring",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the report here (Markdown)")
    ap.add_argument(
        "--amplitudes",
        action="store_true",
        help="only print each record's QRS amplitude by stretches (LOCAL_SECONDS) against the whole "
        "record's, by the reference beats of the patient's own rhythm; no training",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("heartbeat").setLevel(logging.WARNING)

    results = {}
    for model in args.models:
        path = args.results / f"{model}.json"
        results[model] = json.loads(path.read_text()) if path.is_file() else {}
    names = list(DS1_RECORDS)
    recs = {r.name: r for r in load_records(args.mirror, names)}
    minutes = {n: recs[n].minutes for n in names}
    if args.amplitudes:
        for name in names:
            print(name, " ".join(f"{r:.2f}" for r in stretch_amplitudes(recs[name])))
        return
    if not args.report_only:
        base = shipped_config()
        prepared: dict[tuple[str, int, int], dict[str, Prepared]] = {}
        for model in args.models:
            _, method, copies, changes = VARIANTS[model]
            # Every variant was measured before the gates shipped and leaves them out, so its rows
            # stay what they were; --irregular-gate and --qrs-gate (or patient_net_rhythm_gate) add them.
            update = {"irregular_rhythm_gate": False, "unlike_qrs_gate": False, **changes}
            if args.epochs and update.get("architecture") == "patient_net":
                update["epochs"] = min(base.epochs, args.epochs)
            merged = base.model_dump()
            for k, v in update.items():
                merged[k] = {**merged[k], **v} if isinstance(v, dict) else v
            cfg = type(base).model_validate(merged)
            for seed in args.seeds:
                key = (method, copies, seed if {"random", "irregular", "fusion"} & set(copies) else 0)
                if key not in prepared:
                    prepared[key] = {
                        n: prepare(recs[n], method, copies, args.rich, seed, tuple(args.scorings))
                        for n in names
                    }
                done = results[model].setdefault(str(seed), {})
                for test in args.records or names:
                    if test in done:
                        continue
                    t0 = time.perf_counter()
                    done[test] = loro(prepared[key], cfg, test, seed)
                    log.info("%s seed %d: record %s (%.0f s)", model, seed, test, time.perf_counter() - t0)
                    args.results.mkdir(parents=True, exist_ok=True)
                    tmp = args.results / f".{model}.json.tmp"
                    tmp.write_text(json.dumps(results[model]))
                    tmp.replace(args.results / f"{model}.json")
    shown = [m for m in args.models if results[m]]
    for pair in args.blend:
        a, b = pair.split("+")
        for name in (a, b):
            if name not in results:
                path = args.results / f"{name}.json"
                results[name] = json.loads(path.read_text()) if path.is_file() else {}
        results[pair] = blend(results, a, b)
        shown.append(pair)
    for model in args.seed_mean:
        name = f"{model}, mean of seeds {' '.join(map(str, args.seeds))}"
        results[name] = seed_mean(results, model, args.seeds)
        shown.append(name)
    for model in args.held_out_ensembles:
        starts = args.seeds[:: args.members]
        name = f"{model}, ensembles of {args.members} (ensemble_holdout), seeds {' '.join(map(str, starts))}"
        results[name] = held_out_ensembles(results, model, args.members, starts)
        shown.append(name)
    gates = {}
    ungated = list(shown)
    if args.irregular_gate:
        gates["irregular-rhythm gate"] = gate_flags(recs)
    if args.qrs_gate:
        gates["irregular-rhythm and QRS gates"] = gate_flags(
            recs, args.qrs_gate, stress_keys(results, ungated)
        )
    for label, flags in gates.items():
        for name in ungated:
            results[f"{name}, + {label}"] = gated(results, name, flags)
            shown.append(f"{name}, + {label}")
    text = report(results, shown, args.seeds, minutes)
    scored = {n: recs[n] for n in args.records or names}  # --records: the scorings over those alone
    for model in args.models:
        text += scorings_report(results, model, args.seeds, scored, args.irregular_gate)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
