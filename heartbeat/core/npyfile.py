"""Load a ``.npy`` array without believing its header.

A ``.npy`` header states the array's shape and dtype, and ``np.load`` allocates what it states
before reading a byte of data: a 100-byte file that claims a shape of ``(10**12, 187)`` ends in
a MemoryError, or in a machine swapping. Here the header is read first and the bytes it claims
are compared with the bytes the file holds, and with the memory this process has available; only
an array that fits both is loaded. Object arrays
(pickles) are refused as ``np.load(allow_pickle=False)`` would, with a clearer message.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from heartbeat.core.errors import DataError, first_line
from heartbeat.core.memory import available_bytes

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _claimed(fh: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data bytes the header claims) of the open ``.npy`` ``fh``, left after its header."""
    if fh.read(2) == b"PK":
        raise DataError(f"{where}: holds several arrays (a .npz zip?); expected one .npy array")
    fh.seek(0)
    try:
        version = np.lib.format.read_magic(fh)
        reader = _HEADER_READERS.get(version)
        if reader is None:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
        shape, _, dtype = reader(fh)
    except (ValueError, EOFError, SyntaxError) as exc:
        raise DataError(f"{where}: not a valid .npy array ({first_line(exc, 120)})") from None
    if dtype.hasobject:
        raise DataError(f"{where}: holds Python objects (a pickle), not numbers; refusing to load it")
    return tuple(shape), dtype, math.prod(shape) * dtype.itemsize


def load_npy(
    path: str | os.PathLike[str],
    data: bytes | None = None,
    mmap: bool = False,
    where: str | None = None,
    work: float = 1.0,
) -> np.ndarray:
    """The array in ``path`` (or in ``data``, a ``.npy`` already read from a pipe), never pickles.

    Raises :class:`DataError` naming ``where`` (default ``path``) when the file is not a ``.npy``
    array, holds fewer bytes than its header claims, or when reading it (``work`` times its size: the
    caller's copies too) needs more memory than this process has available; ``OSError`` (a missing
    file) is the caller's to explain. ``mmap`` maps a file instead of reading it.
    """
    where = where or str(path)
    with io.BytesIO(data) if data is not None else open(path, "rb") as fh:
        shape, dtype, claimed = _claimed(fh, where)
        start = fh.tell()
        held = len(data) - start if data is not None else os.fstat(fh.fileno()).st_size - start
    if claimed > held:
        raise DataError(
            f"{where}: its header claims an array of shape {shape} ({dtype}, {claimed:,} bytes) but the "
            f"file holds {held:,} bytes of data; it is truncated or damaged"
        )
    available = None if mmap else available_bytes()
    if available is not None and claimed * work > available:
        raise DataError(
            f"{where}: reading this array ({claimed:,} bytes{f', {work:g}x with its copies' if work != 1 else ''}) "
            f"needs more memory than this process has available ({available:,} bytes); give a shorter piece of it"
        )
    try:
        if data is not None:
            return np.load(io.BytesIO(data), allow_pickle=False)
        return np.load(Path(path), allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, EOFError) as exc:
        raise DataError(f"{where}: not a valid .npy array ({first_line(exc, 120)})") from None
