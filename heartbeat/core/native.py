"""What C++ libraries write straight to file descriptor 2, kept out of the user's log.

TensorFlow 2.21 logs through absl: its oneDNN banner, the "All log messages before
absl::InitializeLog()" notice and, while it optimises a graph, lines such as ``E0000 ...
NodeDef mentions attribute use_unbounded_threadpool`` that are harmless yet say "E" for error.
They go to fd 2 before (or regardless of) any setting, TF_CPP_MIN_LOG_LEVEL included, and the
TFLite converter prints its quantisation settings there too. None of it helps a user reading a
stage's log; each would be "said" once per process, dozens of times per ``dvc repro``.

:func:`native_log_filter` keeps them out for a whole stage: fd 2 becomes a pipe, and a thread
forwards every line except those (Python's own logging and warnings included, untouched).
:func:`quiet_native_stderr` hides everything for a short while, for the CLI's model loading.
``HEARTBEAT_LOG_LEVEL=DEBUG`` shows everything.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

from heartbeat.core.errors import HeartbeatError

NATIVE_LINE = re.compile(
    rb"(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\n]*\] "  # absl: I0000 00:00:17.5 123 file.cc:1]
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|fully_quantize: \d+, inference_type: )"  # the TFLite converter's printf
)
"""The start of a line that a C++ library wrote, not us."""
_DECIDE_BYTES = 64
"""Bytes of a line after which :data:`NATIVE_LINE` can tell whether it is native."""


def _line_end(buf: bytes) -> int:
    """Index just after the first line break (``\\n`` or a progress bar's ``\\r``), or -1."""
    ends = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
    return min(ends) + 1 if ends else -1


class LineFilter:
    """Drops native log lines from a byte stream fed in arbitrary pieces.

    A line is forwarded as soon as it cannot be a native one (so a progress bar without a line
    break still shows), and held only while its first bytes could start one.
    """

    def __init__(self) -> None:
        self.buf = b""
        self.state: str | None = None  # for the current line: None undecided, "pass" or "drop"

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        self.buf += data
        while self.buf:
            end = _line_end(self.buf)
            piece = self.buf if end < 0 else self.buf[:end]
            if self.state is None:
                if end < 0 and len(piece) < _DECIDE_BYTES and piece[:1] in b"IWEFf":
                    break  # could still become a native line: wait for more
                self.state = "drop" if NATIVE_LINE.match(piece) else "pass"
            if self.state == "pass":
                out += piece
            self.buf = b"" if end < 0 else self.buf[end:]
            if end >= 0:
                self.state = None
        return bytes(out)

    def flush(self) -> bytes:
        rest, self.buf = self.buf, b""
        if self.state == "drop" or (self.state is None and NATIVE_LINE.match(rest)):
            return b""
        return rest


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except OSError:  # the reader went away (a closed pipe): nothing more to show
            return


def _pump(read_fd: int, write_fd: int) -> None:
    lines = LineFilter()
    with contextlib.suppress(OSError):
        while chunk := os.read(read_fd, 1 << 16):
            _write_all(write_fd, lines.feed(chunk))
    _write_all(write_fd, lines.flush())
    os.close(read_fd)


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by something without a descriptor
        return None


@contextlib.contextmanager
def native_log_filter() -> Iterator[None]:
    """For the duration: drop native log lines (:data:`NATIVE_LINE`) from what reaches stderr."""
    fd = _stderr_fd()
    if fd is None or os.environ.get("HEARTBEAT_LOG_LEVEL", "").upper() == "DEBUG":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, fd)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, saved), name="native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)  # the pipe's last write end closes: the thread reads to the end and stops
        thread.join(timeout=5)
        os.close(saved)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide what C++ libraries write straight to file descriptor 2 while loading.

    TensorFlow logs its oneDNN and CPU-feature banners through absl before any setting can silence
    them, and LiteRT announces its XNNPACK delegate; none of it helps a user reading the summary.
    The text is kept and replayed if loading fails, so no error is lost.
    """
    fd = _stderr_fd()
    if fd is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except HeartbeatError:
            raise  # our own one-line message says it all
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)
