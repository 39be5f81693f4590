"""The CSV reader and validator, on real Kaggle rows and on the original %.18e format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import format_beats_csv, read_beats_csv, write_beats_csv
from heartbeat.core.errors import DataError
from heartbeat.core.layout import FILE_CLASSES
from tests.conftest import shared_dir

MIT = (0, 1, 2, 3, 4)


def _rows(n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, BEAT_LENGTH)).astype(np.float32)
    X[:, -20:] = 0.0
    y = np.arange(n) % 5
    return X, y


def test_reads_real_kaggle_sample_rows() -> None:
    folder = shared_dir("kaggle-sample")
    train = read_beats_csv(folder / "mitbih_train_sample.csv", MIT)
    assert train.X.shape == (500, BEAT_LENGTH) and train.X.dtype == np.float32
    assert sorted(np.unique(train.y)) == [0, 1, 2, 3, 4]
    assert np.bincount(train.y).tolist() == [100, 100, 100, 100, 100]
    normal = read_beats_csv(folder / "ptbdb_normal_sample.csv", FILE_CLASSES["ptbdb_normal.csv"])
    abnormal = read_beats_csv(folder / "ptbdb_abnormal_sample.csv", FILE_CLASSES["ptbdb_abnormal.csv"])
    assert len(normal) == len(abnormal) == 100
    assert (normal.y == 0).all() and (abnormal.y == 1).all()
    assert train.X.min() >= 0 and train.X.max() <= 1


def test_kaggle_sample_round_trips_through_original_format(tmp_path: Path) -> None:
    """Re-serialising real rows as %.18e with CRLF must give the same float32 values."""
    folder = shared_dir("kaggle-sample")
    real = read_beats_csv(folder / "mitbih_test_sample.csv", MIT)
    text = format_beats_csv(real.X, real.y)
    assert len(text.splitlines()[0]) + 1 == 4700  # the originals' row width
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    again = read_beats_csv(crlf, MIT)
    np.testing.assert_array_equal(again.X, real.X)
    np.testing.assert_array_equal(again.y, real.y)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_original_format_with_lf_and_crlf(tmp_path: Path, newline: str) -> None:
    X, y = _rows()
    path = tmp_path / "beats.csv"
    path.write_bytes(format_beats_csv(X, y).replace("\n", newline).encode())
    beats = read_beats_csv(path, MIT)
    np.testing.assert_array_equal(beats.X, X)
    np.testing.assert_array_equal(beats.y, y)


def test_write_is_exact_kaggle_format(tmp_path: Path) -> None:
    X, y = _rows(3)
    write_beats_csv(tmp_path / "b.csv", X, y)
    line = (tmp_path / "b.csv").read_text().splitlines()[0]
    cells = line.split(",")
    assert len(cells) == BEAT_LENGTH + 1
    assert cells[-1] == "0.000000000000000000e+00"
    assert all(len(c) == 24 for c in cells)


def test_unlabelled_rows_are_accepted_when_asked(tmp_path: Path) -> None:
    X, _ = _rows()
    path = tmp_path / "x.csv"
    path.write_text(format_beats_csv(X, None))
    beats = read_beats_csv(path, labelled=None)
    assert beats.y is None and beats.X.shape == X.shape
    with pytest.raises(DataError, match="row 1 has 187 columns, expected 188"):
        read_beats_csv(path, MIT)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _good_lines(n: int = 6) -> list[str]:
    X, y = _rows(n)
    return format_beats_csv(X, y).splitlines()


def test_truncated_row_names_file_and_row(tmp_path: Path) -> None:
    lines = _good_lines()
    lines[3] = ",".join(lines[3].split(",")[:100])
    path = _write_lines(tmp_path / "t.csv", lines)
    with pytest.raises(DataError, match=r"t\.csv: row 4 has 100 columns, expected 188"):
        read_beats_csv(path, MIT)


def test_extra_column_names_row(tmp_path: Path) -> None:
    lines = _good_lines()
    lines[2] += ",0.5"
    with pytest.raises(DataError, match="row 3 has 189 columns"):
        read_beats_csv(_write_lines(tmp_path / "e.csv", lines), MIT)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [("nan", "not a finite number"), ("inf", "not a finite number"), ("abc", "not a number")],
)
def test_bad_cell_names_row_and_column(tmp_path: Path, cell: str, problem: str) -> None:
    lines = _good_lines()
    cells = lines[4].split(",")
    cells[10] = cell
    lines[4] = ",".join(cells)
    with pytest.raises(DataError, match=f"row 5, column 11: .*{problem}"):
        read_beats_csv(_write_lines(tmp_path / "n.csv", lines), MIT)


def test_label_outside_class_set(tmp_path: Path) -> None:
    lines = _good_lines()
    cells = lines[1].split(",")
    cells[-1] = "7.0"
    lines[1] = ",".join(cells)
    with pytest.raises(
        DataError, match=r"row 2, column 188: label 7 is not in the class set \(expected 0, 1, 2, 3, 4\)"
    ):
        read_beats_csv(_write_lines(tmp_path / "l.csv", lines), MIT)


def test_label_of_wrong_file_class(tmp_path: Path) -> None:
    X, _ = _rows(4)
    path = tmp_path / "ptbdb_normal.csv"
    path.write_text(format_beats_csv(X, np.array([0, 0, 1, 0])))
    with pytest.raises(DataError, match="row 3.*label 1.*expected 0"):
        read_beats_csv(path, FILE_CLASSES["ptbdb_normal.csv"])


def test_value_out_of_range_is_rejected(tmp_path: Path) -> None:
    X, y = _rows()
    X[2, 5] = 1.5
    path = tmp_path / "r.csv"
    path.write_text(format_beats_csv(X, y))
    with pytest.raises(DataError, match=r"row 3, column 6: value 1.5 is outside \[0, 1\]"):
        read_beats_csv(path, MIT)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty.csv: file is empty"):
        read_beats_csv(path, MIT)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: file not found"):
        read_beats_csv(tmp_path / "nope.csv", MIT)


def test_header_row(tmp_path: Path) -> None:
    lines = [",".join(f"c{i}" for i in range(188)), *_good_lines()]
    with pytest.raises(DataError, match="row 1 starts with 'c0'.*no header row"):
        read_beats_csv(_write_lines(tmp_path / "h.csv", lines), MIT)


def test_html_page(tmp_path: Path) -> None:
    path = tmp_path / "mitbih_train.csv"
    path.write_text("<!DOCTYPE html>\n<html><head><title>Kaggle</title></head><body>Sign in</body></html>\n")
    with pytest.raises(DataError, match="looks like an HTML page"):
        read_beats_csv(path, MIT)


def test_refuses_to_write_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        write_beats_csv(tmp_path / "x.csv", np.zeros((0, BEAT_LENGTH)), np.zeros(0))
    assert not list(tmp_path.iterdir())
