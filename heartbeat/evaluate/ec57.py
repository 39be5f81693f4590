"""Beat-by-beat scoring of a beat classifier the way ANSI/AAMI EC57 defines it (WFDB's ``bxb`` and
``sumstats``): pure functions, arrays in, dataclasses out.

Matching. A reference beat and a test beat match when they lie within the match window (150 ms)
of each other. The two annotation lists are walked in time order, as ``bxb`` does: the earlier of
the current reference and test beats is paired with the other one when that one is inside the
window and nearer to it than the next beat of its own list; otherwise the earlier beat stays
unmatched. Each beat is matched at most once.

The confusion matrix has rows for the reference classes N S V F Q plus O (a test beat with no
reference beat: a false QRS detection), and columns for the test classes n s v f q plus o (a
reference beat with no test beat: a missed QRS). ``bxb``'s X row and column (beats inside a
shutdown period) do not arise: neither the references nor ``heartbeat predict`` mark shutdown.

Statistics, with ``Ab`` the number of reference-class ``A`` beats that the test called ``b``:

* QRS Se = matched / (matched + o column); QRS +P = matched / (matched + O row).
* VEB Se = Vv / (Vn + Vs + Vv + Vf + Vq + Vo); VEB +P = Vv / (Vv + Nv + Sv + Ov): a fusion (F) or
  unclassifiable (Q) beat called V is not held against the test. VEB FPR = (Nv + Sv + Ov) /
  (that + the true negatives: every beat of rows N S F Q O in columns n s f q).
* SVEB Se = Ss / (Sn + Ss + Sv + Sf + Sq + So); SVEB +P = Ss / (Ss + Ns + Vs + Fs + Os), as ``bxb``
  prints per record (``sumstats`` leaves Fs out of its gross SVEB +P). SVEB FPR is defined as
  the VEB one with S in place of V: (Ns + Vs + Fs + Os) / (that + every beat of rows N V F Q O in
  columns n v f q); ``bxb`` does not print it.
* Gross statistics apply these formulas to the matrix summed over records; record averages are
  the mean of a statistic over the records where its denominator is not zero (``sumstats``).
* Per-class Se, +P and F1 count matched beats only (the 5 x 5 block): they score the classifier
  apart from the detector, whose misses and false beats QRS Se and +P score.

``bxb`` skips the first 5 minutes of each record (EC57's learning period); :func:`score_record`
takes ``start`` for that and defaults to 0, scoring every beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
"""The AAMI classes, in label order 0..4 (heartbeat/core/beat_spec.py)."""

ROWS: tuple[str, ...] = (*CLASSES, "O")
"""Rows of the confusion matrix: the reference class, or O for a test beat with no reference beat."""

COLS: tuple[str, ...] = (*(c.lower() for c in CLASSES), "o")
"""Columns: the test class, or o for a reference beat with no test beat."""

UNMATCHED = len(CLASSES)
"""Index of the O row and the o column."""

WINDOW_S = 0.15
"""The EC57 match window in seconds."""

LEARNING_PERIOD_S = 300.0
"""EC57's learning period, which ``bxb`` leaves out by default (``--start 300`` does the same)."""

N, S, V, F, Q = range(5)


@dataclass(frozen=True)
class Ratio:
    """A statistic as the counts it comes from; ``value`` is None when the denominator is 0."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict:
        return {"value": self.value, "numerator": self.numerator, "denominator": self.denominator}


STATISTICS: tuple[str, ...] = (
    "qrs_se",
    "qrs_pp",
    "veb_se",
    "veb_pp",
    "veb_fpr",
    "sveb_se",
    "sveb_pp",
    "sveb_fpr",
)
"""The EC57 statistics, in report order (``pp``: positive predictivity, +P)."""


def match_beats(ref: np.ndarray, test: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair reference and test beat times (sorted integers, same unit) as ``bxb`` does.

    Returns ``(ref_of_test, test_of_ref)``: for each test beat the index of its reference beat or
    -1, and for each reference beat the index of its test beat or -1.
    """
    ref = np.asarray(ref, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    for name, times in (("reference", ref), ("test", test)):
        if times.size > 1 and np.any(np.diff(times) < 0):
            raise ValueError(f"{name} beat times must be sorted")
    ref_of_test = np.full(test.size, -1, dtype=np.int64)
    test_of_ref = np.full(ref.size, -1, dtype=np.int64)
    far = np.iinfo(np.int64).max // 4

    def at(times: np.ndarray, k: int) -> int:
        return int(times[k]) if k < times.size else far

    i = j = 0
    while i < ref.size or j < test.size:
        big_t, small_t = at(ref, i), at(test, j)
        if small_t < big_t:  # the test beat comes first: does it belong to this reference beat?
            if big_t - small_t <= window and big_t - small_t < abs(big_t - at(test, j + 1)):
                ref_of_test[j], test_of_ref[i] = i, j
                i += 1
            j += 1
        else:  # the reference beat comes first (or both at once)
            if small_t - big_t <= window and small_t - big_t < abs(small_t - at(ref, i + 1)):
                ref_of_test[j], test_of_ref[i] = i, j
                j += 1
            i += 1
    return ref_of_test, test_of_ref


def confusion_matrix(
    ref_labels: np.ndarray, test_labels: np.ndarray, ref_of_test: np.ndarray, test_of_ref: np.ndarray
) -> np.ndarray:
    """The 6 x 6 matrix of :data:`ROWS` by :data:`COLS` (its O/o corner stays 0)."""
    ref_labels = np.asarray(ref_labels, dtype=np.int64)
    test_labels = np.asarray(test_labels, dtype=np.int64)
    matrix = np.zeros((len(ROWS), len(COLS)), dtype=np.int64)
    matched = test_of_ref >= 0
    np.add.at(matrix, (ref_labels[matched], test_labels[test_of_ref[matched]]), 1)
    np.add.at(matrix[:, UNMATCHED], ref_labels[~matched], 1)
    np.add.at(matrix[UNMATCHED], test_labels[ref_of_test < 0], 1)
    return matrix


def statistics(matrix: np.ndarray) -> dict[str, Ratio]:
    """The EC57 statistics of one confusion matrix (see the module docstring for the formulas)."""
    m = np.asarray(matrix, dtype=np.int64)
    o = UNMATCHED
    matched = int(m[:o, :o].sum())
    missed = int(m[:o, o].sum())
    false = int(m[o, :o].sum())
    out = {"qrs_se": Ratio(matched, matched + missed), "qrs_pp": Ratio(matched, matched + false)}
    # Rows whose beats called V (S) are false positives, as bxb counts them: an F or Q beat called
    # V is neither a false positive nor a true negative; for S only a Q beat is left out.
    false_rows = {V: (N, S, o), S: (N, V, F, o)}
    for name, cls in (("veb", V), ("sveb", S)):
        tp = int(m[cls, cls])
        fn = int(m[cls].sum() - tp)  # the whole row but the hit: other classes and o
        fp = int(sum(m[r, cls] for r in false_rows[cls]))
        rows = [r for r in (N, S, V, F, Q, o) if r != cls]
        cols = [c for c in (N, S, V, F, Q) if c != cls]
        tn = int(m[np.ix_(rows, cols)].sum())
        out[f"{name}_se"] = Ratio(tp, tp + fn)
        out[f"{name}_pp"] = Ratio(tp, tp + fp)
        out[f"{name}_fpr"] = Ratio(fp, tn + fp)
    return {key: out[key] for key in STATISTICS}


def per_class(matrix: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    """Se, +P and F1 of each AAMI class over matched beats; None where a count is 0."""
    m = np.asarray(matrix, dtype=np.int64)[: len(CLASSES), : len(CLASSES)]
    out: dict[str, dict[str, float | int | None]] = {}
    for k, name in enumerate(CLASSES):
        tp, ref_total, test_total = int(m[k, k]), int(m[k].sum()), int(m[:, k].sum())
        se = tp / ref_total if ref_total else None
        pp = tp / test_total if test_total else None
        f1 = 2 * tp / (ref_total + test_total) if ref_total + test_total else None
        out[name] = {"se": se, "pp": pp, "f1": f1, "reference": ref_total, "test": test_total}
    return out


@dataclass(frozen=True)
class RecordScore:
    """One record: its confusion matrix and statistics."""

    name: str
    matrix: np.ndarray
    stats: dict[str, Ratio]


@dataclass(frozen=True)
class Score:
    """Records scored together: the per-record scores, and gross and record-average statistics."""

    records: list[RecordScore]
    matrix: np.ndarray
    gross: dict[str, Ratio]
    average: dict[str, float | None]
    average_n: dict[str, int]
    classes: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    window_s: float = WINDOW_S
    start_s: float = 0.0


def score_record(
    name: str,
    ref_times: np.ndarray,
    ref_labels: np.ndarray,
    test_times: np.ndarray,
    test_labels: np.ndarray,
    window: int,
    start: int = 0,
) -> RecordScore:
    """Score one record. Times are integers in one unit (samples), ``window`` and ``start`` too;
    labels are AAMI class indices 0..4. Beats are sorted by time here (stably)."""
    ref_times, ref_labels = _sorted(ref_times, ref_labels)
    test_times, test_labels = _sorted(test_times, test_labels)
    keep_ref = ref_times >= start
    # A test beat just before the start may still match the first reference beat after it.
    keep_test = test_times >= start - window
    ref_times, ref_labels = ref_times[keep_ref], ref_labels[keep_ref]
    test_times, test_labels = test_times[keep_test], test_labels[keep_test]
    ref_of_test, test_of_ref = match_beats(ref_times, test_times, window)
    matrix = confusion_matrix(ref_labels, test_labels, ref_of_test, test_of_ref)
    early = (ref_of_test < 0) & (test_times < start)  # unmatched, inside the learning period: not scored
    np.add.at(matrix[UNMATCHED], test_labels[early], -1)
    return RecordScore(name, matrix, statistics(matrix))


def _sorted(times: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if times.shape != labels.shape:
        raise ValueError("beat times and labels differ in length")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError("beat labels must be AAMI class indices 0..4")
    order = np.argsort(times, kind="stable")
    return times[order], labels[order]


def summarize(records: Sequence[RecordScore], window_s: float = WINDOW_S, start_s: float = 0.0) -> Score:
    """Gross statistics (the summed matrix), record averages and per-class figures of ``records``."""
    matrix = (
        np.sum([r.matrix for r in records], axis=0)
        if records
        else np.zeros((len(ROWS), len(COLS)), dtype=np.int64)
    )
    average: dict[str, float | None] = {}
    average_n: dict[str, int] = {}
    for key in STATISTICS:
        values = [r.stats[key].value for r in records if r.stats[key].value is not None]
        average[key] = float(np.mean(values)) if values else None
        average_n[key] = len(values)
    return Score(
        records=list(records),
        matrix=matrix,
        gross=statistics(matrix),
        average=average,
        average_n=average_n,
        classes=per_class(matrix),
        window_s=window_s,
        start_s=start_s,
    )
