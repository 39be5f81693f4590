"""Stage preprocess: validate the raw CSVs and write train/val/test arrays per dataset."""

import contextlib
import logging

import pandas as pd

from heartbeat import paths
from heartbeat.atomic import atomic_dir, write_json
from heartbeat.classes import FILE_CLASSES, RAW_FILES
from heartbeat.config import stage_params
from heartbeat.csvio import read_beats_csv
from heartbeat.datasets import save_dataset
from heartbeat.entry import run
from heartbeat.pipeline import read_json
from heartbeat.prepare import class_counts, prepare

log = logging.getLogger("heartbeat")


def main() -> None:
    cfg = stage_params("preprocess")
    source = read_json(paths.RAW / "source.json", "fetch")
    raw = {name: read_beats_csv(paths.RAW / name, FILE_CLASSES[name]) for name in RAW_FILES}
    prov_path = paths.RAW / "provenance.parquet"
    provenance = pd.read_parquet(prov_path) if prov_path.is_file() else None
    prepared = prepare(raw, cfg, provenance)
    counts = class_counts(prepared)
    info = {
        "source": source.get("source"),
        "synthetic": bool(source.get("synthetic")),
        "split": cfg.split,
        "groups": prepared.groups,  # records / patients per split, for split: patient
    }
    # Both folders are built aside and swapped in only when everything succeeded.
    with contextlib.ExitStack() as stack:
        mit_dir = stack.enter_context(atomic_dir(paths.PREPARED / "mitbih"))
        ptb_dir = stack.enter_context(atomic_dir(paths.PREPARED / "ptb"))
        save_dataset(mit_dir, prepared.mitbih)
        save_dataset(ptb_dir, prepared.ptb)
        write_json(paths.PREPARED / "counts.json", counts)
        write_json(paths.PREPARED / "info.json", info)
    for dataset, splits in counts.items():
        for split, by_class in splits.items():
            log.info("%s %s: %s", dataset, split, ", ".join(f"{k} {v:,}" for k, v in by_class.items()))


if __name__ == "__main__":
    run("preprocess", main)
