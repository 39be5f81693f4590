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
    """The members' histories one after the other, ``epoch`` counting on and ``member`` saying whose.

    Why not one row per epoch: members stop early at different epochs, and a running epoch count keeps
    ``epoch`` a unique x for DVC's linear plot template.
    """
    rows, offset = [], 0
    for member, history in enumerate(histories):
        rows += [{**row, "epoch": row["epoch"] + offset, "member": member} for row in history]
        offset += len(history)
    return rows
