"""Stage fetch: write the four Kaggle-format CSVs of the source that params.yaml `data.source` names.

The source writes into a temporary folder; only after every CSV has passed
validation does that folder replace data/raw, so a failed fetch keeps the old data.
"""

import logging

from heartbeat.core import layout
from heartbeat.core.atomic import atomic_dir, write_json
from heartbeat.core.config import stage_params
from heartbeat.core.entry import run
from heartbeat.core.errors import DataError
from heartbeat.fetch import check_against_kaggle, check_outside, fetch_source, validate_raw

log = logging.getLogger("heartbeat")


def main() -> None:
    cfg = stage_params("data")
    check_outside(cfg, layout.RAW)
    log.info("fetching from source %r", cfg.source)
    with atomic_dir(layout.RAW) as tmp:
        fetch_source(cfg, tmp, layout.CACHE)
        try:
            counts = validate_raw(tmp)
            warnings = check_against_kaggle(cfg, tmp, counts)
        except DataError as exc:  # name the file as the user knows it, not its temporary folder
            raise DataError(str(exc).replace(str(tmp), f"{layout.RAW} (new {cfg.source} data)")) from None
        for w in warnings:
            log.warning("%s", w)
        info = {
            "source": cfg.source,
            "synthetic": cfg.source == "demo",
            "reference": cfg.reference,
            "amplitude_stretch_s": cfg.amplitude_stretch_s,
            "rows": counts,
            "warnings": warnings,
        }
        write_json(tmp / "source.json", info)
    log.info("wrote %s: %s", layout.RAW, ", ".join(f"{k} {v:,} rows" for k, v in counts.items()))


if __name__ == "__main__":
    run("fetch", main)
