"""Reading (and writing) the full-size Kaggle CSVs.

Usage: python bench/bench_csv.py [--rounds N] [--cold] [--json FILE]

Writes full-size stand-ins of the four Kaggle CSVs into a temporary folder (87,554 + 21,892 +
4,046 + 10,506 rows, ``%.18e``, 4,700 bytes per row, 583 MB; real Kaggle rows from
../shared/data/kaggle-sample drawn with replacement), removed at the end. Then, on
mitbih_train.csv (411 MB) and on all four files:

* time, interleaved over ``--rounds`` rounds (medians): a plain ``read()`` of the bytes,
  ``pd.read_csv(header=None)`` (float64), ``pd.read_csv(header=None, dtype=float32)``, the reader
  before (testkit/csv_baseline.py) and ``heartbeat.core.beatcsv.read_beats_csv``; all with the file in
  the page cache (and, with ``--cold``, again after dropping it from the cache before each read);
* peak resident memory of each reader in a fresh process, against the size of the float32 array
  it returns;
* the writer: ``format_beats_csv`` against ``np.savetxt`` on the mitbih_test rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from common import (
    TempDir,
    drop_from_page_cache,
    interleaved,
    make_full_size_csvs,
    median,
    print_machine,
    run_measured,
    table,
    write_json,
)

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import format_beats_csv, read_beats_csv
from heartbeat.core.layout import FILE_CLASSES
from testkit.csv_baseline import format_beats_csv_before, pandas_chunks_only, read_beats_csv_before

MB = 1e6


def readers(paths: list[Path]) -> dict[str, object]:
    def plain() -> None:
        for p in paths:
            with open(p, "rb") as fh:
                fh.read()

    def pandas64() -> None:
        for p in paths:
            pd.read_csv(p, header=None)

    def pandas32() -> None:
        for p in paths:
            pd.read_csv(p, header=None, dtype=np.float32)

    def before() -> None:
        for p in paths:
            read_beats_csv_before(p)

    def ours() -> None:
        for p in paths:
            read_beats_csv(p, FILE_CLASSES[p.name])

    def chunked() -> None:
        for p in paths:
            pandas_chunks_only(p, FILE_CLASSES[p.name])

    return {
        "plain read()": plain,
        "pd.read_csv(header=None)": pandas64,
        "pd.read_csv(dtype=float32)": pandas32,
        "reader before (one read_csv + whole-array checks)": before,
        "pandas in chunks (read_beats_csv's fallback; the reader before pyarrow)": chunked,
        "read_beats_csv (pyarrow, pieces in parallel threads)": ours,
    }


MEMORY_CODE = {
    "plain read()": "data = open(PATH, 'rb').read()",
    "pd.read_csv(dtype=float32)": "data = pd.read_csv(PATH, header=None, dtype=np.float32)",
    "reader before (one read_csv + whole-array checks)": "data = read_beats_csv_before(PATH)",
    "pandas in chunks (read_beats_csv's fallback; the reader before pyarrow)": (
        "data = pandas_chunks_only(PATH, (0, 1, 2, 3, 4))"
    ),
    "read_beats_csv (pyarrow, pieces in parallel threads)": "data = read_beats_csv(PATH, (0, 1, 2, 3, 4))",
}


def peak_memory(path: Path) -> dict[str, int]:
    preamble = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        f"sys.path.append({str(Path(__file__).resolve().parents[1])!r})\n"  # testkit/
        "import numpy as np, pandas as pd\n"
        "from testkit.csv_baseline import pandas_chunks_only, read_beats_csv_before\n"
        "from heartbeat.core.beatcsv import read_beats_csv\n"
        f"PATH = {str(path)!r}\n"
        "open(PATH, 'rb').read(1 << 20)\n"
        "# --- measured\n"
    )
    return {name: run_measured(preamble + code)["peak_rss"] for name, code in MEMORY_CODE.items()}


def time_readers(paths: list[Path], rounds: int, cold: bool) -> dict[str, list[float]]:
    configs = readers(paths)
    if not cold:
        return interleaved(configs, rounds)

    def dropping(fn):
        def run() -> None:
            for p in paths:
                drop_from_page_cache(p)
            fn()

        return run

    return interleaved({name: dropping(fn) for name, fn in configs.items()}, rounds, warmup=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--cold", action="store_true", help="also time reads with the files dropped from the page cache"
    )
    ap.add_argument("--json")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the files (to try the script only)")
    args = ap.parse_args()
    info = print_machine()
    results: dict = {"machine": info, "rounds": args.rounds}
    with TempDir("heartbeat-bench-csv-") as tmp:
        files = make_full_size_csvs(tmp / "raw", scale=args.scale)
        total = sum(p.stat().st_size for p in files.values())
        print(f"stand-ins: {total / MB:,.0f} MB in {tmp / 'raw'}")
        train = files["mitbih_train.csv"]
        n_train = len(read_beats_csv(train))
        x_bytes = n_train * BEAT_LENGTH * 4
        sets = {
            f"mitbih_train.csv ({train.stat().st_size / MB:,.0f} MB)": [train],
            f"all four files ({total / MB:,.0f} MB)": list(files.values()),
        }
        modes = [False, True] if args.cold else [False]
        for cold in modes:
            for label, paths in sets.items():
                size = sum(p.stat().st_size for p in paths)
                times = time_readers(paths, args.rounds, cold)
                base = median(times["plain read()"])
                lib = median(times["pd.read_csv(dtype=float32)"])
                rows = []
                for name, ts in times.items():
                    m = median(ts)
                    rows.append(
                        [
                            name,
                            f"{m:.3f}",
                            f"{min(ts):.3f}",
                            f"{size / MB / m:,.0f}",
                            f"{m / base:.2f}",
                            f"{m / lib:.2f}",
                        ]
                    )
                key = f"{label}, {'cold' if cold else 'page cache'}"
                print(f"\n### Read {key}, {args.rounds} rounds\n")
                print(
                    table(
                        ["reader", "median s", "best s", "MB/s", "× plain read()", "× pd.read_csv float32"],
                        rows,
                    )
                )
                results[f"read {key}"] = {name: ts for name, ts in times.items()}
        mem = peak_memory(train)
        print(f"\n### Peak memory reading mitbih_train.csv (float32 X: {x_bytes / MB:.1f} MB)\n")
        print(
            table(
                ["reader", "peak RSS above start, MB", "× float32 X"],
                [[n, f"{b / MB:,.0f}", f"{b / x_bytes:.2f}"] for n, b in mem.items()],
            )
        )
        results["peak_rss"] = mem
        results["x_bytes"] = x_bytes

        test = read_beats_csv(files["mitbih_test.csv"])
        wtimes = interleaved(
            {
                "np.savetxt (before)": lambda: format_beats_csv_before(test.X, test.y),
                "format_beats_csv": lambda: format_beats_csv(test.X, test.y),
            },
            max(2, args.rounds // 2),
            warmup=False,
        )
        assert format_beats_csv(test.X, test.y) == format_beats_csv_before(test.X, test.y)
        size = files["mitbih_test.csv"].stat().st_size
        base = median(wtimes["np.savetxt (before)"])
        print(f"\n### Writing mitbih_test.csv ({size / MB:.0f} MB of %.18e text, byte-identical)\n")
        print(
            table(
                ["writer", "median s", "MB/s", "speed-up"],
                [
                    [n, f"{median(t):.2f}", f"{size / MB / median(t):,.0f}", f"{base / median(t):.2f}"]
                    for n, t in wtimes.items()
                ],
            )
        )
        results["write"] = wtimes
    write_json(args.json, results)


if __name__ == "__main__":
    main()
