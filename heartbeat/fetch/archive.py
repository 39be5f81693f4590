"""Take the four CSVs out of a Kaggle archive or folder, safely.

A zip from the internet is untrusted: member names are checked for paths that
escape the destination (``../x``, absolute paths: "zip slip") before a single
byte is written, and only the four expected members are extracted, by their
base name, never with ``extractall``.
"""

from __future__ import annotations

import posixpath
import shutil
import zipfile
import zlib
from pathlib import Path

from heartbeat.core.errors import DataError
from heartbeat.core.layout import RAW_FILES


def _unsafe(name: str) -> bool:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in posixpath.normpath(norm).split("/")


def extract_csvs(archive: Path, dest: Path) -> None:
    """Copy the four CSVs out of ``archive`` (a .zip) into ``dest``."""
    try:
        zf = zipfile.ZipFile(archive)
    except FileNotFoundError:
        raise DataError(f"{archive}: file not found") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive}: not a valid zip archive ({exc}); download it again") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if _unsafe(info.filename):
                raise DataError(
                    f"{archive}: member {info.filename!r} escapes the archive folder; refusing to extract"
                )
        members = {posixpath.basename(i.filename): i for i in infos if not i.is_dir()}
        missing = [n for n in RAW_FILES if n not in members]
        if missing:
            raise DataError(
                f"{archive}: missing {', '.join(missing)}; expected the four CSVs {', '.join(RAW_FILES)}"
            )
        for name in RAW_FILES:
            try:
                with zf.open(members[name]) as src, open(dest / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as exc:
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise
                raise DataError(
                    f"{archive}: member {name} is corrupt ({exc}); download the archive again"
                ) from None


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
