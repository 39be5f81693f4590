"""The ``kaggle`` source: download ``shayanfazeli/heartbeat`` with the official ``kaggle`` package.

``import kaggle`` authenticates at import time and exits the process when it
finds no credentials, so the package is imported here only, lazily, after we
have checked that credentials exist. No message we print ever contains a
credential: anything that came from the Kaggle client is passed through
:func:`redact` first.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heartbeat.core.errors import SourceError
from heartbeat.fetch.archive import extract_csvs
from heartbeat.fetch.kaggle_set import KAGGLE_DATASET

_OFFLINE_HINT = "or run offline with: dvc exp run -S data.source=demo"
_HOW_TO = (
    "set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, or put your token in ~/.kaggle/access_token "
    "or ~/.kaggle/kaggle.json (https://www.kaggle.com/settings/api)"
)
_SECRET_VARS = ("KAGGLE_API_TOKEN", "KAGGLE_KEY")
_STATUS_HINTS = {
    401: "Kaggle rejected the credentials (HTTP 401); check or regenerate your API token",
    403: "Kaggle refused access (HTTP 403); accept the dataset's terms on its Kaggle page, or check the token's scope",
    404: f"Kaggle has no dataset {KAGGLE_DATASET} (HTTP 404); check the name or your access to it",
    429: "Kaggle is rate-limiting requests (HTTP 429); wait a few minutes and rerun",
}


def _kaggle_dir() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))


def has_credentials(env: dict[str, str] | None = None) -> bool:
    """Whether any of the credential sources the kaggle package reads is present."""
    env = dict(os.environ) if env is None else env
    if env.get("KAGGLE_API_TOKEN") or (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")):
        return True
    folder = _kaggle_dir()
    return (folder / "access_token").is_file() or (folder / "kaggle.json").is_file()


# An Authorization header echoed back by a server or proxy, whatever credential it carries.
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}")


def _secrets() -> list[str]:
    """Every credential the kaggle client may send: as stored, and as HTTP Basic auth encodes it."""
    env = os.environ
    values = [env.get(v, "") for v in _SECRET_VARS]
    pairs = [(env.get("KAGGLE_USERNAME", ""), env.get("KAGGLE_KEY", ""))]
    files = [Path(env["KAGGLE_API_TOKEN"])] if env.get("KAGGLE_API_TOKEN") else []  # may name a token file
    for folder in {_kaggle_dir(), Path.home() / ".kaggle"}:
        files += [folder / "access_token", folder / "access_token.txt", folder / "kaggle.json"]
    for path in files:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text(encoding="utf-8").strip()
            values.append(text)
            data = json.loads(text) if path.name == "kaggle.json" else None
            if isinstance(data, dict):
                values.append(str(data.get("key", "")))
                pairs.append((str(data.get("username", "")), str(data.get("key", ""))))
    # A legacy API key travels as base64("username:key"): an echoed header must not leak it that way.
    values += [base64.b64encode(f"{user}:{key}".encode()).decode() for user, key in pairs if key]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every known credential value, and any Authorization header value, in ``text`` with ``***``."""
    for secret in _secrets():
        text = text.replace(secret, "***")
    return _AUTH_HEADER.sub(r"\1 ***", text)


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "status", None)
    return int(status) if isinstance(status, int) else None


def _default_api() -> Any:
    # Importing kaggle prints a help text and may call sys.exit without credentials; keep it quiet.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi()


def download_archive(cache: Path, api_factory: Callable[[], Any] | None = None) -> Path:
    """Download the dataset's zip into ``cache`` and return its path."""
    if not has_credentials():
        raise SourceError(f"no Kaggle credentials found: {_HOW_TO}; {_OFFLINE_HINT}")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        api = (api_factory or _default_api)()
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
        api.dataset_download_files(KAGGLE_DATASET, path=str(cache), unzip=False, quiet=False, force=True)
    except SystemExit:
        raise SourceError(f"Kaggle rejected the credentials: {_HOW_TO}; {_OFFLINE_HINT}") from None
    except Exception as exc:  # the client raises requests, urllib3 and its own errors alike
        status = _status_of(exc)
        if status in _STATUS_HINTS:
            raise SourceError(f"{_STATUS_HINTS[status]}; {_OFFLINE_HINT}") from None
        detail = redact(f"{type(exc).__name__}: {exc}").splitlines()[0][:200]
        raise SourceError(f"Kaggle download failed ({detail}); check the network, {_OFFLINE_HINT}") from None
    archive = cache / (KAGGLE_DATASET.split("/")[1] + ".zip")
    if not archive.is_file():
        raise SourceError(f"Kaggle download finished but {archive} is missing; rerun, {_OFFLINE_HINT}")
    return archive


def fetch_kaggle(dest: Path, cache: Path, api_factory: Callable[[], Any] | None = None) -> None:
    archive = download_archive(cache, api_factory)
    extract_csvs(archive, dest)
