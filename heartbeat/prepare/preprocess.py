"""The preprocess stage's logic: raw beats in, train/val/test splits out.

MIT-BIH keeps the Kaggle train/test files (``split: beat``) and carves a
stratified validation set out of train. PTB ships as two files by class, so
it gets the paper's stratified 80/20 split, then validation from train.
``split: patient`` instead regroups the beats by record (MIT-BIH, de Chazal's
DS1/DS2 lists) or patient (PTB) using the provenance of the physionet or demo source, so
no patient is on both sides.

When the source knows R-peak times (physionet and demo: the ``rr_*`` columns of
``provenance.parquet``), every split also carries its rhythm features ``R``
(heartbeat/signal/context.py), written as ``R_<split>.npy``; the Kaggle CSVs have none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from heartbeat.core.beatcsv import Beats
from heartbeat.core.beats import DATASET_CLASSES
from heartbeat.core.config import PreprocessConfig
from heartbeat.core.errors import DataError
from heartbeat.core.splits import grouped_split, stratified_split
from heartbeat.prepare.arrays import Split
from heartbeat.prepare.augment import augment_minority_rows, oversample_index
from heartbeat.signal.context import RR_COLUMNS, context_matrix


@dataclass(frozen=True)
class Prepared:
    mitbih: dict[str, Split]
    ptb: dict[str, Split]
    groups: dict[str, dict[str, list[str]]] | None = None
    """For ``split: patient``: the records (MIT-BIH) and patients (PTB) in each split."""


def _members(ids: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, list[str]]:
    return {name: sorted(set(ids[idx].tolist())) for name, idx in parts.items()}


def _take(X: np.ndarray, y: np.ndarray, idx: np.ndarray, R: np.ndarray | None = None) -> Split:
    return Split(X=X[idx], y=y[idx], R=None if R is None else R[idx])


def _rebalance_train(train: Split, cfg: PreprocessConfig) -> Split:
    X, y = train.X, train.y
    a = cfg.augment
    X, y, origin = augment_minority_rows(X, y, a.copies, a.amplitude, a.stretch, cfg.seed)
    if cfg.rebalance == "oversample":
        idx = oversample_index(y, cfg.seed)
        X, y, origin = X[idx], y[idx], origin[idx]
    return Split(X=X, y=y, R=None if train.R is None else train.R[origin])


def context_of_files(prov: pd.DataFrame | None, files: tuple[str, ...], X: np.ndarray) -> np.ndarray | None:
    """The context features (heartbeat/signal/context.py: R-R, then against the record's median beat) of the
    rows of ``files``, whose beats are ``X``; None when the source has no R-peak times.

    Every beat of a record counts towards its median beat, from whichever file: it needs no label.
    """
    if prov is None or not set(RR_COLUMNS) <= set(prov.columns):
        return None
    rows = pd.concat([prov[prov["file"] == name].sort_values("row") for name in files])
    if len(rows) != len(X):
        raise DataError(
            f"provenance.parquet: {len(rows)} rows for {', '.join(files)}, but the CSVs hold {len(X)}; refetch"
        )
    groups = (
        rows["record"].astype(str).to_numpy() if "record" in rows.columns else np.zeros(len(rows), np.int8)
    )
    if "database" in rows.columns:
        groups = rows["database"].astype(str).to_numpy() + "/" + groups.astype(str)
    return context_matrix(rows, X, groups)


def _beat_split(raw: dict[str, Beats], cfg: PreprocessConfig, prov: pd.DataFrame | None = None) -> Prepared:
    tr, te = raw["mitbih_train.csv"], raw["mitbih_test.csv"]
    mit_files = ("mitbih_train.csv", "mitbih_test.csv")
    R = None if prov is None else context_of_files(prov, mit_files, np.concatenate([tr.X, te.X]))
    R_tr, R_te = (None, None) if R is None else (R[: len(tr.y)], R[len(tr.y) :])
    keep, val = stratified_split(tr.y, cfg.val_fraction, cfg.seed, "mitbih_train.csv")
    mitbih = {
        "train": _take(tr.X, tr.y, keep, R_tr),
        "val": _take(tr.X, tr.y, val, R_tr),
        "test": Split(te.X, te.y, R_te),
    }
    ptb_files = ("ptbdb_normal.csv", "ptbdb_abnormal.csv")
    X = np.concatenate([raw[f].X for f in ptb_files])
    y = np.concatenate([raw[f].y for f in ptb_files])
    R = context_of_files(prov, ptb_files, X)
    rest, test = stratified_split(y, cfg.ptb_test_fraction, cfg.seed, "PTB")
    keep, val = stratified_split(y[rest], cfg.val_fraction, cfg.seed, "PTB train split")
    ptb = {
        "train": _take(X, y, rest[keep], R),
        "val": _take(X, y, rest[val], R),
        "test": _take(X, y, test, R),
    }
    return Prepared(mitbih=mitbih, ptb=ptb)


def _provenance_column(prov: pd.DataFrame, files: tuple[str, ...], column: str) -> np.ndarray:
    """The provenance ``column`` for the rows of ``files``, concatenated in file order."""
    parts = []
    for name in files:
        rows = prov[prov["file"] == name].sort_values("row")
        parts.append(rows[column].astype(str).to_numpy())
    return np.concatenate(parts)


def _patient_split(raw: dict[str, Beats], prov: pd.DataFrame | None, cfg: PreprocessConfig) -> Prepared:
    if prov is None:
        raise DataError(
            "preprocess.split: 'patient' needs record and patient IDs, which the physionet and demo sources "
            "provide (the Kaggle CSVs have none); use -S data.source=physionet or split: beat"
        )
    mit_files = ("mitbih_train.csv", "mitbih_test.csv")
    X = np.concatenate([raw[f].X for f in mit_files])
    y = np.concatenate([raw[f].y for f in mit_files])
    records = _provenance_column(prov, mit_files, "record")
    if len(records) != len(y):
        raise DataError(
            f"provenance.parquet: {len(records)} MIT-BIH rows, but the CSVs hold {len(y)}; refetch"
        )
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
    R = context_of_files(prov, mit_files, X)
    keep, val = grouped_split(y[tr_idx], records[tr_idx], cfg.val_fraction, cfg.seed, "MIT-BIH train records")
    mitbih = {
        "train": _take(X, y, tr_idx[keep], R),
        "val": _take(X, y, tr_idx[val], R),
        "test": _take(X, y, te_idx, R),
    }
    ptb_files = ("ptbdb_normal.csv", "ptbdb_abnormal.csv")
    Xp = np.concatenate([raw[f].X for f in ptb_files])
    yp = np.concatenate([raw[f].y for f in ptb_files])
    Rp = context_of_files(prov, ptb_files, Xp)
    patients = _provenance_column(prov, ptb_files, "patient")
    rest, test = grouped_split(yp, patients, cfg.ptb_test_fraction, cfg.seed, "PTB patients")
    p_keep, p_val = grouped_split(yp[rest], patients[rest], cfg.val_fraction, cfg.seed, "PTB train patients")
    ptb = {
        "train": _take(Xp, yp, rest[p_keep], Rp),
        "val": _take(Xp, yp, rest[p_val], Rp),
        "test": _take(Xp, yp, test, Rp),
    }
    groups = {
        "mitbih": _members(records, {"train": tr_idx[keep], "val": tr_idx[val], "test": te_idx}),
        "ptb": _members(patients, {"train": rest[p_keep], "val": rest[p_val], "test": test}),
    }
    return Prepared(mitbih=mitbih, ptb=ptb, groups=groups)


def prepare(raw: dict[str, Beats], cfg: PreprocessConfig, provenance: pd.DataFrame | None = None) -> Prepared:
    """Build the splits of both datasets, then rebalance/augment the MIT-BIH training split."""
    if cfg.split == "patient":
        prepared = _patient_split(raw, provenance, cfg)
    else:
        prepared = _beat_split(raw, cfg, provenance)
    mitbih = dict(prepared.mitbih)
    mitbih["train"] = _rebalance_train(mitbih["train"], cfg)
    return Prepared(mitbih=mitbih, ptb=prepared.ptb, groups=prepared.groups)


def class_counts(prepared: Prepared) -> dict[str, dict[str, dict[str, int]]]:
    """Beats per class name in every split, for ``data/prepared/counts.json``."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for dataset, splits in (("mitbih", prepared.mitbih), ("ptb", prepared.ptb)):
        names = DATASET_CLASSES[dataset]
        out[dataset] = {
            split: {names[c]: int(np.sum(s.y == c)) for c in range(len(names))} for split, s in splits.items()
        }
    return out
