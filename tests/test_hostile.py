"""Hostile inputs, one class of failure per section (the table is in RELIABILITY.md).

Each class came out of an adversarial pass: a user's file destroyed by ``-o``, a size claimed by an
input and believed, a pipe read twice, a non-finite number passed off as a result, a cache trusted
without validation, a crash's leftovers, a params.yaml that gave a traceback. The tests try each
class with the hostile input itself and with its neighbours, through the public functions, the
``heartbeat`` command and the stage scripts.
"""

from __future__ import annotations

import numpy as np
import pytest

from heartbeat.core.beatcsv import format_beats_csv, read_beats_csv
from heartbeat.core.beats import BEAT_LENGTH
from heartbeat.core.errors import DataError

MIT = (0, 1, 2, 3, 4)


def _rows(n: int = 4, seed: int = 0, labelled: bool = True) -> str:
    rng = np.random.default_rng(seed)
    X = rng.random((n, BEAT_LENGTH)).astype(np.float32)
    return format_beats_csv(X, np.arange(n) % 5 if labelled else None)


# ---------------------------------------------------------------- the CSV validator's format


@pytest.mark.parametrize("engine", ["auto", "pandas"])
@pytest.mark.parametrize("token", ["True", "False", "true", "FALSE", "yes", "0_1", "\u0661", "0x1"])
@pytest.mark.parametrize("where", ["one cell", "a whole sample column", "the whole label column"])
def test_words_and_foreign_spellings_are_not_numbers(tmp_path, engine: str, token: str, where: str) -> None:
    """pandas reads a column of True/False as 1/0 and Python's float() reads 0_1 and Arabic digits:
    none of them is a number in a beat CSV, on either reader."""
    lines = [line.split(",") for line in _rows().splitlines()]
    if where == "one cell":
        lines[2][7] = token
    for row in lines if where != "one cell" else []:
        row[7 if where == "a whole sample column" else BEAT_LENGTH] = token
    path = tmp_path / "beats.csv"
    path.write_text("\n".join(",".join(row) for row in lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row \d+, column \d+: .* is not a number"):
        read_beats_csv(path, MIT, engine=engine)


@pytest.mark.parametrize("labelled", [True, None])
@pytest.mark.parametrize("engine", ["auto", "pandas"])
def test_mixed_row_widths_name_the_row(tmp_path, engine: str, labelled: bool | None) -> None:
    """A file mixing rows with and without a label column: the row that differs from row 1 is named."""
    with_label, without = _rows(3).splitlines(), _rows(3, labelled=False).splitlines()
    path = tmp_path / "mixed.csv"
    path.write_text(
        "\n".join([*without, with_label[0]] if labelled is None else [*with_label, without[1]]) + "\n"
    )
    expected = r"row 4 has 188 columns but row 1 has 187" if labelled is None else r"row 4 has 187 columns"
    with pytest.raises(DataError, match=expected):
        read_beats_csv(path, MIT, labelled=labelled, engine=engine)
