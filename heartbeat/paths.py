"""Where the pipeline reads and writes, relative to the project root (DVC runs stages from there)."""

from __future__ import annotations

from pathlib import Path

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
CACHE = Path(".cache")
MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")


def model_file(name: str) -> Path:
    return MODELS / f"{name}.keras"


def train_info_file(name: str) -> Path:
    return MODELS / f"{name}.json"


def history_file(name: str) -> Path:
    return PLOTS / name / "history.csv"
