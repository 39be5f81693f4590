"""Stage export: TFLite and ONNX files of the four models, checked against Keras on the test splits.

Writes ``models/export/`` as a whole (built aside, swapped in only when every
model passed parity) holding ``<name>.tflite``, ``<name>.onnx``, quantised
variants that passed their gate, and ``manifest.json`` (the sha256 of each
source ``.keras``, so ``heartbeat predict`` never serves a stale export, and of
each exported file, so it never serves a damaged one); and
``metrics/export.json`` with the parity figures. A model whose ``.keras`` file,
export params and prepared data are all unchanged since the last run keeps its
files and figures (copied, not converted again): the manifest records a hash of
those inputs.
"""

import json
import logging

from heartbeat.core import layout
from heartbeat.core.atomic import atomic_dir, write_json
from heartbeat.core.config import stage_params
from heartbeat.core.entry import run
from heartbeat.core.hashing import sha256_file
from heartbeat.core.layout import EXPORT_DIR, MANIFEST
from heartbeat.core.registry import MODEL_SPECS
from heartbeat.prepare.arrays import load_split
from heartbeat.serve.export import Thresholds, export_model, inputs_key, representative_beats, reuse_previous

log = logging.getLogger("heartbeat")


def main() -> None:
    cfg = stage_params("export")
    thresholds = Thresholds(cfg.min_agreement, cfg.max_abs_diff, cfg.max_f1_change)
    datasets = {spec.dataset for spec in MODEL_SPECS.values()}
    tests = {ds: load_split(layout.PREPARED / ds, "test") for ds in datasets}
    representative = {}  # training beats on which int8 activation ranges are measured
    if "int8" in cfg.quantize:
        for ds in datasets:
            train = load_split(layout.PREPARED / ds, "train", mmap=True)
            representative[ds] = representative_beats(train, cfg.calibration_beats, cfg.seed)
    report: dict = {"formats": list(cfg.formats), "quantize": list(cfg.quantize), "models": {}}
    manifest: dict = {"models": {}}
    previous_dir = layout.MODELS / EXPORT_DIR
    previous = {"manifest": _read(previous_dir / MANIFEST), "report": _read(layout.METRICS / "export.json")}
    params = cfg.model_dump(mode="json")
    with atomic_dir(previous_dir) as out:
        for name, spec in MODEL_SPECS.items():
            source = layout.model_file(name)
            sha = sha256_file(source)
            key = inputs_key(sha, params, layout.PREPARED / spec.dataset)
            before = set(out.iterdir())
            figures = reuse_previous(name, key, previous_dir, out, previous)
            if figures is not None:
                log.info("%s: unchanged since the last export; its files are kept", name)
                report["models"][name] = figures
                manifest["models"][name] = {**previous["manifest"]["models"][name], "source": str(source)}
                continue
            test = tests[spec.dataset]
            report["models"][name] = export_model(
                name,
                source,
                out,
                test,
                formats=cfg.formats,
                quantize=cfg.quantize,
                representative=representative.get(spec.dataset),
                thresholds=thresholds,
                batch_size=cfg.batch_size,
            )
            files = sorted(f.name for f in set(out.iterdir()) - before)
            manifest["models"][name] = {
                "source": str(source),
                "sha256": sha,
                "inputs": key,
                "files": files,
                "file_sha256": {f: sha256_file(out / f) for f in files},
            }
        write_json(out / MANIFEST, manifest)
    write_json(layout.METRICS / "export.json", report)


def _read(path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    run("export", main)
