"""The offline ``demo`` source: synthetic beats, so ``dvc repro`` runs on a fresh machine with no network."""

from __future__ import annotations

from pathlib import Path

from heartbeat.core.beatcsv import write_beats_csv
from heartbeat.core.config import DataConfig
from heartbeat.fetch.synth import generate_demo


def fetch_demo(cfg: DataConfig, dest: Path) -> None:
    beats = generate_demo(cfg.seed, cfg.demo.model_dump())
    for name, b in beats.items():
        write_beats_csv(dest / name, b.X, b.y)
