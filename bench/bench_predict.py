"""Beats per second of ``heartbeat predict``'s backends against Keras ``model.predict``, on one machine.

Usage: python bench/bench_predict.py [--root DIR] [--model NAME] [--rounds N] [--cold | --cold-only]
       [--cold-pythonpath DIR] [--smoothing-only BEATS ...]

Measures, on the prepared ``--splits`` of ``--root`` (every array the model takes), tiled to at
least the size of the MIT-BIH test split (21,892 beats), or on synthetic beats:

* the baseline, ``model.predict(X)`` at Keras' default batch of 32, which is
  what a user writes first;
* ``model.predict`` at other batch sizes (the best one is "best-tuned Keras");
* ``heartbeat.serve.runners.predict_proba`` with each backend and batch size;
* lower precision: TFLite dynamic-range and int8 (converted here, whether or not
  the export stage shipped them) and Keras with oneDNN's bfloat16 auto mixed
  precision, each with its argmax agreement against fp32 Keras and its change in
  test macro-F1 (on the un-tiled test split);
* with ``--cold``: wall time of a fresh ``heartbeat predict`` process on one
  MIT-BIH record per backend (time to the first prediction, imports included), against the same
  with ``--each-beat-alone`` (no smoothing over the recording);
* with ``--smoothing-only``: the smoothing over one recording of each given length, against the
  TFLite network on the same beats.

Timing: every configuration runs once per round, rounds interleave all
configurations (so load from other processes hits them alike), and the table
shows the median and the best round. Ratios are baseline median / median, from
the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from heartbeat.prepare.arrays import SIDE_ARRAYS, Split

N_BEATS = 21_892
DEFAULT_RECORD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb" / "101"


def load_data(root: Path, dataset: str, splits: list[str]) -> tuple[Split, Split, str]:
    """(the beats to time, tiled to N_BEATS; the un-tiled beats to check quality on; where they came
    from). All of a split's arrays come along, so models with rhythm, window or patient inputs run."""
    from heartbeat.prepare.arrays import load_split

    folder = root / "data" / "prepared" / dataset
    if all((folder / f"X_{name}.npy").is_file() for name in splits):
        parts = [load_split(folder, name) for name in splits]
        check = concat(parts)
        where = f"{folder}/ {'+'.join(splits)} ({len(check.y):,} beats)"
    else:
        from heartbeat.core.config import DemoConfig
        from heartbeat.fetch.demo import demo_beats

        demo = demo_beats(
            DemoConfig(mitdb_records=6, mitdb_minutes=20, ptbdb_records=2, ptbdb_minutes=0.5), 0
        )
        check = Split(demo["mitbih_test.csv"].X, demo["mitbih_test.csv"].y)
        where = "synthetic demo beats"
    timed = check.take(np.arange(max(N_BEATS, len(check.y))) % len(check.y))
    return timed, check, where


def concat(parts: list[Split]) -> Split:
    """One split of several, array by array (an array only when every part has it)."""
    arrays = {}
    for kind in ("X", "y", *SIDE_ARRAYS):
        values = [getattr(p, kind) for p in parts]
        arrays[kind] = None if any(v is None for v in values) else np.concatenate(values)
    return Split(**arrays)


def sides(split: Split) -> dict[str, np.ndarray | None]:
    """The keyword arrays :func:`heartbeat.serve.runners.predict_proba` takes besides the beats."""
    return {"rhythm": split.R, "window": split.W, "patient": split.P}


def representative(root: Path, dataset: str, fallback: Split, inputs: tuple[str, ...], width: int):
    """The export stage's int8 representative beats (1,000 training beats, seed 0)."""
    from heartbeat.prepare.arrays import load_split
    from heartbeat.serve.export import representative_beats, representative_samples

    folder = root / "data" / "prepared" / dataset
    source = load_split(folder, "train") if (folder / "X_train.npy").is_file() else fallback
    return representative_samples(inputs, representative_beats(source, 1000, 0), dataset, width)


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    from heartbeat.evaluate.metrics import macro_f1 as f1

    return f1(y, proba)


def cold_start(
    model: Path | None,
    record: Path,
    backend: str,
    threads: int,
    pythonpath: Path | None = None,
    extra: tuple[str, ...] = (),
) -> float:
    """Seconds for a fresh ``heartbeat predict`` process (of this checkout) to segment ``record`` and
    print its predictions; ``model`` None is the default, the pretrained model. ``pythonpath`` goes
    first on the child's PYTHONPATH (another version of a dependency, installed with ``--target``);
    ``extra`` are more options of ``heartbeat predict``."""
    cmd = [
        sys.executable,
        "-m",
        "heartbeat.serve.cli",
        "predict",
        "-q",
        "--threads",
        str(threads),
        *extra,
        str(record),
    ]
    if model is not None:
        cmd[5:5] = ["-m", str(model)]
    if backend != "auto":
        cmd[5:5] = ["--backend", backend]
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"cold start failed: {' '.join(cmd)}: {done.stderr.strip()}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project (or run) folder with models/")
    parser.add_argument(
        "--model", default="resnet_mitbih", help="model name in ROOT/models (default resnet_mitbih)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores this process may use")
    parser.add_argument("--cold", action="store_true", help="also time cold starts on one MIT-BIH record")
    parser.add_argument(
        "--cold-only", action="store_true", help="only the cold starts (--rounds of them), no throughput"
    )
    parser.add_argument("--record", type=Path, default=DEFAULT_RECORD)
    parser.add_argument(
        "--cold-pythonpath",
        type=Path,
        action="append",
        default=[],
        help="with --cold or --cold-only: also time the default start with DIR first on PYTHONPATH (e.g. "
        "`pip install --target DIR scipy==X`), interleaved with the installed versions",
    )
    parser.add_argument(
        "--smoothing-only",
        type=int,
        nargs="+",
        metavar="BEATS",
        help="only time the smoothing over a recording (record_smoothing) of this many beats (the test "
        "split's windows, repeated), with and without its span, against the TFLite network on them",
    )
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 rows")
    parser.add_argument(
        "--splits",
        default="test",
        help="prepared splits to check quality on, e.g. train,val,test: every beat of a physionet run",
    )
    args = parser.parse_args()
    if args.smoothing_only:
        smoothing_times(args)
        return
    if args.cold_only:
        from heartbeat.serve.runners import default_threads

        cold_starts(args, args.threads or default_threads())
        return

    import keras
    import tensorflow as tf

    from heartbeat.model.architectures import model_inputs
    from heartbeat.model.outputs import OutputSteps
    from heartbeat.model.saving import load_model
    from heartbeat.serve.convert import parity, tflite_bytes
    from heartbeat.serve.runners import (
        default_threads,
        load_keras,
        load_runner,
        load_tflite,
        predict_proba,
        quiet_native_stderr,
    )

    threads = args.threads or default_threads()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras_path = args.root / "models" / f"{args.model}.keras"
    model = load_model(keras_path)
    dataset = "mitbih" if model.outputs[0].shape[-1] == 5 else "ptb"
    timed, real, where = load_data(args.root, dataset, args.splits.split(","))
    y_test = real.y

    with quiet_native_stderr():
        ours = {"keras": load_keras(keras_path, threads)}
        for backend in ("tflite", "onnx"):
            ours[backend] = load_runner(keras_path, backend, threads)
            # The stored steps (softmax temperature, smoothing over a recording) act on every
            # backend's probabilities alike; the comparison is of the networks, so leave them out here.
            ours[backend].steps = OutputSteps()
        quant = {}
        inputs, width = ours["keras"].inputs, ours["keras"].rhythm_width
        samples = representative(args.root, dataset, real, inputs, width)
        for variant in ("dynamic", "int8"):
            try:
                content = tflite_bytes(model, variant, samples)
            except Exception as exc:  # a converter that cannot quantise this network: say so, go on
                print(f"# tflite {variant}: conversion failed: {str(exc).splitlines()[0][:200]}")
                continue
            quant[variant] = load_tflite(Path(f"{args.model}.{variant}.tflite"), threads, content=content)

    configs: dict[str, tuple[Callable[[Split], np.ndarray], str]] = {}

    def keras_predict(batch: int) -> Callable[[Split], np.ndarray]:
        return lambda d: model.predict(model_inputs(model, d), batch_size=batch, verbose=0)

    configs["keras model.predict, batch 32 (default)"] = (keras_predict(32), "fp32")
    for batch in (256, 1024, 4096):
        configs[f"keras model.predict, batch {batch}"] = (keras_predict(batch), "fp32")
    for backend, runner in ours.items():
        for batch in (256, 1024, 4096):
            configs[f"predict --backend {backend}, batch {batch}"] = (
                lambda d, r=runner, b=batch: predict_proba(r, d.X, b, progress=False, **sides(d)),
                f"fp32 ({runner.source or 'as loaded'})" if backend != "keras" else "fp32",
            )
    for variant, runner in quant.items():
        for batch in (256, 1024):
            configs[f"tflite {variant}-quantised, batch {batch}"] = (
                lambda d, r=runner, b=batch: predict_proba(r, d.X, b, progress=False, **sides(d)),
                variant,
            )

    reference = predict_proba(ours["keras"], real.X, 1024, progress=False, **sides(real))
    ref_f1 = macro_f1(y_test, reference)
    quality: dict[str, str] = {}
    for name, (fn, _) in configs.items():
        proba = fn(real)  # also the warm-up
        check = parity(reference, proba)
        quality[name] = (
            f"{check.agreement:.5f}  {check.max_abs_diff:8.1e}  {macro_f1(y_test, proba) - ref_f1:+.4f}"
        )

    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (fn, _) in configs.items():
            start = time.perf_counter()
            fn(timed)
            times[name].append(time.perf_counter() - start)

    if not args.no_bf16:
        # Must come last: the option rewrites every graph traced after it in this process.
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
        bf16 = load_keras(keras_path, threads)
        for batch in (256, 1024):
            name = f"keras bf16 (oneDNN AMP), batch {batch}"
            configs[name] = (
                lambda d, b=batch: predict_proba(bf16, d.X, b, progress=False, **sides(d)),
                "bf16",
            )
            proba = configs[name][0](real)
            check = parity(reference, proba)
            quality[name] = (
                f"{check.agreement:.5f}  {check.max_abs_diff:8.1e}  {macro_f1(y_test, proba) - ref_f1:+.4f}"
            )
            times[name] = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                configs[name][0](timed)
                times[name].append(time.perf_counter() - start)

    base = statistics.median(times["keras model.predict, batch 32 (default)"])
    base_best = min(times["keras model.predict, batch 32 (default)"])
    n_timed = len(timed.y)
    print(f"# {n_timed:,} beats timed, from {where}; model {keras_path} ({model.count_params():,} params)")
    print(
        f"# {threads} threads; {args.rounds} interleaved rounds; TF {tf.__version__}, Keras {keras.__version__}"
    )
    print(f"# quality on the {len(y_test):,} beats vs fp32 Keras: agreement, max|Δp|, Δ macro-F1")
    print(f"# load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("# × base: baseline median / median, and baseline best / best, both from this run")
    print(
        f"{'configuration':44s} {'median s':>9s} {'best s':>7s} {'beats/s':>9s} {'× base':>7s} {'(best)':>7s}"
        "   quality"
    )
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        print(
            f"{name:44s} {med:9.3f} {best:7.3f} {n_timed / med:9,.0f} {base / med:7.2f} {base_best / best:7.2f}"
            f"   {quality[name]}"
        )

    if args.cold:
        cold_starts(args, threads)


def smoothing_times(args: argparse.Namespace) -> None:
    """Seconds to smooth one recording of n beats, stretch by stretch (the model's ``span``) and as one
    stretch, against the TFLite network classifying the same beats: the baseline."""
    from heartbeat.core.stored import RecordSmoothing
    from heartbeat.model.smoothing import smooth_over_records
    from heartbeat.serve.runners import default_threads, load_runner, predict_proba

    keras_path = args.root / "models" / f"{args.model}.keras"
    runner = load_runner(keras_path, "tflite", args.threads or default_threads())
    stored = runner.steps.smoothing
    if stored is None:
        raise SystemExit(f"{keras_path}: the model stores no record_smoothing")
    _, real, _ = load_data(args.root, "mitbih", args.splits.split(","))
    print(f"# smoothing one recording ({stored}), median of {args.rounds} rounds")
    print(
        f"{'beats':>8s} {'network s':>10s} {'smoothing s':>12s} {'× network':>10s} {'one stretch s':>14s} {'×':>6s}"
    )
    for n in args.smoothing_only:
        take = np.arange(n) % len(real.y)
        W, P = real.W[take], real.P[take]
        whole = RecordSmoothing(stored.neighbours, stored.weight, max(n, stored.span))
        times: dict[str, list[float]] = {"network": [], "span": [], "whole": []}
        for _ in range(args.rounds):
            start = time.perf_counter()
            proba = predict_proba(
                runner, None, 1024, progress=False, window=W, patient=P, each_beat_alone=True
            )
            times["network"].append(time.perf_counter() - start)
            for key, smoothing in (("span", stored), ("whole", whole)):
                start = time.perf_counter()
                smooth_over_records(proba, W, None, smoothing)
                times[key].append(time.perf_counter() - start)
        net, span, one = (statistics.median(times[k]) for k in ("network", "span", "whole"))
        print(f"{n:8,d} {net:10.2f} {span:12.2f} {span / net:10.2f} {one:14.2f} {one / net:6.2f}")


def cold_starts(args: argparse.Namespace, threads: int) -> None:
    """The cold-start table: every way of running ``args.model`` on one record, rounds interleaved."""
    if not (args.record.with_suffix(".hea")).is_file():
        print(f"# cold start skipped: {args.record}.hea not found")
        return
    rounds = max(3, args.rounds)
    print(
        f"\n# cold start: a fresh `heartbeat predict -q` on record {args.record.name}, "
        f"median of {rounds} interleaved rounds"
    )
    export_dir = args.root / "models" / "export"
    cases: dict[str, tuple[Path | None, Path | None, tuple[str, ...]]] = {}
    keras_path = args.root / "models" / f"{args.model}.keras"
    if keras_path.is_file():
        cases["keras (.keras)"] = (keras_path, None, ())
    for kind in ("tflite", "onnx"):
        exported = export_dir / f"{args.model}.{kind}"
        if exported.is_file():
            cases[f"{kind} (exported .{kind})"] = (exported, None, ())
    cases["default: no --model (the pretrained model's TFLite)"] = (None, None, ())
    # The baseline for the smoothing over the recording that the pretrained model stores.
    cases["default, --each-beat-alone"] = (None, None, ("--each-beat-alone",))
    for extra in args.cold_pythonpath:
        cases[f"default, with {extra} first on PYTHONPATH"] = (None, extra, ())
    runs: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(rounds):
        for label, (path, extra, options) in cases.items():
            runs[label].append(cold_start(path, args.record, "auto", threads, extra, options))
    base = statistics.median(runs["default, --each-beat-alone"])
    for label, ts in runs.items():
        ratio = statistics.median(ts) / base
        print(
            f"{label:52s} {statistics.median(ts):6.2f} s  (best {min(ts):.2f} s)  {ratio:.2f}x each beat alone"
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
