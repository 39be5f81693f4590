"""Plot data for ``dvc plots`` and PNG figures like the seed project's README.

The CSVs feed DVC's own templates (``linear`` for the training history,
``confusion`` for the matrix); the PNGs are for people reading the README or
the report without DVC.
"""

from __future__ import annotations

import io
import itertools
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def confusion_csv(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]) -> str:
    """One row per beat, ``actual,predicted`` as class names, for DVC's ``confusion`` template."""
    names = np.asarray(class_names)
    buf = io.StringIO()
    buf.write("actual,predicted\n")
    for a, p in zip(names[y_true], names[y_pred], strict=True):
        buf.write(f"{a},{p}\n")
    return buf.getvalue()


def accuracy_figure(history: list[dict[str, float]], title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["accuracy"] for r in history], label="train")
    ax.plot(epochs, [r["val_accuracy"] for r in history], label="validation")
    starts = [r["epoch"] for prev, r in itertools.pairwise(history) if r.get("member") != prev.get("member")]
    for i, x in enumerate(starts):  # a seed ensemble: where each next member starts training
        ax.axvline(
            x - 0.5, color="grey", linewidth=0.8, linestyle=":", label="next member" if i == 0 else None
        )
    ax.set_xlabel("epoch (members one after another)" if starts else "epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def confusion_figure(matrix: np.ndarray, class_names: tuple[str, ...], title: str) -> Figure:
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.2, 1.1 * n + 1.6), dpi=100)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:,}",
                ha="center",
                va="center",
                color="white" if shares[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str]) -> None:
    from heartbeat.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
