"""The fast paths give the same results as the plain ones (no timing here: see bench/).

- ``read_beats_csv`` reads in chunks into a preallocated array: the arrays equal one plain
  ``pd.read_csv`` of the file, across chunk boundaries, a low row estimate and CRLF, and errors keep
  the precedence of a whole-file check.
- ``format_beats_csv`` formats ``%.18e`` with array arithmetic: byte for byte ``np.savetxt``.
- ``save_model`` writes the same bytes for the same model (no save date in the archive).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import heartbeat.core.beatcsv as csvio
from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import format_beats_csv, read_beats_csv
from heartbeat.core.errors import DataError
from testkit.csv_baseline import format_beats_csv_before
from tests.conftest import examples

MIT = (0, 1, 2, 3, 4)


def _beats(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, BEAT_LENGTH)).astype(np.float32)
    X[:, -30:] = 0.0  # the zero padding of real beats
    X[::7, 3] = 1.0
    return X, np.arange(n) % 5


def _plain(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
    return data[:, :BEAT_LENGTH], data[:, BEAT_LENGTH].astype(np.int64)


# ---------------------------------------------------------------- reader


@pytest.fixture(params=["arrow", "pandas"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each reader test runs on both paths: pyarrow in pieces of 1.5 rows, and pandas' chunks."""
    if request.param == "arrow":
        monkeypatch.setattr(csvio, "_PIECE_BYTES", 7000)
    else:
        monkeypatch.setattr(csvio, "_read_arrow", lambda *args: None)
    return request.param


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 8192])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_chunked_reader_equals_plain_read_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str, chunk_rows: int, newline: str
) -> None:
    monkeypatch.setattr(csvio, "_CHUNK_ROWS", chunk_rows)
    X, y = _beats(50)
    path = tmp_path / "b.csv"
    path.write_bytes(format_beats_csv(X, y).replace("\n", newline).encode())
    beats = read_beats_csv(path, MIT)
    plain_X, plain_y = _plain(path)
    np.testing.assert_array_equal(beats.X, plain_X)
    np.testing.assert_array_equal(beats.y, plain_y)
    np.testing.assert_array_equal(beats.X, X)
    assert beats.X.dtype == np.float32 and beats.X.flags.c_contiguous and beats.X.shape == (50, BEAT_LENGTH)
    assert beats.y.dtype == np.int64 and beats.y.shape == (50,)


def test_low_row_estimate_grows_the_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    monkeypatch.setattr(csvio, "_CHUNK_ROWS", 4)
    monkeypatch.setattr(csvio, "_row_estimate", lambda *args: 1)
    X, y = _beats(23, seed=1)
    path = tmp_path / "b.csv"
    path.write_text(format_beats_csv(X, y))
    beats = read_beats_csv(path, MIT)
    np.testing.assert_array_equal(beats.X, X)
    np.testing.assert_array_equal(beats.y, y)


def test_unlabelled_and_shortest_repr_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    monkeypatch.setattr(csvio, "_CHUNK_ROWS", 3)
    X, _ = _beats(10, seed=2)
    path = tmp_path / "x.csv"
    path.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in X))
    beats = read_beats_csv(path, labelled=None)
    assert beats.y is None
    np.testing.assert_array_equal(beats.X, pd.read_csv(path, header=None, dtype=np.float32).to_numpy())


def _lines(n: int = 20) -> list[str]:
    X, y = _beats(n, seed=3)
    return format_beats_csv(X, y).splitlines()


def _set(lines: list[str], row: int, col: int, cell: str) -> None:
    cells = lines[row].split(",")
    cells[col] = cell
    lines[row] = ",".join(cells)


def test_errors_keep_whole_file_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    """A bad label early, a value out of range later, a NaN last: the NaN wins, then the range."""
    monkeypatch.setattr(csvio, "_CHUNK_ROWS", 4)
    lines = _lines()
    _set(lines, 1, BEAT_LENGTH, "7.0")
    _set(lines, 9, 5, "1.5")
    _set(lines, 17, 2, "nan")
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 18, column 3: 'nan' is not a finite number"):
        read_beats_csv(path, MIT)
    _set(lines, 17, 2, "0.5")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 10, column 6: value 1.5 is outside \[0, 1\]"):
        read_beats_csv(path, MIT)
    _set(lines, 9, 5, "0.5")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 2, column 188: label 7 is not in the class set"):
        read_beats_csv(path, MIT)


def test_row_numbers_count_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    monkeypatch.setattr(csvio, "_CHUNK_ROWS", 4)
    lines = _lines()
    lines[13] = ",".join(lines[13].split(",")[:100])
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 14 has 100 columns, expected 188"):
        read_beats_csv(path, MIT)


@pytest.mark.parametrize("piece", [7000, 4700 * 3, 1 << 20])
def test_arrow_pieces_equal_plain_read_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    """Pieces that end mid-row, on a row end, or hold the whole file; with a BOM, CRLF, no final newline."""
    monkeypatch.setattr(csvio, "_PIECE_BYTES", piece)
    calls = []
    real = csvio._read_arrow
    monkeypatch.setattr(csvio, "_read_arrow", lambda *a: calls.append(real(*a)) or calls[-1])
    X, y = _beats(40, seed=6)
    text = format_beats_csv(X, y)
    for raw in (text.encode(), b"\xef\xbb\xbf" + text.encode(), text.replace("\n", "\r\n").encode()[:-2]):
        path = tmp_path / "a.csv"
        path.write_bytes(raw)
        beats = read_beats_csv(path, MIT)
        assert calls[-1] is not None, "the pyarrow path did not read the file"
        np.testing.assert_array_equal(beats.X, X)
        np.testing.assert_array_equal(beats.y, y)


@pytest.mark.parametrize("cell", [" 0.5", "0.5 ", "5e-1", "+0.5", ".5", '"0.5"'])
def test_spellings_pyarrow_refuses_fall_back_to_pandas(tmp_path: Path, cell: str) -> None:
    """Whatever pandas accepts still reads, by either path, to the value pandas gives."""
    lines = _lines(6)
    _set(lines, 3, 10, cell)
    path = tmp_path / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    beats = read_beats_csv(path, MIT)
    plain_X, plain_y = _plain(path)
    np.testing.assert_array_equal(beats.X, plain_X)
    np.testing.assert_array_equal(beats.y, plain_y)
    assert beats.X[3, 10] == np.float32(0.5)


# ---------------------------------------------------------------- writer


def test_formatter_matches_savetxt_on_beats() -> None:
    X, y = _beats(300, seed=4)
    assert format_beats_csv(X, y) == format_beats_csv_before(X, y)
    assert format_beats_csv(X, None) == format_beats_csv_before(X, None)


def test_formatter_matches_savetxt_on_edge_values() -> None:
    rng = np.random.default_rng(5)
    near_powers = np.concatenate(
        [
            np.arange(np.float32(10.0**k).view(np.uint32) - 50, np.float32(10.0**k).view(np.uint32) + 50)
            .astype(np.uint32)
            .view(np.float32)
            for k in range(-11, 3)
        ]
    )
    wide = rng.integers(1, np.float32(3e38).view(np.uint32), 20_000, dtype=np.uint32).view(np.float32)
    for values in (
        near_powers.astype(np.float64),
        wide.astype(np.float64),
        rng.random(5000),  # float64, not float32: the per-value path
        np.array([0.0, 1.0, 4.0, 99.99999, 100.0, 1e-9, 9.9e-10, 1e-300, 5e-324, 0.1, 1 / 3, 2.0**-126]),
    ):
        data = values[: values.size // 4 * 4].reshape(-1, 4)
        assert format_beats_csv(data, None) == format_beats_csv_before(data, None)


@pytest.mark.parametrize("special", [-0.0, -0.5, np.nan, np.inf, 1e-120])
def test_formatter_falls_back_toformat_beats_csv_before(special: float) -> None:
    """Cells that are not 24 characters (a sign, nan, a 3-digit exponent) take savetxt's path."""
    X = np.full((2, 3), 0.25)
    X[1, 1] = special
    assert format_beats_csv(X, None) == format_beats_csv_before(X, None)


@settings(max_examples=examples(60))
@given(
    X=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 8), st.integers(1, 12)),
        elements=st.floats(0, 1, width=32) | st.floats(2.0**-40, 1024.0, width=32),
    )
)
def test_formatter_matches_savetxt_property(X: np.ndarray) -> None:
    assert format_beats_csv(X, None) == format_beats_csv_before(X, None)


# ---------------------------------------------------------------- model files


def test_model_save_is_byte_deterministic(tmp_path: Path) -> None:
    """Two trainings with the same result save the same bytes, as two processes would."""
    import keras

    from heartbeat.model.architectures import build_resnet
    from heartbeat.model.saving import load_model, save_model
    from heartbeat.train.fit import make_deterministic

    def build() -> keras.Model:
        # A fresh dtype policy object, at another address, as in another process: Keras writes
        # that address into config.json (shared_object_id).
        keras.mixed_precision.set_global_policy("float32")
        make_deterministic(0)
        return build_resnet(5, filters=4, blocks=1, dense=4)

    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    model = build()
    save_model(model, a)
    save_model(build(), b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert json.loads(zf.read("metadata.json"))["date_saved"] == "1980-01-01@00:00:00"
    loaded = load_model(a, 5)  # safe_mode=True
    x = np.random.default_rng(0).random((3, BEAT_LENGTH)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
