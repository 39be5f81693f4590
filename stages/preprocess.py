"""Stage preprocess: validate the raw CSVs and write train/val/test arrays per dataset."""

import contextlib
import logging

import pandas as pd

from heartbeat.core import layout
from heartbeat.core.atomic import atomic_dir, write_json
from heartbeat.core.beatcsv import read_beats_csv
from heartbeat.core.config import stage_params
from heartbeat.core.entry import run
from heartbeat.core.layout import FILE_CLASSES, RAW_FILES, read_json
from heartbeat.core.npyfile import load_npy
from heartbeat.prepare.arrays import save_dataset
from heartbeat.prepare.preprocess import class_counts, prepare, prepared_info, records_of

log = logging.getLogger("heartbeat")


def main() -> None:
    cfg = stage_params("preprocess")
    source = read_json(layout.RAW / "source.json", "fetch")
    raw = {name: read_beats_csv(layout.RAW / name, FILE_CLASSES[name]) for name in RAW_FILES}
    prov_path = layout.RAW / "provenance.parquet"
    provenance = pd.read_parquet(prov_path) if prov_path.is_file() else None
    windows_path = layout.RAW / layout.WINDOWS_FILE
    windows = load_npy(windows_path, mmap=True) if windows_path.is_file() else None
    prepared = prepare(raw, cfg, provenance, windows)
    counts = class_counts(prepared)
    info = prepared_info(
        source.get("source"),
        source.get("synthetic"),
        cfg.split,
        prepared.groups,
        records_of(provenance),
        source.get("reference", "median"),
        source.get("amplitude_stretch_s", 0.0),
    )
    # Both folders are built aside and swapped in only when everything succeeded.
    with contextlib.ExitStack() as stack:
        mit_dir = stack.enter_context(atomic_dir(layout.PREPARED / "mitbih"))
        ptb_dir = stack.enter_context(atomic_dir(layout.PREPARED / "ptb"))
        save_dataset(mit_dir, prepared.mitbih)
        save_dataset(ptb_dir, prepared.ptb)
        write_json(layout.PREPARED / "counts.json", counts)
        write_json(layout.PREPARED / "info.json", info)
    for dataset, splits in counts.items():
        for split, by_class in splits.items():
            log.info("%s %s: %s", dataset, split, ", ".join(f"{k} {v:,}" for k, v in by_class.items()))


if __name__ == "__main__":
    run("preprocess", main)
