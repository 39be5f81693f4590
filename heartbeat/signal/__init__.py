"""Continuous ECG in, beats out: WFDB records, beat cutting, R-peak scoring, and each beat's context
(R-R intervals, its record's usual beat)."""
