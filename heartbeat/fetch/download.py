"""Download one file over HTTP(S) robustly: retries, resume, size check, progress.

A file is only ever visible under its final name once it is complete. Bytes
go to ``<name>.part`` first and are renamed when the byte count matches what
the server announced (and ``expected_size`` when the caller knows it, for
example from a WFDB header). A run that is cut off leaves just the ``.part``,
which no reader trusts and the next run resumes with an HTTP Range request
(or restarts, if the server ignores ranges).

Transient failures (connection errors, timeouts, a transfer cut short, HTTP
5xx and 429) are retried with exponential backoff; permanent ones (404 and
the other 4xx) fail at once, since retrying cannot fix a wrong URL.

No size a server states is believed, and no stream may run on: every download
has a limit (``expected_size`` when the caller knows it, else ``max_bytes``,
else :data:`MAX_DOWNLOAD_BYTES`). A Content-Length over it fails before the
transfer starts, and bytes beyond it stop the transfer as they arrive.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from heartbeat.core.atomic import WRITE_ERRNOS, write_error
from heartbeat.core.errors import DataError, SourceError
from heartbeat.core.progress import progress_bar

CHUNK_BYTES = 1 << 16
MAX_DOWNLOAD_BYTES = 1 << 30
"""The limit of a download whose caller knows no tighter one: hundreds of times the signal files
this project reads (2.8 MB for a PTB record, 1.9 MB for a MIT-BIH one)."""
MAX_BACKOFF_S = 30.0
USER_AGENT = "heartbeat-pipeline/0.1 (+https://github.com/; python urllib)"


class _Retry(Exception):
    """A transient failure: try again after a pause."""


class HTTPStatusError(SourceError):
    """The server answered with a permanent HTTP error (404 and other 4xx); ``status`` holds the code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def part_path(dest: str | os.PathLike[str]) -> Path:
    """Where the incomplete bytes of ``dest`` live until it is complete."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _open(url: str, offset: int, timeout_s: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:
            raise  # range not satisfiable: the caller restarts from byte 0
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise HTTPStatusError(
            f"{url}: HTTP {exc.code} {exc.reason}; check the mirror URL and the record name", exc.code
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Retry(f"{type(exc).__name__}: {reason}") from None


def _too_big(url: str, part: Path, limit: int, exact: bool, got: str) -> DataError:
    part.unlink(missing_ok=True)
    if exact:
        return DataError(
            f"{url}: {got}, more than the {limit:,} bytes the record header implies; the file on the "
            "mirror is not this record's, use another mirror"
        )
    return DataError(f"{url}: {got}, more than the {limit:,} bytes such a file can have; refusing it")


def _transfer(
    url: str, part: Path, timeout_s: float, desc: str, progress: bool, limit: int, exact: bool
) -> int | None:
    """One attempt: append to (or restart) ``part`` until the server's announced size is reached.

    Returns the announced total size, or None when the server did not say. More than ``limit``
    bytes, announced or sent, is a :class:`DataError` (``exact``: the limit is the file's known size).
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset > limit:
        part.unlink()
        offset = 0
    try:
        response = _open(url, offset, timeout_s)
    except urllib.error.HTTPError:
        part.unlink(missing_ok=True)  # our partial file is longer than the server's: start over
        raise _Retry("HTTP 416 for a resumed download; restarting from byte 0") from None
    with response:
        length = _content_length(response)
        if response.status == 206:
            mode, start = "ab", offset
        else:
            mode, start = "wb", 0  # server ignored the Range header: restart
        total = start + length if length is not None else None
        if total is not None and total > limit:
            raise _too_big(url, part, limit, exact, f"the server announces {total:,} bytes")
        received = start
        try:
            with (
                open(part, mode) as fh,
                progress_bar(
                    total, desc, unit="B", initial=start, unit_scale=True, disable=not progress
                ) as bar,
            ):
                while chunk := response.read(CHUNK_BYTES):
                    if received + len(chunk) > limit:
                        fh.close()
                        raise _too_big(url, part, limit, exact, "the server sent more bytes")
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            # our disk, not the network: do not retry
            if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
                raise write_error(part, exc) from None
            raise _Retry(f"transfer interrupted after {received} bytes ({type(exc).__name__})") from None
    if total is not None and received != total:
        raise _Retry(f"server closed the connection after {received} of {total} bytes")
    return total


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    expected_size: int | None = None,
    max_bytes: int | None = None,
    retries: int = 4,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    progress: bool = True,
    desc: str | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` unless a complete copy is already there; return ``dest``.

    An existing ``dest`` counts as complete only if it has ``expected_size``
    bytes (when given); otherwise it is fetched again. A download that ends
    with the wrong size for ``expected_size`` raises :class:`DataError` (the
    copy on the server is truncated or corrupt, retrying will not help) and
    leaves nothing behind, as does one of more than ``expected_size``, or
    ``max_bytes`` when the size is not known (default :data:`MAX_DOWNLOAD_BYTES`).
    After ``retries`` failed retries it raises :class:`SourceError` and keeps
    the ``.part`` for the next run to resume.
    """
    dest = Path(dest)
    if dest.exists():
        if expected_size is None or dest.stat().st_size == expected_size:
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    label = desc or dest.name
    exact = expected_size is not None
    limit = expected_size if exact else (max_bytes or MAX_DOWNLOAD_BYTES)
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
        try:
            announced = _transfer(url, part, timeout_s, label, progress, limit, exact)
        except _Retry as exc:
            last = str(exc)
            continue
        except SourceError:
            part.unlink(missing_ok=True)
            raise
        size = part.stat().st_size
        if announced is None and expected_size is not None and size < expected_size:
            last = f"transfer ended after {size} of {expected_size} bytes"  # no length header to tell
            continue
        if expected_size is not None and size != expected_size:
            part.unlink(missing_ok=True)
            raise DataError(
                f"{url}: got {size} bytes, expected {expected_size} from the record header; "
                "the file on the mirror is truncated or corrupt, use another mirror"
            )
        os.replace(part, dest)
        return dest
    raise SourceError(
        f"{url}: download failed after {retries + 1} attempts ({last}); "
        "check the network and rerun, the download resumes"
    )


def remove_quietly(path: str | os.PathLike[str]) -> None:
    """Delete a cached file that failed validation, so no later run trusts it."""
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
