"""Take the four CSVs out of a Kaggle archive or folder, safely.

A zip from the internet is untrusted: member names are checked for paths that
escape the destination (``../x``, absolute paths: "zip slip") before a single
byte is written, and only the four expected members are extracted, by their
base name, never with ``extractall``. A name that is in the archive more than
once (twice, or in two folders) is an error rather than a silent pick. Sizes
are never believed: a member whose header claims more than a beat CSV can be
(:data:`~heartbeat.fetch.kaggle_set.MAX_CSV_BYTES`) is refused before
extraction, and while a member streams out its bytes are counted and its start
and its line lengths checked, so a zip bomb stops within a megabyte.
"""

from __future__ import annotations

import posixpath
import shutil
import zipfile
import zlib
from pathlib import Path

from heartbeat.core.beatcsv import check_start
from heartbeat.core.errors import DataError, input_file
from heartbeat.core.layout import RAW_FILES
from heartbeat.fetch.kaggle_set import MAX_CSV_BYTES

_CHUNK = 1 << 20
_MAX_LINE = 1 << 16  # far over one row (4,701 bytes at most in the originals)


def _unsafe(name: str) -> bool:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in posixpath.normpath(norm).split("/")


def _members(archive: Path, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The member for each of the four CSVs; every problem is raised before anything is extracted."""
    for info in infos:
        if _unsafe(info.filename):
            raise DataError(
                f"{archive}: member {info.filename!r} escapes the archive folder; refusing to extract"
            )
    found: dict[str, list[zipfile.ZipInfo]] = {}
    for info in infos:
        if not info.is_dir():
            found.setdefault(posixpath.basename(info.filename.replace("\\", "/")), []).append(info)
    missing = [n for n in RAW_FILES if n not in found]
    if missing:
        raise DataError(
            f"{archive}: missing {', '.join(missing)}; expected the four CSVs {', '.join(RAW_FILES)}"
        )
    for name in RAW_FILES:
        if len(found[name]) > 1:
            where = ", ".join(repr(i.filename) for i in found[name][:4])
            raise DataError(
                f"{archive}: {name} is in the archive {len(found[name])} times ({where}); it is ambiguous "
                "which one to use, keep one copy"
            )
        info = found[name][0]
        if info.file_size > MAX_CSV_BYTES[name]:
            raise DataError(
                f"{archive}: member {name} unpacks to {info.file_size:,} bytes, more than a beat CSV of "
                f"twice the Kaggle set's rows can be ({MAX_CSV_BYTES[name]:,}); refusing to extract it"
            )
    return {name: found[name][0] for name in RAW_FILES}


def extract_csvs(archive: Path, dest: Path) -> None:
    """Copy the four CSVs out of ``archive`` (a .zip) into ``dest``."""
    try:
        with input_file(archive, "a .zip file"):
            zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a valid zip archive ({exc}); download it again") from None
    with zf:
        members = _members(archive, zf.infolist())
        for name in RAW_FILES:
            try:
                _extract(zf, members[name], archive, dest / name)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise
                raise DataError(
                    f"{archive}: member {name} is corrupt ({exc}); download the archive again"
                ) from None


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Path, target: Path) -> None:
    """Stream one member to ``target``, checking what comes out as it comes."""
    name = posixpath.basename(info.filename.replace("\\", "/"))
    limit = min(info.file_size, MAX_CSV_BYTES[name])
    written, line = 0, 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(_CHUNK):
            if written == 0:
                check_start(f"{archive}: member {name}", chunk)
            written += len(chunk)
            if written > limit:
                raise DataError(
                    f"{archive}: member {name} unpacks to more than the {limit:,} bytes it may have; "
                    "refusing to extract it"
                )
            parts = chunk.split(b"\n")
            longest = max(line + len(parts[0]), max((len(p) for p in parts[1:-1]), default=0))
            line = line + len(parts[0]) if len(parts) == 1 else len(parts[-1])  # the row still open
            if max(longest, line) > _MAX_LINE:
                raise DataError(
                    f"{archive}: member {name} has a line of more than {_MAX_LINE:,} bytes (a beat row has "
                    "under 5,000); it is not a beat CSV, refusing to extract it"
                )
            dst.write(chunk)


def copy_csvs(folder: Path, dest: Path) -> None:
    """Copy the four CSVs from a folder into ``dest``."""
    if not folder.is_dir():
        raise DataError(
            f"{folder}: not found; data.local_path must name a folder or a .zip with {', '.join(RAW_FILES)}"
        )
    missing = [n for n in RAW_FILES if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"{folder}: missing {', '.join(missing)}; expected the four CSVs {', '.join(RAW_FILES)}"
        )
    for name in RAW_FILES:
        shutil.copyfile(folder / name, dest / name)
