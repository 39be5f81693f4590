"""Stage export: TFLite and ONNX files of the four models, checked against Keras on the test splits.

Writes ``models/export/`` as a whole (built aside, swapped in only when every
model passed parity) holding ``<name>.tflite``, ``<name>.onnx``, quantised
variants that passed their gate, and ``manifest.json`` (the sha256 of each
source ``.keras``, so ``heartbeat predict`` never serves a stale export); and
``metrics/export.json`` with the parity figures.
"""

import logging

from heartbeat import paths
from heartbeat.atomic import atomic_dir, write_json
from heartbeat.config import stage_params
from heartbeat.datasets import load_split
from heartbeat.entry import run
from heartbeat.export import Thresholds, calibration_beats, export_model
from heartbeat.pipeline import MODELS
from heartbeat.predict import EXPORT_DIR, MANIFEST, sha256_file

log = logging.getLogger("heartbeat")


def main() -> None:
    cfg = stage_params("export")
    thresholds = Thresholds(cfg.min_agreement, cfg.max_abs_diff, cfg.max_f1_change)
    datasets = {spec.dataset for spec in MODELS.values()}
    tests = {ds: load_split(paths.PREPARED / ds, "test") for ds in datasets}
    calibration = {}
    if "int8" in cfg.quantize:
        for ds in datasets:
            train = load_split(paths.PREPARED / ds, "train", mmap=True)
            calibration[ds] = calibration_beats(train.X, cfg.calibration_beats, cfg.seed)
    report: dict = {"formats": list(cfg.formats), "quantize": list(cfg.quantize), "models": {}}
    manifest: dict = {"models": {}}
    with atomic_dir(paths.MODELS / EXPORT_DIR) as out:
        for name, spec in MODELS.items():
            source = paths.model_file(name)
            test = tests[spec.dataset]
            report["models"][name] = export_model(
                name,
                source,
                out,
                test.X,
                test.y,
                formats=cfg.formats,
                quantize=cfg.quantize,
                calibration=calibration.get(spec.dataset),
                thresholds=thresholds,
                batch_size=cfg.batch_size,
            )
            manifest["models"][name] = {"source": str(source), "sha256": sha256_file(source)}
        write_json(out / MANIFEST, manifest)
    write_json(paths.METRICS / "export.json", report)


if __name__ == "__main__":
    run("export", main)
