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


CLASS_COLOURS = ("#2f7d32", "#d97706", "#c62828", "#7b1fa2", "#1565c0", "#6b7280")
"""One colour per class in label order (N S V F Q; normal abnormal), the same in every figure."""


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (no software stamp, so the same figure gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


EXAMPLE_WINDOW_S = (0.25, 0.45)
"""Seconds before and after the R-peak that an example beat shows: P wave to T wave at rest."""


def recording_figure(
    signal: np.ndarray,
    fs: float,
    peaks: np.ndarray,
    proba: np.ndarray,
    class_names: tuple[str, ...],
    seconds: float = 20.0,
    examples: int = 3,
    unit: str = "mV",
) -> Figure:
    """The start of a recording with each beat marked in its predicted class's colour, the whole
    recording's class of every beat over time, and a few example beats of each predicted class
    (the recording around their R-peak, in ``unit``): for people who would rather look than read
    the table."""
    pred = np.argmax(proba, axis=1)
    present = [c for c in range(len(class_names)) if (pred == c).any()]
    fig = plt.figure(figsize=(11, 6.8), dpi=100, layout="constrained")
    grid = fig.add_gridspec(3, max(len(present), 1), height_ratios=[1.3, 0.5, 1.0])
    ax = fig.add_subplot(grid[0, :])
    shown = int(min(signal.size, seconds * fs))
    t = np.arange(shown) / fs
    ax.plot(t, signal[:shown], color="#374151", linewidth=0.7)
    inside = peaks < shown
    for c in present:
        at = peaks[inside & (pred == c)]
        ax.scatter(
            at / fs,
            signal[at],
            s=22,
            color=CLASS_COLOURS[c % len(CLASS_COLOURS)],
            label=class_names[c],
            zorder=3,
        )
    ax.set_title(f"first {shown / fs:.0f} s, each beat in its predicted class's colour", loc="left")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(unit)
    # Above the axes, beside the title: inside them it would cover the trace and its markers.
    ax.legend(
        loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=max(len(present), 1), fontsize=8, frameon=False
    )
    timeline = fig.add_subplot(grid[1, :])
    timeline.scatter(peaks / fs / 60, pred, s=4, c=[CLASS_COLOURS[c % len(CLASS_COLOURS)] for c in pred])
    timeline.set_yticks(range(len(class_names)), class_names)
    timeline.set_ylim(-0.6, len(class_names) - 0.4)
    timeline.set_xlabel("time (min)")
    timeline.set_title("every beat's class over the whole recording", loc="left")
    before, after = (round(s * fs) for s in EXAMPLE_WINDOW_S)
    span = (np.arange(-before, after + 1) / fs) * 1000
    first = None
    for i, c in enumerate(present):
        example = fig.add_subplot(grid[2, i], sharey=first)
        first = first or example
        rows = np.flatnonzero(pred == c)
        whole = rows[(peaks[rows] >= before) & (peaks[rows] + after < signal.size)]
        for row in whole[np.argsort(-proba[whole, c], kind="stable")][:examples]:
            segment = signal[peaks[row] - before : peaks[row] + after + 1]
            example.plot(span, segment, color=CLASS_COLOURS[c % len(CLASS_COLOURS)], linewidth=0.9, alpha=0.8)
        example.axvline(0, color="#9ca3af", linewidth=0.6, linestyle=":")
        example.set_title(f"{class_names[c]}: {len(rows):,} beats", fontsize=9)
        example.set_xlabel("ms from R-peak", fontsize=8)
        example.tick_params(labelsize=7)
        if i == 0:
            example.set_ylabel(unit)
        else:
            example.tick_params(labelleft=False)
    return fig
