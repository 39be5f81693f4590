"""What every phase agrees a beat is: 187 samples at 125 Hz, and the class labels it may carry."""

from __future__ import annotations

BEAT_LENGTH = 187
"""Samples per beat: 1.5 s at 125 Hz, zero-padded."""

MITBIH_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
"""AAMI classes in label order 0..4."""

PTB_CLASSES: tuple[str, ...] = ("normal", "abnormal")
"""PTB labels: 0 healthy control, 1 myocardial infarction."""

DATASET_CLASSES: dict[str, tuple[str, ...]] = {"mitbih": MITBIH_CLASSES, "ptb": PTB_CLASSES}
"""The class names of each dataset, in label order."""
