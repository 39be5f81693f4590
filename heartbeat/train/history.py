"""The training history: one row per epoch, as ``plots/<model>/history.csv`` holds it for DVC's linear template."""

from __future__ import annotations

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def history_csv(history: list[dict[str, float]]) -> str:
    """The training history for DVC's linear template; a seed ensemble's also has a ``member`` column."""
    columns = (*HISTORY_COLUMNS, "member") if any("member" in row for row in history) else HISTORY_COLUMNS
    integer = ("epoch", "member")
    lines = [",".join(columns)]
    for row in history:
        lines.append(",".join(str(int(row[c])) if c in integer else f"{row[c]:.6g}" for c in columns))
    return "\n".join(lines) + "\n"


def read_history_csv(text: str) -> list[dict[str, float]]:
    header, *rows = [line for line in text.splitlines() if line.strip()]
    keys = header.split(",")
    return [dict(zip(keys, map(float, r.split(",")), strict=True)) for r in rows]


def ensemble_history(histories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """The members' histories one after the other, each with its own epochs and ``member`` (1, 2, ...).

    Members stop early at different epochs, so they are rows of one long table rather than columns;
    the plots draw one curve per member (.dvc/plots/history.json, :mod:`heartbeat.evaluate.plots`).
    """
    return [{**row, "member": member} for member, history in enumerate(histories, 1) for row in history]
