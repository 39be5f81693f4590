"""The MIT-BIH model ``heartbeat predict`` uses when no ``--model`` is given.

Trained by the pipeline itself on real MIT-BIH records (the physionet source), so a fresh install
classifies a real recording without ``dvc repro``. MODEL_CARD.md beside it says what it was trained
on, how to reproduce it, how well it does on patients it has not seen, and what it is not for; its
sha256 there is checked by the tests. ``export/`` holds its TFLite copy, which is what predict runs by
default: it starts without importing TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
MODEL = FOLDER / "resnet_mitbih.keras"
CARD = FOLDER / "MODEL_CARD.md"
