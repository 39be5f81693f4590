"""The documented error types.

Every problem a user can fix (bad data, bad params, a bad model file, missing
credentials) raises a subclass of :class:`HeartbeatError` with a one-line
message that names the file, row or key and says what to do. The stage and CLI
entry points turn these into a one-line message on stderr and a non-zero exit,
never a traceback. Anything else escaping is a bug.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class HeartbeatError(Exception):
    """Base class: a problem the user can fix, with a one-line message."""

    exit_code = 1


class DataError(HeartbeatError):
    """An input file (CSV, archive, WFDB record, array) is missing or malformed."""


class ParamsError(HeartbeatError):
    """params.yaml (or a CLI option) holds an unknown key or a bad value."""


class ModelError(HeartbeatError):
    """A model file cannot be loaded or does not fit the data."""


class SourceError(HeartbeatError):
    """A data source failed: credentials, network, HTTP status, download."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s message (at most ``limit`` characters), or its type when it has none.

    Libraries (wfdb, Keras, the runtimes) raise multi-line messages; ours stay one line.
    """
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def about(exc: DataError | SourceError, subject: str) -> DataError | SourceError:
    """``exc`` with its message starting with ``subject`` (a record, a file), unless it already does.

    Code deep down (a segmenter, a parser) does not know which record it is working on; the caller
    that does re-raises its errors through this, so every message names its subject.
    """
    message = str(exc)
    if message.startswith(f"{subject}: "):
        return exc
    return (SourceError if isinstance(exc, SourceError) else DataError)(f"{subject}: {message}")


@contextlib.contextmanager
def input_file(
    where: object,
    expected: str = "a file",
    missing: str = "check the path",
    error: type[HeartbeatError] = DataError,
) -> Iterator[None]:
    """Run the body, which opens the input file ``where``, turning the OS's refusals into one-line
    errors that name it and say what to do: not found (``missing``: what to do), a folder (``expected``:
    what it should be), not readable. Every reader of a user's or a stage's file goes through this, so
    the same mistake reads the same everywhere."""
    try:
        yield
    except FileNotFoundError:
        raise error(f"{where}: file not found; {missing}") from None
    except IsADirectoryError:
        raise error(f"{where}: is a folder, expected {expected}") from None
    except PermissionError:
        raise error(f"{where}: permission denied; make the file readable") from None
    except OSError as exc:
        raise error(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def empty_file(where: object, expected: str) -> DataError:
    """The error for an input file that holds nothing (or only blank lines): ``expected`` says what it
    should hold."""
    return DataError(f"{where}: file is empty; expected {expected}")
