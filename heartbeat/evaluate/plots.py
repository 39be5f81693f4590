"""Plot data for ``dvc plots`` and PNG figures like the seed project's README.

The CSVs feed ``dvc plots`` through the templates in .dvc/plots/ (``history`` for the training
history, ``confusion_table`` for the matrix); the PNGs are for people reading the README or the
report without DVC.
"""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def confusion_csv(matrix: np.ndarray, class_names: tuple[str, ...]) -> str:
    """The confusion matrix as ``actual,predicted,beats`` rows, every cell (zeros too) in class order.

    The shape .dvc/plots/confusion_table.json draws: one row per cell keeps classes that are never
    predicted on the axes, and the file small (25 rows, not one per test beat).
    """
    buf = io.StringIO()
    buf.write("actual,predicted,beats\n")
    for (i, j), count in np.ndenumerate(np.asarray(matrix)):
        buf.write(f"{class_names[i]},{class_names[j]},{int(count)}\n")
    return buf.getvalue()


def _members(history: list[dict[str, float]]) -> dict[int | None, list[dict[str, float]]]:
    """The history's rows per ensemble member (one group, ``None``, for a single model)."""
    groups: dict[int | None, list[dict[str, float]]] = {}
    for row in history:
        member = row.get("member")
        groups.setdefault(None if member is None else int(member), []).append(row)
    return groups


def accuracy_figure(history: list[dict[str, float]], title: str) -> Figure:
    """Training and validation accuracy per epoch; a seed ensemble's members each in their own colour.

    Each member (or the single model) gets one hue of matplotlib's paired ``tab20`` palette: the
    dark shade for validation, the light one for training.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.6), dpi=100)
    palette = plt.get_cmap("tab20").colors
    groups = _members(history)
    for k, (member, rows) in enumerate(groups.items()):
        epochs = [r["epoch"] for r in rows]
        who = "" if member is None else f"member {member} "
        dark, light = palette[(2 * k) % 20], palette[(2 * k + 1) % 20]
        ax.plot(epochs, [r["val_accuracy"] for r in rows], color=dark, label=f"{who}validation")
        ax.plot(epochs, [r["accuracy"] for r in rows], color=light, linestyle="--", label=f"{who}train")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (each member from 1)" if len(groups) > 1 else "epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=2 if len(groups) > 1 else 1)
    fig.tight_layout()
    return fig


def confusion_figure(matrix: np.ndarray, class_names: tuple[str, ...], title: str) -> Figure:
    """Two panels, classes in label order (N S V F Q; normal, abnormal): beat counts, and each row
    as shares of its true class, so the errors of a rare class show as clearly as those of N."""
    n = len(class_names)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 0.6 * n + 1.4
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 0.4, size + 0.5), dpi=100)
    panels = (
        ("counts", [f"{v:,}" for v in matrix.ravel()]),
        ("share of the true class", [share_text(v) for v in shares.ravel()]),
    )
    for ax, (what, labels) in zip(axes, panels, strict=True):
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), text in zip(np.ndindex(n, n), labels, strict=True):
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize="small")
        ax.set_xticks(range(n), class_names)
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(what, fontsize="medium")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def share_text(share: float) -> str:
    """A share as a whole percentage; a few beats of many show as "<1%", not as a misleading 0%."""
    if share == 0:
        return "0"
    return "<1%" if share < 0.005 else f"{share:.0%}"


def save_png(fig: Figure, path: str | os.PathLike[str]) -> None:
    from heartbeat.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
