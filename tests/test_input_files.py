"""Every reader of an input file refuses a missing file, a folder and an empty file with the same
one-line messages (heartbeat/core/errors.py ``input_file``, ``empty_file``), each naming the file and
saying what to do."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from heartbeat.core.beatcsv import read_beats_csv
from heartbeat.core.config import load_params
from heartbeat.core.errors import DataError, HeartbeatError, ParamsError
from heartbeat.core.layout import read_json
from heartbeat.prepare.arrays import load_split
from heartbeat.serve.inputs import read_input
from heartbeat.signal.user_recordings import read_table

READERS: dict[str, tuple[Callable[[Path], object], str, type[HeartbeatError]]] = {
    # name: (read the path, what a missing file's message says to do, the error type)
    "beat csv": (lambda p: read_beats_csv(p), "check the path or rerun the fetch stage", DataError),
    "signal table": (lambda p: read_table(p, 250.0), "check the path", DataError),
    "predict input": (lambda p: read_input(p, kind="npy"), "check the path", DataError),
    "predict input, any kind": (
        read_input,
        r"for a WFDB record give its path without suffix, e\.g\. mitdb/100, with mitdb/100\.hea next to it",
        DataError,
    ),
    "stage json": (
        lambda p: read_json(p, "fetch"),
        r"run the fetch stage first \(dvc repro fetch\)",
        DataError,
    ),
    "params.yaml": (load_params, "run from the project root", ParamsError),
}


@pytest.mark.parametrize("reader", READERS)
def test_a_missing_file_and_a_folder_read_the_same_everywhere(tmp_path: Path, reader: str) -> None:
    read, what_to_do, error = READERS[reader]
    missing = tmp_path / "nope.x"
    with pytest.raises(error, match=rf"^{re.escape(str(missing))}: file not found; {what_to_do}$"):
        read(missing)
    with pytest.raises(error, match=rf"^{re.escape(str(tmp_path))}: is a folder, expected an? [\w .]+$"):
        read(tmp_path)


def test_prepared_arrays_say_which_stage_makes_them(tmp_path: Path) -> None:
    message = rf"^{re.escape(str(tmp_path / 'X_train.npy'))}: file not found; run the preprocess stage first"
    with pytest.raises(DataError, match=message):
        load_split(tmp_path, "train")


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (lambda p: read_beats_csv(p), "at least one row of 188 numbers"),
        (lambda p: read_table(p, 250.0), "rows of samples, one column per lead"),
    ],
)
def test_an_empty_file_reads_the_same_everywhere(tmp_path: Path, read, expected: str) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n \n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: file is empty; expected {expected}$"):
        read(path)
