"""Inputs that can be read only once: a pipe, ``/dev/stdin``, ``-``, a process substitution.

A reader that opens a file twice (to sniff its first bytes, then to parse it) silently loses
what the first open consumed when the "file" is a pipe. Such inputs are read here, once and
whole, into memory, and parsed from the bytes. Nothing announces how much a pipe will send, so
the read stops at :data:`MAX_STREAM_BYTES` with a clear error instead of filling the memory.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from heartbeat.core.errors import DataError

MAX_STREAM_BYTES = 1 << 30
"""The most a pipe may send: over twice the largest file of the Kaggle set (mitbih_train.csv,
about 410 MB in its ``%.18e`` form); a larger input should be a file, which is read in place."""

STDIN = "-"
"""The input name that means standard input."""

_CHUNK = 1 << 20


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``-`` or names something that is neither a regular file nor a folder
    (a pipe, a character device, a socket), which can be read only once."""
    if str(path) == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def read_stream(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """All the bytes of the stream ``path`` (``-``: standard input), read once.

    Raises :class:`DataError` naming ``path`` when it sends more than ``limit`` bytes
    (default :data:`MAX_STREAM_BYTES`) or cannot be read.
    """
    limit = MAX_STREAM_BYTES if limit is None else limit
    name = "standard input" if str(path) == STDIN else str(path)
    try:
        if str(path) == STDIN:
            return _read_limited(sys.stdin.buffer, name, limit)
        with open(path, "rb") as fh:
            return _read_limited(fh, name, limit)
    except OSError as exc:
        raise DataError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def _read_limited(fh: BinaryIO, name: str, limit: int) -> bytes:
    out = bytearray()
    while chunk := fh.read(min(_CHUNK, limit + 1 - len(out))):
        out += chunk
        if len(out) > limit:
            raise DataError(
                f"{name}: sent more than {limit:,} bytes through a pipe; save the data to a file and "
                "pass that file instead"
            )
    return bytes(out)


def display_name(path: str | os.PathLike[str]) -> Path:
    """How messages name an input: ``-`` is standard input."""
    return Path("<stdin>") if str(path) == STDIN else Path(path)


_CLOSED_AT_START: set[int] = set()


def reopen_closed_standard_streams() -> set[int]:
    """Open ``/dev/null`` on each standard descriptor (0, 1, 2) the caller closed (``>&-``, ``2>&-``).

    Otherwise the next file opened takes that number, and Python's ``print(file=sys.stderr)`` with
    ``sys.stderr`` None writes to stdout: the summary lands inside the rows. Returns the descriptors
    that were closed; :func:`closed_at_start` tells a writer that standard output was one of them.
    """
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8", closefd=False))
            _CLOSED_AT_START.add(fd)
    return set(_CLOSED_AT_START)


def closed_at_start(fd: int) -> bool:
    """Whether standard descriptor ``fd`` was closed when the command started."""
    return fd in _CLOSED_AT_START
