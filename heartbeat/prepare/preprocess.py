"""The preprocess stage's logic: raw beats in, train/val/test splits out.

MIT-BIH keeps the Kaggle train/test files (``split: beat``) and carves a
stratified validation set out of train. PTB ships as two files by class, so
it gets the paper's stratified 80/20 split, then validation from train.
``split: patient`` instead regroups the beats by record (MIT-BIH, de Chazal's
DS1/DS2 lists) or patient (PTB) using the provenance of the physionet or demo source, so
no patient is on both sides.

When the source knows R-peak times (physionet and demo: the ``rr_*`` columns of
``provenance.parquet``), every split also carries its rhythm features ``R``
(heartbeat/signal/context.py), written as ``R_<split>.npy``, and which of its beats are in an
irregularly irregular stretch of their recording ``I`` (heartbeat/signal/irregular.py), written as
``I_<split>.npy``; the Kaggle CSVs have neither.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from heartbeat.core.beat_spec import DATASET_CLASSES
from heartbeat.core.beatcsv import Beats
from heartbeat.core.config import PreprocessConfig
from heartbeat.core.errors import DataError
from heartbeat.core.splits import grouped_split, stratified_split
from heartbeat.prepare.arrays import Split
from heartbeat.prepare.augment import augment_minority_rows, oversample_index
from heartbeat.signal.context import RR_COLUMNS, context_matrix
from heartbeat.signal.irregular import irregular_beats
from heartbeat.signal.patient import PATIENT_COLUMNS


@dataclass(frozen=True)
class Prepared:
    mitbih: dict[str, Split]
    ptb: dict[str, Split]
    groups: dict[str, dict[str, list[str]]] | None = None
    """For ``split: patient``: the records (MIT-BIH) and patients (PTB) in each split."""


def _members(ids: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, list[str]]:
    return {name: sorted(set(ids[idx].tolist())) for name, idx in parts.items()}


def _rebalance_train(train: Split, cfg: PreprocessConfig) -> Split:
    a = cfg.augment
    X, y, origin = augment_minority_rows(train.X, train.y, a.copies, a.amplitude, a.stretch, cfg.seed)
    if cfg.rebalance == "oversample":
        idx = oversample_index(y, cfg.seed)
        X, y, origin = X[idx], y[idx], origin[idx]
    # An augmented copy keeps the side data of the beat it was made from.
    return dataclasses.replace(train.take(origin), X=X, y=y)


def _rows(prov: pd.DataFrame, files: tuple[str, ...], n: int) -> pd.DataFrame:
    """The provenance rows of ``files``, in file then row order (the order of the CSVs' beats)."""
    rows = pd.concat([prov[prov["file"] == name].sort_values("row") for name in files])
    if len(rows) != n:
        raise DataError(
            f"provenance.parquet: {len(rows)} rows for {', '.join(files)}, but the CSVs hold {n}; refetch"
        )
    return rows


def context_of_files(prov: pd.DataFrame | None, files: tuple[str, ...], X: np.ndarray) -> np.ndarray | None:
    """The context features (heartbeat/signal/context.py: R-R, then against the record's median beat) of the
    rows of ``files``, whose beats are ``X``; None when the source has no R-peak times.

    Every beat of a record counts towards its median beat, from whichever file: it needs no label.
    """
    if prov is None or not set(RR_COLUMNS) <= set(prov.columns):
        return None
    rows = _rows(prov, files, len(X))
    return context_matrix(rows, X, _record_names(rows))


def irregular_of_files(prov: pd.DataFrame | None, files: tuple[str, ...], n: int) -> np.ndarray | None:
    """Whether each row of ``files`` is in an irregularly irregular stretch of its recording
    (:func:`heartbeat.signal.irregular.irregular_beats`, as ``heartbeat predict`` finds them), as 0 or
    1; None when the source gives no R-peak times.

    Every beat of a record counts, from whichever file: the rhythm is the recording's, not the split's.
    """
    if prov is None or not {"record", "sample"} <= set(prov.columns):
        return None
    flags = np.zeros(len(prov), dtype=np.int64)
    for _, beats in prov.groupby(_record_names(prov), sort=False):
        beats = beats.sort_values("sample")
        flags[beats.index.to_numpy()] = irregular_beats(beats["sample"].to_numpy())
    return flags[_rows(prov, files, n).index.to_numpy()]


def _record_names(rows: pd.DataFrame) -> np.ndarray:
    """Each row's record as ``database/record`` (a record's name alone may recur across databases)."""
    names = rows["record"].astype(str).to_numpy() if "record" in rows.columns else np.full(len(rows), "")
    if "database" in rows.columns:
        names = rows["database"].astype(str).to_numpy() + "/" + names
    return names


def record_index(prov: pd.DataFrame | None, files: tuple[str, ...], n: int) -> np.ndarray | None:
    """The record of each row of ``files`` as an index into their sorted records; None when the source
    names no records (the Kaggle CSVs)."""
    if prov is None or "record" not in prov.columns:
        return None
    names = _record_names(_rows(prov, files, n))
    return np.unique(names, return_inverse=True)[1].astype(np.int64)


def patient_of_files(
    prov: pd.DataFrame | None, windows: np.ndarray | None, files: tuple[str, ...], n: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The windows and patient features (heartbeat/signal/patient.py) of the rows of ``files``, which the
    source computed record by record: ``windows`` holds one window per provenance row, the patient
    features are provenance columns. (None, None) when the source has none."""
    if prov is None or windows is None or not set(PATIENT_COLUMNS) <= set(prov.columns):
        return None, None
    if len(windows) != len(prov):
        raise DataError(f"windows.npy: {len(windows)} windows for {len(prov)} provenance rows; refetch")
    rows = _rows(prov, files, n)
    W = np.asarray(windows)[rows.index.to_numpy()]
    return W, rows[list(PATIENT_COLUMNS)].to_numpy(dtype=np.float32)


def _files(
    raw: dict[str, Beats], files: tuple[str, ...], prov: pd.DataFrame | None, windows: np.ndarray | None
) -> Split:
    """Every beat of ``files`` in file order, with whatever side data the source gave."""
    X = np.concatenate([raw[f].X for f in files])
    y = np.concatenate([raw[f].y for f in files])
    W, P = patient_of_files(prov, windows, files, len(y))
    return Split(
        X=X,
        y=y,
        R=context_of_files(prov, files, X),
        W=W,
        P=P,
        G=record_index(prov, files, len(y)),
        I=irregular_of_files(prov, files, len(y)),
    )


MITBIH_FILES = ("mitbih_train.csv", "mitbih_test.csv")
PTB_FILES = ("ptbdb_normal.csv", "ptbdb_abnormal.csv")


def _beat_split(
    raw: dict[str, Beats], cfg: PreprocessConfig, prov: pd.DataFrame | None, windows: np.ndarray | None
) -> Prepared:
    mit = _files(raw, MITBIH_FILES, prov, windows)
    n_train = len(raw["mitbih_train.csv"].y)
    keep, val = stratified_split(mit.y[:n_train], cfg.val_fraction, cfg.seed, "mitbih_train.csv")
    mitbih = {"train": mit.take(keep), "val": mit.take(val), "test": mit.take(np.arange(n_train, len(mit.y)))}
    ptb_all = _files(raw, PTB_FILES, prov, windows)
    rest, test = stratified_split(ptb_all.y, cfg.ptb_test_fraction, cfg.seed, "PTB")
    keep, val = stratified_split(ptb_all.y[rest], cfg.val_fraction, cfg.seed, "PTB train split")
    ptb = {"train": ptb_all.take(rest[keep]), "val": ptb_all.take(rest[val]), "test": ptb_all.take(test)}
    return Prepared(mitbih=mitbih, ptb=ptb)


def _provenance_column(prov: pd.DataFrame, files: tuple[str, ...], column: str) -> np.ndarray:
    """The provenance ``column`` for the rows of ``files``, concatenated in file order."""
    parts = []
    for name in files:
        rows = prov[prov["file"] == name].sort_values("row")
        parts.append(rows[column].astype(str).to_numpy())
    return np.concatenate(parts)


def _patient_split(
    raw: dict[str, Beats], prov: pd.DataFrame | None, cfg: PreprocessConfig, windows: np.ndarray | None
) -> Prepared:
    if prov is None:
        raise DataError(
            "preprocess.split: 'patient' needs record and patient IDs, which only the physionet and demo "
            "sources provide (the Kaggle CSVs have none); use -S data.source=physionet or split: beat"
        )
    mit = _files(raw, MITBIH_FILES, prov, windows)
    records = _provenance_column(prov, MITBIH_FILES, "record")
    p = cfg.patient
    excluded = np.isin(records, p.exclude_records)
    train_mask = np.isin(records, p.mitbih_train_records) & ~excluded
    test_mask = np.isin(records, p.mitbih_test_records) & ~excluded
    if not test_mask.any() or not train_mask.any():
        side = "mitbih_test_records" if not test_mask.any() else "mitbih_train_records"
        have = ", ".join(sorted(set(records)))
        raise DataError(
            f"preprocess.patient.{side}: none of these records is in the data (records present: {have}); "
            "list records you have"
        )
    tr_idx, te_idx = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    keep, val = grouped_split(
        mit.y[tr_idx], records[tr_idx], cfg.val_fraction, cfg.seed, "MIT-BIH train records"
    )
    mitbih = {"train": mit.take(tr_idx[keep]), "val": mit.take(tr_idx[val]), "test": mit.take(te_idx)}
    ptb_all = _files(raw, PTB_FILES, prov, windows)
    patients = _provenance_column(prov, PTB_FILES, "patient")
    rest, test = grouped_split(ptb_all.y, patients, cfg.ptb_test_fraction, cfg.seed, "PTB patients")
    p_keep, p_val = grouped_split(
        ptb_all.y[rest], patients[rest], cfg.val_fraction, cfg.seed, "PTB train patients"
    )
    ptb = {"train": ptb_all.take(rest[p_keep]), "val": ptb_all.take(rest[p_val]), "test": ptb_all.take(test)}
    groups = {
        "mitbih": _members(records, {"train": tr_idx[keep], "val": tr_idx[val], "test": te_idx}),
        "ptb": _members(patients, {"train": rest[p_keep], "val": rest[p_val], "test": test}),
    }
    return Prepared(mitbih=mitbih, ptb=ptb, groups=groups)


def prepare(
    raw: dict[str, Beats],
    cfg: PreprocessConfig,
    provenance: pd.DataFrame | None = None,
    windows: np.ndarray | None = None,
) -> Prepared:
    """Build the splits of both datasets, then rebalance/augment the MIT-BIH training split.

    ``provenance`` and ``windows`` are what a source that cuts beats from records writes beside the
    CSVs (provenance.parquet, windows.npy); without them the splits hold beats only.
    """
    if cfg.split == "patient":
        prepared = _patient_split(raw, provenance, cfg, windows)
    else:
        prepared = _beat_split(raw, cfg, provenance, windows)
    mitbih = dict(prepared.mitbih)
    mitbih["train"] = _rebalance_train(mitbih["train"], cfg)
    return Prepared(mitbih=mitbih, ptb=prepared.ptb, groups=prepared.groups)


def records_of(provenance: pd.DataFrame | None) -> dict[str, list[str]] | None:
    """The records the beats came from, per dataset (mitbih, ptb), or None for a source without records."""
    if provenance is None or "record" not in provenance.columns:
        return None
    names = {"mitdb": "mitbih", "ptbdb": "ptb"}
    out: dict[str, list[str]] = {}
    for database, rows in provenance.groupby("database"):
        out[names.get(str(database), str(database))] = sorted(set(rows["record"].astype(str)))
    return out


def prepared_info(
    source: str | None,
    synthetic: bool,
    split: str,
    groups: dict | None = None,
    records: dict[str, list[str]] | None = None,
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> dict:
    """What ``data/prepared/info.json`` holds: where the beats came from (``source``, whether they
    are ``synthetic``), the ``split``, the records or patients per split (``groups``, patient split)
    and every record per dataset, which beats the patient features took as each recording's
    ``reference`` and over how long a stretch its amplitude (``amplitude_stretch_s``); the training
    stages copy both into each model's sidecar."""
    return {
        "source": source,
        "synthetic": bool(synthetic),
        "reference": reference,
        "amplitude_stretch_s": amplitude_stretch_s,
        "split": split,
        "groups": groups,
        "records": records,
    }


def class_counts(prepared: Prepared) -> dict[str, dict[str, dict[str, int]]]:
    """Beats per class name in every split, for ``data/prepared/counts.json``."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for dataset, splits in (("mitbih", prepared.mitbih), ("ptb", prepared.ptb)):
        names = DATASET_CLASSES[dataset]
        out[dataset] = {
            split: {names[c]: int(np.sum(s.y == c)) for c in range(len(names))} for split, s in splits.items()
        }
    return out
