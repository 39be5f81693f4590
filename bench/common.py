"""What the benchmarks share: the machine line, interleaved timing, peak memory, full-size data.

Every script in bench/ prints a Markdown table and can write its figures as JSON (``--json``);
``bench/run_all.py`` runs them all. Timings are medians over rounds that interleave the
configurations, so that load from other processes hits all of them alike, and every ratio is
taken between figures of the same run.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from heartbeat.fetch.kaggle_set import KAGGLE_ROWS

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(
        str(ROOT)
    )  # testkit/, the helpers bench shares with tests/ (not installed with heartbeat)
SHARED = ROOT.parent / "shared" / "data"
PYTHON = sys.executable

# Every row of the original Kaggle CSVs is 187 samples and a label, each written as %.18e:
# 4,700 bytes with the LF.
ROW_BYTES = 4_700


def machine() -> dict[str, str]:
    """Date, CPU model and count, load: the line every table is printed under."""
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": f"{model}, {os.cpu_count()} cores",
        "load": load,
        "python": platform.python_version(),
    }


def print_machine(info: dict[str, str] | None = None) -> dict[str, str]:
    info = info or machine()
    print(f"{info['date']}, {info['cpu']}, load average {info['load']}, Python {info['python']}")
    return info


def interleaved(
    configs: dict[str, Callable[[], object]], rounds: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Wall seconds of each configuration per round; each round runs every configuration once, in turn."""
    if warmup:
        for fn in configs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, fn in configs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def run_measured(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Run ``code`` in a fresh Python; it must leave a dict in ``result``. Adds ``seconds`` and ``peak_rss``.

    ``peak_rss`` is the peak resident memory of that process while ``code`` ran, above what it held
    before (the peak is reset through /proc/self/clear_refs after the imports of the preamble).
    """
    script = (
        "import json, os, time\n"
        "def _rss(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key):\n"
        "            return int(line.split()[1]) * 1024\n"
        "PREAMBLE\n"
        "before = _rss('VmRSS:')\n"
        "try:\n"
        "    open('/proc/self/clear_refs', 'w').write('5')\n"
        "except OSError:\n"
        "    pass\n"
        "result = {}\n"
        "t0 = time.perf_counter()\n"
        "BODY\n"
        "result['seconds'] = time.perf_counter() - t0\n"
        "result['peak_rss'] = _rss('VmHWM:') - before\n"
        "print('RESULT ' + json.dumps(result))\n"
    )
    preamble, _, body = code.partition("# --- measured\n")
    script = script.replace("PREAMBLE", preamble).replace("BODY", body)
    proc = subprocess.run(
        [PYTHON, "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(
        f"measured run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def drop_from_page_cache(path: Path) -> bool:
    """Ask the kernel to forget ``path``'s cached pages (this file only), for a cold read."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def _sample_rows() -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Real Kaggle rows (../shared/data/kaggle-sample) per output file, or None when absent."""
    from heartbeat.core.beatcsv import read_beats_csv

    folder = SHARED / "kaggle-sample"
    if not folder.is_dir():
        return None
    mit = [read_beats_csv(folder / f"mitbih_{s}_sample.csv") for s in ("train", "test")]
    normal = read_beats_csv(folder / "ptbdb_normal_sample.csv")
    abnormal = read_beats_csv(folder / "ptbdb_abnormal_sample.csv")
    return {
        "mitbih_train.csv": (mit[0].X, mit[0].y),
        "mitbih_test.csv": (mit[1].X, mit[1].y),
        "ptbdb_normal.csv": (normal.X, normal.y),
        "ptbdb_abnormal.csv": (abnormal.X, abnormal.y),
    }


def make_full_size_csvs(folder: Path, seed: int = 0, scale: float = 1.0) -> dict[str, Path]:
    """Write stand-ins of the four Kaggle CSVs into ``folder``: the real row counts, ``%.18e``, 4,700 B/row.

    The rows are real Kaggle rows (the shared sample) drawn with replacement, so values, zero
    padding and labels look like the originals; without the sample, demo beats. ``scale`` < 1
    shrinks every file (to try a script quickly; the figures are for ``scale=1``).
    """
    from heartbeat.core.beatcsv import write_beats_csv

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = _sample_rows()
    if rows is None:
        from heartbeat.core.config import DemoConfig
        from heartbeat.fetch.demo import demo_beats

        demo = demo_beats(DemoConfig(), seed)
        rows = {name: (b.X, b.y) for name, b in demo.items()}
    out = {}
    for name, n in KAGGLE_ROWS.items():
        n = max(1, int(n * scale))
        X, y = rows[name]
        pick = rng.integers(0, len(X), n) if len(X) != n else np.arange(n)
        path = folder / name
        write_beats_csv(path, X[pick], y[pick])
        size = path.stat().st_size
        if size != n * ROW_BYTES:
            raise RuntimeError(f"{path}: {size} bytes, expected {n * ROW_BYTES} ({n} rows of {ROW_BYTES})")
        out[name] = path
    return out


class TempDir:
    """A temporary folder (under $HEARTBEAT_BENCH_TMP if set) removed at the end, also on errors."""

    def __init__(self, prefix: str) -> None:
        base = os.environ.get("HEARTBEAT_BENCH_TMP")
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


def physionet_mirror(root: Path) -> Path:
    """A PhysioNet-layout folder over ../shared/data: all its MIT-BIH records, and its five PTB records
    with one relabelled a healthy control (all five are infarction; the source needs both classes)."""
    from testkit.mirrors import build_mirror

    return build_mirror(root, SHARED)


def physionet_prepared(folder: Path) -> Path:
    """Real MIT-BIH beats: the physionet source over ../shared/data/mitdb, then the preprocess stage's
    default split (``split: beat``), saved as ``folder/{mitbih,ptb}/{X,y}_{train,val,test}.npy``."""
    import pandas as pd

    from heartbeat.core.beatcsv import read_beats_csv
    from heartbeat.core.config import PhysionetConfig, PreprocessConfig
    from heartbeat.core.layout import FILE_CLASSES, RAW_FILES
    from heartbeat.fetch.physionet import fetch_physionet
    from heartbeat.prepare.arrays import save_dataset
    from heartbeat.prepare.preprocess import prepare

    if (folder / "mitbih" / "X_train.npy").is_file():
        return folder
    if not (SHARED / "mitdb").is_dir():
        raise SystemExit(f"{SHARED / 'mitdb'} is missing: the training benchmarks need the real records")
    with TempDir("heartbeat-bench-physionet-") as tmp:
        mirror = physionet_mirror(tmp / "mirror")
        cfg = PhysionetConfig(mirror=str(mirror), mitdb_version="", ptbdb_version="")
        fetch_physionet(cfg, 0, tmp / "raw", tmp / "cache")
        raw = {name: read_beats_csv(tmp / "raw" / name, FILE_CLASSES[name]) for name in RAW_FILES}
        provenance = pd.read_parquet(tmp / "raw" / "provenance.parquet")
    prepared = prepare(raw, PreprocessConfig(), provenance)  # with the R-R features, as the stage
    save_dataset(folder / "mitbih", prepared.mitbih)
    save_dataset(folder / "ptb", prepared.ptb)
    return folder
