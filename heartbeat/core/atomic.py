"""Write outputs so that a crash, a full disk or Ctrl-C never leaves half a file.

Every output goes to a temporary sibling first and is renamed into place with
``os.replace``, which is atomic on POSIX within one file system. Until the
rename, the previous output (if any) is untouched; on any error the temporary
is removed.

A write that fails because of the disk (full, over quota, read-only) raises
:class:`WriteError`, a one-line :class:`HeartbeatError` naming the output and
the reason, instead of a bare ``OSError`` traceback.

A process killed outright (SIGKILL, the OOM killer, a power cut) cleans up
nothing. So every temporary's name carries this writer's marker and its process id
(``.<name>.heartbeat-<pid>.<random>.tmp``, ``.<name>.heartbeat-<pid>.<random>.old``), and
:func:`recover` puts things right once that process is gone: temporaries are
deleted, and a folder swap stopped between its two renames gets its previous
folder back. Every atomic write recovers its own target first, and every stage
recovers the folders the pipeline writes to at start (:func:`heartbeat.core.entry.run`).
A name without the marker is never ours to delete, however much it looks like a leftover
(a user's ``.raw.20261201.old`` backup); nor is a marked name in a folder no writer uses.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from heartbeat.core.errors import HeartbeatError

# errno values that only writing can cause: whatever raised them inside an atomic block was an output write.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class WriteError(HeartbeatError):
    """An output could not be written (disk full, quota, read-only or unwritable folder)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"{path}: could not write this output ({reason}); nothing was replaced, "
            "the previous version (if any) is unchanged; free space or fix permissions and rerun"
        )
        self.path, self.reason = Path(path), reason


def write_error(target: Path, exc: OSError) -> WriteError:
    return WriteError(target, (exc.strerror or type(exc).__name__).lower())


MARKER = "heartbeat"
"""What every temporary's name carries, so that recovery deletes only what this project wrote."""

_TEMPORARY = re.compile(
    rf"^\.(?P<name>.+)\.{MARKER}-(?P<pid>[1-9][0-9]{{0,9}})\.[a-z0-9_]{{8}}\.(?P<kind>tmp|old)(?P<suffix>\.[^.]+)?$"
)
"""A temporary of :func:`atomic_path` or :func:`atomic_dir`: ``.<name>.heartbeat-<pid>.<random>.tmp``
followed by the target's own suffix, or ``.old``; ``<random>`` is :mod:`tempfile`'s eight characters."""


def _prefix(target: Path) -> str:
    return f".{target.name}.{MARKER}-{os.getpid()}."


def _ours(match: re.Match[str] | None) -> bool:
    """Whether a name matched by :data:`_TEMPORARY` is exactly what our writers make: a ``.tmp``
    ends with its target's suffix or nothing, an ``.old`` with nothing."""
    if match is None:
        return False
    if match["kind"] == "old":
        return match["suffix"] is None
    return match["suffix"] in (None, Path(match["name"]).suffix or None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def recover(folder: str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Clean up after writers that died in ``folder`` (only those of output ``name``, if given).

    A temporary whose process is gone is deleted; a folder swap that stopped between its two
    renames (the output missing, its previous version in ``.old``) is rolled back first. A live
    writer's temporaries are left alone. Returns what was removed or restored.
    """
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: not p.name.endswith(".old"))  # .old first
    except OSError:
        return []
    done = []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not _ours(match) or (name is not None and match["name"] != name):
            continue
        if _alive(int(match["pid"])):
            continue
        target = folder / match["name"]
        if match["kind"] == "old" and (entry / "x").exists() and not os.path.lexists(target):
            os.replace(entry / "x", target)
            done.append(target)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        done.append(entry)
    return done


def recover_folders(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """:func:`recover` in each of ``folders``, and nowhere else (no walk below them)."""
    done = []
    for folder in folders:
        done += recover(folder)
    return done


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    ``suffix`` defaults to the target's own suffix, because some writers (Keras,
    numpy) choose the format from the file name.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target.parent, target.name)
        fd, tmp = tempfile.mkstemp(
            prefix=_prefix(target),
            suffix=f".tmp{suffix if suffix is not None else target.suffix}",
            dir=target.parent,
        )
    except OSError as exc:
        raise write_error(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            raise write_error(target, exc) from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole on success.

    Used for outputs that are folders (a stage's ``data/prepared``): readers see
    either the complete old folder or the complete new one.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target.parent, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise write_error(target, exc) from None
    old: Path | None = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        if old is not None:
            if (old / "x").exists() and not target.exists():
                os.replace(old / "x", target)  # stopped between the two renames: put the previous one back
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            raise write_error(target, exc) from None
        if isinstance(exc, WriteError) and tmp in exc.path.parents:
            raise WriteError(target, exc.reason) from None  # name the output, not its temporary folder
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)
