"""The beats of one record: cut from its lead, labelled when annotations say, with their context.

One function, :func:`cut_record`, serves every path from a continuous lead to beats: the physionet
source (training data), the demo source's synthetic records, and ``heartbeat predict`` on a user's
record. So a beat, its R-R features and its context matrix are computed the same way at training
and at prediction time (tests/test_predict.py checks one real record through both paths).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from heartbeat.signal.context import RR_COLUMNS, context_matrix, rr_features
from heartbeat.signal.patient import patient_inputs, reference_mask
from heartbeat.signal.segment import Segmented, extract_beats


@dataclass(frozen=True)
class RecordBeats:
    """Beats cut from one record, and what each came from."""

    X: np.ndarray
    """``(n, 187)`` float32 beats."""
    sample: np.ndarray
    """R-peak of each beat, in samples at the record's own rate."""
    symbol: np.ndarray
    """The annotation symbol of each beat; ``""`` where there is none (detected peaks)."""
    rr: dict[str, np.ndarray]
    """R-R features of each beat (:data:`heartbeat.signal.context.RR_COLUMNS`), from all the record's
    R-peaks, so the neighbours of a dropped beat still count."""
    window: np.ndarray
    """``(n, 125, 2)`` two-lead windows around each beat (heartbeat/signal/patient.py)."""
    patient: np.ndarray
    """``(n, 80)`` features of each beat against its own patient (heartbeat/signal/patient.py)."""
    segmented: Segmented
    """The segmenter's own output, for reports (which peaks were found, whether the lead was flipped)."""

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def context(self) -> np.ndarray:
        """The ``(n, 9)`` context matrix of these beats (:data:`heartbeat.signal.context.CONTEXT_COLUMNS`),
        exactly as preprocess builds it for the beats of one record."""
        rr = np.stack([self.rr[k] for k in RR_COLUMNS], axis=1)
        return context_matrix(rr, self.X, np.zeros(len(self), dtype=np.int8))


def cut_record(
    signal: np.ndarray,
    fs: float,
    peaks: np.ndarray | None = None,
    symbols: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    second: np.ndarray | Callable[[], np.ndarray] | None = None,
    reference: str | np.ndarray | None = "median",
    amplitude_stretch_s: float | None = None,
    **segment_options: object,
) -> RecordBeats:
    """Cut the beats of one lead: at ``peaks`` (R-peak samples at ``fs``, e.g. annotations), or at the
    peaks the paper's detector finds when ``peaks`` is None.

    ``symbols`` (one per peak) labels them; ``keep`` (a boolean mask over the peaks) drops some after
    segmentation, as the physionet source does with detections that match no annotation, while their
    R-R intervals still count for the neighbours. ``second`` is the record's other lead, where it has
    one, for the windows and patient features (or a function that returns it, called only when the
    patient features reach it: :func:`heartbeat.signal.patient.patient_inputs`). ``reference`` names the beats whose statistics stand for
    the record in the patient features: a method of :data:`heartbeat.signal.patient.REFERENCES`, or a
    boolean mask over the peaks (:func:`heartbeat.signal.patient.reference_mask`); ``amplitude_stretch_s``
    (seconds; None or 0: the whole record at one scale) brings each stretch of the record to the
    record's QRS amplitude first (:func:`heartbeat.signal.patient.patient_inputs`). ``segment_options`` go to
    :func:`heartbeat.signal.segment.extract_beats`.
    """
    seg = extract_beats(signal, fs, peaks, **segment_options)
    all_peaks = np.asarray(seg.peaks)
    all_symbols = (
        np.asarray(symbols, dtype=object)
        if symbols is not None
        else np.full(all_peaks.size, "", dtype=object)
    )
    if all_symbols.size != all_peaks.size:
        raise ValueError(f"cut_record: {all_symbols.size} symbols for {all_peaks.size} R-peaks")
    index = seg.index if keep is None else seg.index[np.asarray(keep, dtype=bool)[seg.index]]
    rows = np.isin(seg.index, index)
    rr = rr_features(all_peaks, fs)
    leads = [signal] if second is None else [signal, second]
    mask = reference_mask(reference, all_peaks, fs)
    window, patient = patient_inputs(leads, fs, all_peaks, mask, amplitude_stretch_s)
    return RecordBeats(
        X=seg.X if rows.all() else seg.X[rows],  # no second copy of every beat
        sample=all_peaks[index],
        symbol=all_symbols[index].astype(str),
        rr={k: v[index] for k, v in rr.items()},
        window=window[index],
        patient=patient[index],
        segmented=seg,
    )
