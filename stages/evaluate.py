"""Stage evaluate: metrics, confusion data and figures for the four models on their test splits."""

import logging

import numpy as np

from heartbeat import paths
from heartbeat.atomic import write_json, write_text
from heartbeat.classes import DATASET_CLASSES
from heartbeat.config import stage_params
from heartbeat.datasets import load_split
from heartbeat.entry import run
from heartbeat.metrics import classification_metrics, confusion
from heartbeat.modelio import load_model
from heartbeat.pipeline import MODELS, read_json
from heartbeat.plots import accuracy_figure, confusion_csv, confusion_figure, read_history_csv, save_png

log = logging.getLogger("heartbeat")


def main() -> None:
    cfg = stage_params("evaluate")
    info = read_json(paths.PREPARED / "info.json", "preprocess")
    tests = {ds: load_split(paths.PREPARED / ds, "test") for ds in DATASET_CLASSES}
    for name, spec in MODELS.items():
        names = DATASET_CLASSES[spec.dataset]
        test = tests[spec.dataset]
        model = load_model(paths.model_file(name), len(names))
        proba = model.predict(np.asarray(test.X, dtype=np.float32), batch_size=cfg.batch_size, verbose=0)
        y_pred = np.argmax(proba, axis=1)
        metrics = {
            "model": name,
            "dataset": spec.dataset,
            "data_source": info.get("source"),
            "synthetic_data": bool(info.get("synthetic")),
            "split": info.get("split"),
            "params": int(model.count_params()),
            **classification_metrics(test.y, proba, names),
        }
        history = read_history_csv(paths.history_file(name).read_text(encoding="utf-8"))
        write_json(paths.METRICS / f"{name}.json", metrics)
        write_text(paths.PLOTS / name / "confusion.csv", confusion_csv(test.y, y_pred, names))
        save_png(accuracy_figure(history, spec.title), paths.PLOTS / name / "accuracy.png")
        cm = confusion(test.y, y_pred, len(names))
        save_png(confusion_figure(cm, names, spec.title), paths.PLOTS / name / "confusion.png")
        log.info(
            "%s: accuracy %.4f, macro-F1 %.4f on %d test beats",
            name,
            metrics["accuracy"],
            metrics["macro_f1"],
            len(test.y),
        )


if __name__ == "__main__":
    run("evaluate", main)
