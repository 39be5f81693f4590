"""Where ``heartbeat predict`` writes its rows, without ever destroying what the user owns.

``-o`` names something the user owns, so the rules are stricter than for the pipeline's outputs:

* ``-o`` may not be one of the inputs (the data, the model, its sidecar or export), compared by
  device and inode, so a hard link, a symlink or another spelling of the same file counts too;
* a regular file is replaced atomically (a temporary sibling renamed over it) and keeps its
  permission bits; a symlink is written through, so the link stays and its target gets the rows;
* what is not a regular file is never replaced: a character device (``/dev/null``), a FIFO or
  a socket is opened and written in place; ``/dev/stdout``, ``/dev/stderr`` and ``/dev/fd/N``
  are written through that descriptor; a folder, a block device or standard input is refused;
* ``-`` or no ``-o`` is standard output; a failure to write there (a full disk, a reader that
  closed the pipe) is one :class:`~heartbeat.core.atomic.WriteError` line, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from heartbeat.core.atomic import WriteError, atomic_path, write_error
from heartbeat.core.errors import HeartbeatError, ParamsError
from heartbeat.core.streams import closed_at_start

STDOUT = "-"
_FD_PATH = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$")
_STD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


class RowsNotWritten(HeartbeatError):
    """Standard output, a descriptor or a device refused the rows: a full disk, a closed pipe."""

    def __init__(self, name: str, exc: OSError) -> None:
        reason = (
            "the reader closed the pipe"
            if isinstance(exc, BrokenPipeError)
            else (exc.strerror or type(exc).__name__).lower()
        )
        super().__init__(f"{name}: could not write the rows ({reason}); the output there is incomplete")


@dataclass(frozen=True)
class Output:
    """A checked ``-o``: how to write (``fd``, ``device`` or ``file``) and where."""

    name: str
    how: str
    fd: int | None = None
    """The descriptor to write through (``how == "fd"``); 1 is standard output."""
    target: Path | None = None
    """The file to open in place (``device``) or to replace (``file``), symlinks resolved."""
    mode: int | None = None
    """Permission bits of the regular file being replaced, kept on the new one."""


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _inputs(paths: Iterable[str | os.PathLike[str]]) -> set[tuple[int, int]]:
    found = set()
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            found.add(_identity(os.stat(path)))
    return found


def _not_an_input(name: str, st: os.stat_result, inputs: set[tuple[int, int]], option: str = "-o") -> None:
    if _identity(st) in inputs:
        raise ParamsError(
            f"{option} {name}: is one of the inputs (the same file, through a link or another path); "
            "writing there would destroy it, choose another output file"
        )


def plan_output(
    name: str | None, inputs: Iterable[str | os.PathLike[str]] = (), option: str = "-o"
) -> Output:
    """Check ``-o name`` against ``inputs`` (paths of every file the command reads) before any work.

    Raises :class:`ParamsError` for an output that is an input, a folder, a block device or
    standard input; its message names ``option`` (``-o``, ``--plot``).
    """
    if name is None or name == STDOUT:
        if closed_at_start(1):
            raise ParamsError(
                "standard output is closed (>&-), so the rows would be lost; give -o FILE, or - with an open stdout"
            )
        return Output("standard output", "fd", fd=1)
    if not name:
        raise ParamsError(f"{option}: is empty; give a file name, or - for standard output")
    known = _inputs(inputs)
    fd_match = _FD_PATH.match(name)
    fd = int(fd_match.group(1)) if fd_match else _STD_PATHS.get(name)
    if fd is not None:
        if fd == 0:
            raise ParamsError(
                f"{option} {name}: is standard input; give a file name, or - for standard output"
            )
        try:
            if closed_at_start(fd):
                raise OSError(fd, "closed")
            _not_an_input(name, os.fstat(fd), known, option)
        except OSError:
            raise ParamsError(f"{option} {name}: file descriptor {fd} is not open") from None
        return Output(name, "fd", fd=fd)
    try:
        st = os.stat(name)  # through symlinks: what the name ends at
    except FileNotFoundError:
        return Output(name, "file", target=Path(os.path.realpath(name)))
    except OSError as exc:
        raise ParamsError(f"{option} {name}: cannot be used ({exc.strerror or type(exc).__name__})") from None
    _not_an_input(name, st, known, option)
    if stat.S_ISDIR(st.st_mode):
        raise ParamsError(f"{option} {name}: is a folder; give a file name inside it")
    if stat.S_ISBLK(st.st_mode):
        raise ParamsError(f"{option} {name}: is a block device (a disk); refusing to write the rows over it")
    if not stat.S_ISREG(st.st_mode):
        return Output(name, "device", target=Path(name))
    return Output(name, "file", target=Path(os.path.realpath(name)), mode=stat.S_IMODE(st.st_mode))


def plan_plot(name: str, rows: Output, inputs: Iterable[str | os.PathLike[str]] = ()) -> Output:
    """Check ``--plot name`` as :func:`plan_output` checks ``-o``, and against where the rows go: the
    PNG may not land on the rows' file or stream (the same name, link or descriptor), nor on standard
    output while the rows are there; an empty name is an error, not "no plot"."""
    if not name:
        raise ParamsError("--plot: is empty; give a PNG file name")
    if name == STDOUT and rows.how == "fd" and rows.fd == 1:
        raise ParamsError("--plot -: the rows go to standard output; give the PNG a file name")
    plot = plan_output(name, inputs, "--plot")
    same_fd = plot.how == "fd" and rows.how == "fd" and _fd_identity(plot.fd) == _fd_identity(rows.fd)
    same_file = (
        plot.target is not None
        and rows.target is not None
        and _inputs([rows.target]) & _inputs([plot.target])
    )
    if same_fd or same_file or (plot.target is not None and plot.target == rows.target):
        raise ParamsError(
            f"--plot {name}: is where the rows go ({rows.name}); give the PNG another file name"
        )
    return plot


def _fd_identity(fd: int | None) -> tuple[int, int] | int | None:
    try:
        return _identity(os.fstat(fd))
    except (OSError, TypeError):
        return fd


def write_output(out: Output, text: str) -> None:
    """Write ``text`` as :func:`plan_output` decided; a failure is one :class:`WriteError` line."""
    write_output_bytes(out, text.encode("utf-8"))


def write_output_bytes(out: Output, data: bytes) -> None:
    """:func:`write_output` for bytes (a PNG)."""
    if out.how == "fd":
        _write_fd(out, data)
    elif out.how == "device":
        try:
            with open(out.target, "wb") as fh:  # never replaced: written in place
                fh.write(data)
        except OSError as exc:
            raise RowsNotWritten(out.name, exc) from None
    else:
        _replace(out, data)


def _replace(out: Output, data: bytes) -> None:
    try:
        with atomic_path(out.target) as tmp:
            tmp.write_bytes(data)
            if out.mode is not None:
                os.chmod(tmp, out.mode)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(Path(out.name), exc) from None


def _write_fd(out: Output, data: bytes) -> None:
    try:
        if out.fd == 1:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:  # a PNG: through the byte stream beneath sys.stdout
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                sys.stdout.write(text)
                sys.stdout.flush()
        else:
            view = memoryview(data)
            while view:
                view = view[os.write(out.fd, view) :]
    except OSError as exc:
        if out.fd == 1:
            _silence_stdout()
        raise RowsNotWritten(out.name, exc) from None


def _silence_stdout() -> None:
    """Point standard output at /dev/null: the bytes still buffered would fail again when the
    interpreter flushes it on exit, with a second message after ours."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
