"""Data sources for the fetch stage.

Every source writes the four CSVs of the Kaggle set (``heartbeat.core.layout.RAW_FILES``)
into a destination folder, plus any extra files it has: the physionet and demo sources, which
cut beats from records, add provenance.parquet and report.json. The fetch stage then validates
every CSV and swaps the folder into place, so a failed fetch never replaces good data.
"""

from __future__ import annotations

from pathlib import Path

from heartbeat.core.config import SOURCE_NAMES, DataConfig
from heartbeat.core.errors import ParamsError


def fetch_source(cfg: DataConfig, dest: Path, cache: Path) -> None:
    """Run the source that ``cfg.source`` names; imports are lazy so that no source costs the others."""
    if cfg.source == "demo":
        from heartbeat.fetch.demo import fetch_demo

        fetch_demo(cfg.demo, cfg.seed, dest, cfg.reference, cfg.amplitude_stretch_s)
    elif cfg.source == "local":
        from heartbeat.fetch.local import fetch_local

        fetch_local(cfg, dest)
    elif cfg.source == "kaggle":
        from heartbeat.fetch.kaggle import fetch_kaggle

        fetch_kaggle(dest, cache)
    elif cfg.source == "physionet":
        from heartbeat.fetch.physionet import fetch_physionet

        fetch_physionet(cfg.physionet, cfg.seed, dest, cache, cfg.reference, cfg.amplitude_stretch_s)
    else:  # the schema already rejects this; kept for callers that bypass it
        raise ParamsError(
            f"data.source: {cfg.source!r} is not valid; expected one of {', '.join(SOURCE_NAMES)}"
        )


def check_outside(cfg: DataConfig, folder: Path) -> None:
    """Refuse a source that lies inside ``folder``, the output fetch replaces as a whole.

    The swap deletes the previous folder: an archive or mirror kept there would be deleted with it.
    """
    sources = []
    if cfg.source == "local" and cfg.local_path:
        sources.append(("data.local_path", Path(cfg.local_path).expanduser()))
    if cfg.source == "physionet":
        from heartbeat.fetch.physionet import local_root

        root = local_root(cfg.physionet.mirror)
        if root is not None:
            sources.append(("data.physionet.mirror", root))
    output = folder.resolve()
    for key, path in sources:
        where = path.resolve()
        if where == output or output in where.parents:
            raise ParamsError(
                f"params.yaml: {key}: {path} is inside {folder}, which fetch replaces as a whole (the "
                f"previous {folder} is deleted); move it out of {folder}, e.g. to {folder.parent / path.name}"
            )


def validate_raw(folder: Path) -> dict[str, int]:
    """Read and check every CSV in ``folder``; return the row count of each."""
    from heartbeat.core.beatcsv import read_beats_csv
    from heartbeat.core.layout import FILE_CLASSES, RAW_FILES

    return {name: len(read_beats_csv(folder / name, FILE_CLASSES[name])) for name in RAW_FILES}


def check_against_kaggle(cfg: DataConfig, folder: Path, counts: dict[str, int]) -> list[str]:
    """Compare with the real Kaggle files; return warnings, raise on a wrong Kaggle download."""
    from heartbeat.core.errors import DataError
    from heartbeat.fetch.kaggle_set import count_differences, sha_differences

    if cfg.source == "kaggle":
        diffs = count_differences(counts)
        if diffs:
            raise DataError(f"{folder}: the download is incomplete or not the Kaggle set: {'; '.join(diffs)}")
        return sha_differences(folder)
    if cfg.source == "local":
        return [f"local copy differs from the Kaggle set: {d}" for d in count_differences(counts)]
    return []
