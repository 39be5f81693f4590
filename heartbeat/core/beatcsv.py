"""Read, validate and write beat CSVs in the Kaggle ``shayanfazeli/heartbeat`` format.

Each row is 187 samples in [0, 1] then the label, no header. The original files
write every number as ``%.18e``; re-serialised copies (such as the shared
kaggle-sample) use Python's shortest repr; both may have LF or CRLF line
endings. The fast path parses pieces of the file in parallel threads with
pyarrow's CSV reader (:func:`_read_arrow`); each piece is copied once into the
float32 array that is returned (allocated up front from the file size) and
checked with reductions, so the peak memory stays near the size of that array
(bench/bench_csv.py). What pyarrow refuses goes through pandas' C parser in
chunks of rows, which accepts more spellings of a number, and only when
something is wrong do we re-scan the file line by line, to name the exact row
and problem.

Values outside [0, 1] are rejected, not clipped: every source in this project
normalises beats to [0, 1], so a value outside it means the file is not what it
claims to be (a different normalisation, a shifted column), and training on it
silently would give numbers nobody can compare. ``RANGE_TOLERANCE`` absorbs
float round-off only.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from heartbeat.core.atomic import atomic_path
from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.errors import DataError, empty_file, input_file
from heartbeat.core.streams import display_name, is_stream, read_stream

RANGE_TOLERANCE = 1e-6
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_BOM = b"\xef\xbb\xbf"  # what Excel's "CSV UTF-8" puts first; pandas skips it, so do we
_SNIFF_BYTES = 1 << 16  # well over one row (4,700 bytes in the originals)
_CHUNK_ROWS = 8192  # rows parsed and checked at a time (6 MB of float32): bounds the peak memory
_PIECE_BYTES = (
    4 << 20
)  # text parsed by one thread at a time (pyarrow path, about 900 rows): bounds the peak memory
NUMBER = re.compile(r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
"""A cell that is a number: an ASCII decimal with an optional sign, point and exponent, spaces
around allowed (``0.5``, ``+.5``, ``5e-1``, ``5.000000000000000000e-01``). Nothing else is: not
``True``/``False``, ``NA``, ``1_0``, hex or digits of other scripts, which some parsers read as numbers."""
_NOT_FINITE = frozenset({"nan", "inf", "infinity"})


@dataclass(frozen=True)
class Beats:
    """Beats as float32 samples ``X`` (n, 187) and integer labels ``y`` (n,), or no labels."""

    X: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return int(self.X.shape[0])


@dataclass(frozen=True)
class _Source:
    """Where the CSV's bytes are: a regular file, read in place (``data`` None), or a stream's
    content, read once into ``data``. ``path`` names it in messages."""

    path: Path
    data: bytes | None = None

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")

    def size(self) -> int:
        return len(self.data) if self.data is not None else os.path.getsize(self.path)

    def for_pandas(self) -> Path | BinaryIO:
        return self.path if self.data is None else io.BytesIO(self.data)


def _sniff(source: _Source) -> bytes:
    if source.data is not None:
        return source.data[:_SNIFF_BYTES]
    with (
        input_file(source.path, "a CSV file", "check the path or rerun the fetch stage"),
        open(source.path, "rb") as fh,
    ):
        return fh.read(_SNIFF_BYTES)


def _check_head(path: Path, head: bytes) -> None:
    head = head.removeprefix(_BOM)
    if not head.strip():
        raise empty_file(path, f"at least one row of {BEAT_LENGTH + 1} numbers")
    lowered = head.lstrip()[:512].lower()
    if lowered.startswith((b"<!doctype", b"<html", b"<?xml", b"<")) or b"<html" in lowered:
        raise DataError(
            f"{path}: looks like an HTML page, not a CSV (a saved web page or a login page?); "
            "download the file again, e.g. with the kaggle source"
        )
    first = head.splitlines()[0].decode("utf-8", errors="replace").split(",")[0].strip()
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if sep in first and _is_number(first.split(sep)[0]):
            raise DataError(f"{path}: row 1 is separated by {name}; expected commas, as in the Kaggle CSVs")
    if not _is_number(first) and not _is_non_finite(first):
        raise DataError(
            f"{path}: row 1 starts with {first[:30]!r}, which is not a number; "
            "the file must have no header row (remove it)"
        ) from None


def _is_number(text: str) -> bool:
    return NUMBER.fullmatch(text) is not None


def _is_non_finite(text: str) -> bool:
    return text.strip().lstrip("+-").lower() in _NOT_FINITE


def _diagnose(source: _Source, n_columns: set[int]) -> DataError:
    """Re-scan the file row by row and describe the first bad row precisely."""
    return _first_problem(source, n_columns) or DataError(
        f"{source.path}: could not be parsed as a CSV of "
        f"{' or '.join(str(c) for c in sorted(n_columns))} numeric columns"
    )


def _first_problem(source: _Source, n_columns: set[int]) -> DataError | None:
    """The first row that is blank, of another width than allowed or than row 1, or has a cell that is
    not a finite number within float32 (:data:`NUMBER`); None when every row passes."""
    with io.TextIOWrapper(source.open(), encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        try:
            return _first_bad_row(source.path, reader, n_columns)
        except csv.Error as exc:  # a line the csv module itself refuses (a huge field, ...)
            return DataError(f"{source.path}: row {max(reader.line_num, 1)} is not a valid CSV row ({exc})")


def _first_bad_row(path: Path, reader: Iterator[list[str]], n_columns: set[int]) -> DataError | None:
    expected = " or ".join(str(c) for c in sorted(n_columns))
    width = None
    for row_no, row in enumerate(reader, start=1):
        if not row:
            return DataError(f"{path}: row {row_no} is blank; remove blank lines")
        if len(row) not in n_columns:
            return DataError(f"{path}: row {row_no} has {len(row)} columns, expected {expected}")
        if width is not None and len(row) != width:
            return DataError(
                f"{path}: row {row_no} has {len(row)} columns but row 1 has {width}; every row must have "
                "the same columns (187 samples, then the label in every row or in none)"
            )
        width = len(row) if width is None else width
        for col_no, cell in enumerate(row, start=1):
            if _is_non_finite(cell) or (_is_number(cell) and not math.isfinite(float(cell))):
                return DataError(
                    f"{path}: row {row_no}, column {col_no}: {cell.strip()!r} is not a finite number"
                )
            if not _is_number(cell):
                return DataError(
                    f"{path}: row {row_no}, column {col_no}: {cell.strip()[:30]!r} is not a number"
                )
            if abs(float(cell)) > _FLOAT32_MAX:
                return DataError(
                    f"{path}: row {row_no}, column {col_no}: {cell.strip()[:30]!r} is out of range "
                    "(samples must be in [0, 1], labels class numbers)"
                )
    return None


def read_beats_csv(
    path: str | os.PathLike[str],
    allowed_labels: tuple[int, ...] | None = None,
    labelled: bool | None = True,
    engine: str = "auto",
    data: bytes | None = None,
) -> Beats:
    """Read and validate a beat CSV.

    ``labelled=True`` requires 188 columns, ``False`` requires 187 (samples only)
    and ``None`` accepts either, as ``heartbeat predict`` does. ``allowed_labels``
    restricts the label set (for example ``(0,)`` for ptbdb_normal.csv).
    ``engine="pandas"`` skips the pyarrow path (benchmarks and tests compare the two).
    ``data`` is the file's content when the caller has already read it; a ``path`` that
    is a pipe (``-``, ``/dev/stdin``, a process substitution) is read once, whole
    (:func:`heartbeat.core.streams.read_stream`), since it cannot be opened twice.
    Raises :class:`DataError` naming the file, row and problem.
    """
    if engine not in ("auto", "pandas"):
        raise ValueError(f"engine must be 'auto' or 'pandas', got {engine!r}")
    if data is None and is_stream(path):
        data = read_stream(path)
    source = _Source(display_name(path), data)
    head = _sniff(source)
    width = check_start(source.path, head, labelled)
    n_columns = _columns(labelled)
    fast = _read_arrow(source, head, width, n_columns, allowed_labels) if engine == "auto" else None
    if fast is not None:
        return fast
    try:
        # No dtype first: pandas' own inference takes its fastest path (a quarter faster than
        # dtype=float32 here), and each chunk is cast to float32 whole.
        return _read_chunks(source, head, width, n_columns, allowed_labels, dtype=None)
    except _NotNumeric:
        # A column it does not infer as numbers: text, true/false, an integer beyond 64 bits.
        # dtype=float32 would read a column of true/false as 1 and 0, so the row scan decides
        # first what is a number (NUMBER); only a file that passes it is converted that way.
        problem = _first_problem(source, n_columns)
        if problem is not None:
            raise problem from None
        return _read_chunks(source, head, width, n_columns, allowed_labels, dtype=np.float32)


def _columns(labelled: bool | None) -> set[int]:
    if labelled is None:
        return {BEAT_LENGTH, BEAT_LENGTH + 1}
    return {BEAT_LENGTH + 1} if labelled else {BEAT_LENGTH}


def check_start(name: str | os.PathLike[str], head: bytes, labelled: bool | None = True) -> int:
    """Check the first bytes of a beat CSV (its first row at least) as :func:`read_beats_csv` does, and
    return the number of columns of row 1; a :class:`DataError` naming ``name`` if it cannot be one.

    For code that streams a CSV from elsewhere (an archive) and wants to stop at the first megabyte
    of something that is not one, rather than after the whole of it.
    """
    head = head[:_SNIFF_BYTES]
    _check_head(Path(name), head)
    n_columns = _columns(labelled)
    width = head.splitlines()[0].decode("utf-8", errors="replace").count(",") + 1
    if width not in n_columns:
        raise DataError(
            f"{name}: row 1 has {width} columns, expected {' or '.join(map(str, sorted(n_columns)))}"
        )
    return width


class _NotNumeric(Exception):
    """A chunk read without a dtype has a column that is not ints or floats."""


class _Collector:
    """Validated float32 chunks of ``width`` columns, copied into one preallocated array.

    Precedence as for one whole-file check: any unparsable or non-finite cell anywhere wins
    (raised at once), then the first value out of range, then the first bad label.
    """

    def __init__(
        self, source: _Source, head: bytes, width: int, n_columns: set[int], allowed: tuple[int, ...] | None
    ) -> None:
        self.source, self.path, self.n_columns, self.allowed = source, source.path, n_columns, allowed
        self.X = np.empty((_row_estimate(source, head, width), BEAT_LENGTH), np.float32)
        self.y = np.empty(len(self.X), np.int64) if width == BEAT_LENGTH + 1 else None
        self.n = 0
        self.out_of_range: DataError | None = None
        self.bad_label: DataError | None = None

    def add(self, data: np.ndarray, stats: tuple[float, float, bool] | None = None) -> None:
        """Check and keep ``data``; ``stats`` is its :func:`_chunk_stats` if already computed."""
        n, k = self.n, len(data)
        if n + k > len(self.X):
            self.X, self.y = _grow(self.X, self.y, n + k)
        self.X[n : n + k] = data[:, :BEAT_LENGTH]
        chunk = self.X[n : n + k]
        labels = data[:, BEAT_LENGTH] if self.y is not None else None
        low, high, labels_finite = stats or _chunk_stats(data, self.y is not None)
        if not (np.isfinite(low) and np.isfinite(high) and labels_finite):
            # A short row shows up as NaN padding; the row scan says which it was.
            raise _diagnose(self.source, self.n_columns)
        if self.out_of_range is None and (low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE):
            self.out_of_range = _range_error(self.path, chunk, n)
        if labels is not None:
            self.y[n : n + k] = labels
            if self.bad_label is None:
                self.bad_label = _label_error(self.path, labels, self.y[n : n + k], n, self.allowed)
        self.n += k

    def result(self) -> Beats:
        if self.out_of_range is not None:
            raise self.out_of_range
        if self.bad_label is not None:
            raise self.bad_label
        X, y = self.X, self.y
        if self.n < len(X):  # the estimate was high: give the unused tail back (realloc, no copy)
            X.resize((self.n, BEAT_LENGTH), refcheck=False)
            if y is not None:
                y.resize(self.n, refcheck=False)
        return Beats(X=X, y=y)


def _chunk_stats(data: np.ndarray, labelled: bool) -> tuple[float, float, bool]:
    """Min and max sample (NaN propagates: no mask the size of the chunk), and whether labels are finite."""
    samples = data[:, :BEAT_LENGTH]
    finite = bool(np.isfinite(data[:, BEAT_LENGTH]).all()) if labelled else True
    return float(samples.min()), float(samples.max()), finite


class _NotArrowReadable(Exception):
    """pyarrow refused a piece (or found an empty cell): the pandas path reads and diagnoses it."""


def _read_arrow(
    source: _Source, head: bytes, width: int, n_columns: set[int], allowed: tuple[int, ...] | None
) -> Beats | None:
    """Parse pieces of the file on all cores with pyarrow's CSV reader; None if pyarrow cannot.

    pandas' parser runs on one core at about 750 MB/s here, a third of the speed of reading
    the bytes; pyarrow releases the GIL, so pieces of the file (whole rows each) parse in
    parallel threads and are checked and copied in order as they finish. Only a few pieces
    are in flight, so the peak memory stays near the returned array's size.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    convert = pacsv.ConvertOptions(column_types={f"f{i}": pa.float64() for i in range(width)})
    pool = _arrow_pool(pa)

    def parse(piece: memoryview) -> tuple[np.ndarray, tuple[float, float, bool]]:
        read = pacsv.ReadOptions(
            autogenerate_column_names=True, use_threads=False, block_size=max(len(piece), 1 << 16)
        )
        try:
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(piece)),
                read_options=read,
                convert_options=convert,
                memory_pool=pool,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _NotArrowReadable from None
        if table.num_columns != width:
            raise _NotArrowReadable
        data = np.empty((table.num_rows, width), np.float32)
        with np.errstate(over="ignore"):  # beyond float32: inf, which the checks report
            for i, column in enumerate(table.columns):
                if column.null_count:
                    raise _NotArrowReadable
                data[:, i] = column.to_numpy()  # parsed as float64, rounded to float32 as pandas' path
        return data, _chunk_stats(data, width == BEAT_LENGTH + 1)

    out = _Collector(source, head, width, n_columns, allowed)
    workers = _cores()
    # Reused text buffers, one per piece in flight plus the one being read: the peak memory
    # stays the output array plus a few pieces (fresh allocations would pile up in malloc's arenas).
    buffers = [bytearray(_PIECE_BYTES) for _ in range(workers + 1)]
    pending: deque[Future[tuple[np.ndarray, tuple[float, float, bool]]]] = deque()
    try:
        with ThreadPoolExecutor(workers) as threads:
            try:
                for piece in _pieces(source, buffers):
                    pending.append(threads.submit(parse, piece))
                    if len(pending) >= workers:
                        out.add(*pending.popleft().result())
                while pending:
                    out.add(*pending.popleft().result())
            finally:
                for future in pending:
                    future.cancel()
    except _NotArrowReadable:
        return None
    return out.result()


def _arrow_pool(pa: Any) -> Any:
    """mimalloc's pool: it hands freed pieces back at once (jemalloc's default keeps them a while
    and malloc's per-thread arenas keep them), so the peak memory stays under 2x the output."""
    try:
        return pa.mimalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without mimalloc
        return pa.default_memory_pool()


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _pieces(source: _Source, buffers: list[bytearray]) -> Iterator[memoryview]:
    """The file in pieces that each end at a line end (the BOM removed), read into ``buffers`` in turn.

    A piece's unfinished last row is read again with the next piece (a seek back, not a copy). The
    caller must be done with a buffer's piece before it comes round again, ``len(buffers)`` pieces on.
    """
    pos = 0
    with source.open() as fh:
        for turn in itertools.count():
            buf = memoryview(buffers[turn % len(buffers)])
            size = fh.readinto(buf)
            if not size:
                return
            block = buf[:size]
            start = len(_BOM) if pos == 0 and bytes(block[: len(_BOM)]) == _BOM else 0
            if size < len(buf):  # the last piece
                tail = block[start:]
                if bytes(tail[-1:]) not in (b"\n", b""):  # pyarrow cannot read one row without a line end
                    tail = memoryview(bytes(tail) + b"\n")
                if bytes(tail).strip():
                    yield tail
                return
            cut = bytes(block[-_SNIFF_BYTES:]).rfind(b"\n") + 1
            if cut == 0:  # a row longer than _SNIFF_BYTES: not a beat file; pandas' path says why
                raise _NotArrowReadable
            cut += size - min(size, _SNIFF_BYTES)
            yield block[start:cut]
            pos += cut
            fh.seek(pos)


def _read_chunks(
    source: _Source,
    head: bytes,
    width: int,
    n_columns: set[int],
    allowed_labels: tuple[int, ...] | None,
    dtype: type | None,
) -> Beats:
    out = _Collector(source, head, width, n_columns, allowed_labels)
    try:
        with (
            warnings.catch_warnings(),
            pd.read_csv(
                source.for_pandas(), header=None, dtype=dtype, engine="c", chunksize=_CHUNK_ROWS
            ) as chunks,
        ):
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # mixed columns: see _NotNumeric
            for frame in chunks:
                if frame.shape[1] != width:
                    raise _diagnose(source, n_columns)
                if dtype is None and any(dt.kind not in "iuf" for dt in frame.dtypes):
                    raise _NotNumeric  # text, and true/false, which pandas reads as booleans
                data = frame.to_numpy(dtype=np.float32, copy=False)
                del frame
                out.add(data)
                del data
    except (ValueError, OverflowError, pd.errors.ParserError):
        raise _diagnose(source, n_columns) from None
    return out.result()


def _row_estimate(source: _Source, head: bytes, width: int) -> int:
    """Rows to allocate up front: exact for fixed-width rows (the ``%.18e`` originals), else a guess.

    A low guess costs a reallocation (:func:`_grow`); a high one costs nothing, since pages never
    written are never touched and the tail is cut off at the end. The guess from the first bytes is
    never believed beyond what the file can hold: a row of ``width`` cells takes at least
    ``2 * width`` bytes (one digit and a comma or line end each), so a file that starts with a run
    of blank lines cannot make it allocate more than twice its own size.
    """
    size = source.size()
    if size <= len(head):
        return max(1, head.count(b"\n") + 1)
    lines = head.count(b"\n")
    mean = head.rfind(b"\n") / max(lines, 1)
    guess = int(size / max(mean, 1.0) * 1.01) + _CHUNK_ROWS
    return min(guess, size // (2 * width) + 1)


def _grow(X: np.ndarray, y: np.ndarray | None, needed: int) -> tuple[np.ndarray, np.ndarray | None]:
    rows = max(needed, int(len(X) * 1.25))
    X.resize((rows, BEAT_LENGTH), refcheck=False)  # the caller holds no view of X or y here
    if y is not None:
        y.resize(rows, refcheck=False)
    return X, y


def _range_error(path: Path, X: np.ndarray, offset: int) -> DataError | None:
    out = (X < -RANGE_TOLERANCE) | (X > 1 + RANGE_TOLERANCE)
    if not out.any():
        return None
    row, col = np.argwhere(out)[0]
    return DataError(
        f"{path}: row {offset + row + 1}, column {col + 1}: value {X[row, col]:.6g} is outside [0, 1]; "
        "beats must be normalised to [0, 1] as in the Kaggle set"
    )


def _label_error(
    path: Path, labels: np.ndarray, as_int: np.ndarray, offset: int, allowed: tuple[int, ...] | None
) -> DataError | None:
    not_int = as_int != labels
    if allowed is not None:
        not_int |= ~np.isin(as_int, np.asarray(allowed))
    if not not_int.any():
        return None
    row = int(np.argmax(not_int))
    expected = ", ".join(str(a) for a in allowed) if allowed is not None else "an integer"
    return DataError(
        f"{path}: row {offset + row + 1}, column {BEAT_LENGTH + 1}: label {labels[row]:g} is not in the "
        f"class set (expected {expected})"
    )


def format_beats_csv(X: np.ndarray, y: np.ndarray | None) -> str:
    """Format rows exactly like the Kaggle originals: ``%.18e``, comma-separated, LF.

    The output is byte for byte what ``np.savetxt(fmt="%.18e")`` writes (tests/test_perf_paths.py
    checks it); :func:`_format_e18` computes it with array arithmetic, several times faster, and
    ``savetxt`` itself is kept for what that cannot format (negative or non-finite values).
    """
    data = np.asarray(X, dtype=np.float64)
    if y is not None:
        data = np.column_stack([data, np.asarray(y, dtype=np.float64)])
    if data.ndim == 2 and data.size:
        fast = _format_e18(data)
        if fast is not None:
            return fast.decode("ascii")
    buf = io.StringIO()
    np.savetxt(buf, data, fmt="%.18e", delimiter=",", newline="\n")
    return buf.getvalue()


# ``%.18e`` without Python's per-number formatting. A float32 value v = M * 2**e (M < 2**24), as
# every beat sample is, times 10**q is M * 5**q / 2**s: with q <= 27 (v >= 1e-9), 5**q fits 63 bits,
# so the 19 significant digits are an exact integer division, rounded half to even as printf and
# Python do. Other cells (float64-only values, tiny ones) go through Python's formatting, once per
# distinct value.
_E18_MIN, _E18_MAX = 1e-9, 100.0
_P10 = np.array([10.0**k for k in range(-12, 4)])  # compares exactly with float32 values (none is 10**k)
_P10_OFFSET = 12
_POW5 = np.array([5**q for q in range(28)], dtype=np.uint64)
_DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), np.uint8).reshape(-1, 4)
_E18_ZERO = np.frombuffer(b"0.000000000000000000e+00", np.uint8)
_E18_ROWS = 2048  # rows formatted at a time: the temporaries stay in cache


def _e18_cells(v: np.ndarray) -> np.ndarray:
    """``'%.18e' % x`` as 24 ASCII bytes per value, for float64 values that are float32 in [1e-9, 100)."""
    mant, exp = np.frexp(v)
    exp = exp.astype(np.int64)
    M = (mant * (1 << 24)).astype(np.uint64)  # v = M * 2**(exp - 24)
    d = ((exp - 1) * 1233) >> 12  # floor(log10(2**(exp - 1))): floor(log10(v)) is d or d + 1
    d += v >= _P10[d + 1 + _P10_OFFSET]
    q = 18 - d  # v * 10**q in [1e18, 1e19)
    s = (6 + d - exp).astype(np.uint64)  # v * 10**q = M * 5**q / 2**s, 0 <= s <= 26
    p5 = _POW5[q]
    low = M * (p5 & np.uint64(0xFFFFFFFF))  # < 2**56
    N = ((M * (p5 >> np.uint64(32))) << (np.uint64(32) - s)) + (low >> s)
    rem = low & ((np.uint64(1) << s) - np.uint64(1))
    half = (np.uint64(1) << s) >> np.uint64(1)
    N += (s > 0) & ((rem > half) | ((rem == half) & (N & np.uint64(1) == 1)))
    carry = N == np.uint64(10**19)  # 9.99...95 rounds up to 1.000...e(d+1)
    N[carry] = np.uint64(10**18)
    d += carry
    out = np.empty((v.size, 24), np.uint8)
    first = N // np.uint64(10**18)
    r = N - first * np.uint64(10**18)
    hi9 = (r // np.uint64(10**9)).astype(np.int64)
    lo9 = (r - hi9.astype(np.uint64) * np.uint64(10**9)).astype(np.int64)
    out[:, 0] = first + 48
    out[:, 1] = 46  # .
    out[:, 2:4] = _DIGITS4[hi9 // 10**7, 2:]
    out[:, 4:8] = _DIGITS4[(hi9 // 1000) % 10_000]
    out[:, 8:11] = _DIGITS4[hi9 % 1000, 1:]
    out[:, 11:12] = _DIGITS4[lo9 // 10**8, 3:]
    out[:, 12:16] = _DIGITS4[(lo9 // 10_000) % 10_000]
    out[:, 16:20] = _DIGITS4[lo9 % 10_000]
    out[:, 20] = 101  # e
    out[:, 21] = np.where(d < 0, 45, 43)  # - or +
    out[:, 22:24] = _DIGITS4[np.abs(d), 2:]
    return out


def _format_e18(data: np.ndarray) -> bytes | None:
    """The ``savetxt`` text of 2-D float64 ``data`` as bytes, or None when a cell is not 24 characters."""
    n, m = data.shape
    text = np.empty((n, m, 25), np.uint8)
    text[:, :, 24] = 44  # ,
    text[:, -1, 24] = 10  # \n
    for start in range(0, n, _E18_ROWS):
        flat = np.ascontiguousarray(data[start : start + _E18_ROWS]).reshape(-1)
        cells = text[start : start + _E18_ROWS].reshape(-1, 25)
        with np.errstate(over="ignore"):  # float64 values beyond float32 range are not fast anyway
            fast = (flat >= _E18_MIN) & (flat < _E18_MAX) & (flat.astype(np.float32) == flat)
        if fast.all():
            cells[:, :24] = _e18_cells(flat)
            continue
        cells[:, :24] = _e18_cells(np.where(fast, flat, 1.0))
        zero = (flat == 0) & ~np.signbit(flat)
        cells[zero, :24] = _E18_ZERO
        rest = ~(fast | zero)
        if rest.any():
            uniq, inverse = np.unique(flat[rest].view(np.uint64), return_inverse=True)
            texts = [f"{v:.18e}" for v in uniq.view(np.float64).tolist()]
            if any(len(t) != 24 for t in texts):  # negative, non-finite, or an exponent of 3 digits
                return None
            table = np.frombuffer("".join(texts).encode("ascii"), np.uint8).reshape(-1, 24)
            cells[rest, :24] = table[inverse]
    return text.tobytes()


def write_beats_csv(path: str | os.PathLike[str], X: np.ndarray, y: np.ndarray | None) -> None:
    """Write beats atomically in the Kaggle format (see :func:`format_beats_csv`)."""
    if len(X) == 0:
        raise DataError(f"{path}: refusing to write an empty beat file; the source produced no rows")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            fh.write(format_beats_csv(X, y))
