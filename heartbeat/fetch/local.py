"""The ``local`` source: a folder or the Kaggle .zip that the user already has."""

from __future__ import annotations

from pathlib import Path

from heartbeat.core.config import DataConfig
from heartbeat.core.errors import ParamsError
from heartbeat.fetch.archive import copy_csvs, extract_csvs


def fetch_local(cfg: DataConfig, dest: Path) -> None:
    if not cfg.local_path:
        raise ParamsError(
            "params.yaml: data.local_path: is empty; set it to a folder or .zip holding the four CSVs "
            "(dvc exp run -S data.source=local -S data.local_path=/path/to/heartbeat.zip)"
        )
    path = Path(cfg.local_path).expanduser()
    if path.is_file():
        extract_csvs(path, dest)
    else:
        copy_csvs(path, dest)
