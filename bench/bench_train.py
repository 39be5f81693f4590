"""Training speed of the paper's ResNet, on real MIT-BIH beats.

Usage: python bench/bench_train.py [overhead] [tta] [flops] [--data DIR] [--rounds N] [--json FILE]

The beats come from the physionet source over ../shared/data/mitdb (26 real records), prepared
as the preprocess stage does by default (``split: beat``, with the R-R features): about 43,000
training and 4,800 validation beats (into ``--data`` once, or a temporary folder).

``overhead``: seconds per epoch of the paper's ResNet on MIT-BIH-sized input (the training beats
tiled to 87,554 × 187, validation to 8,755) at the ``train_resnet_mitbih`` batch size of
params.yaml: plain ``model.fit(numpy)`` without and with ``validation_data``, and
``heartbeat.train.fit.train`` (our loop: callbacks, logging, early stopping, class weights, input
pipeline, validation), once with the paper's settings and once with params.yaml's (beats only in
both, so that the model is the same). The first epoch (tracing) is left out; rounds interleave
the configurations; medians.

``tta`` (time to accuracy): plain ``model.fit`` at Keras' default batch size (32, Adam 1e-3) for
10 epochs sets the target, its validation accuracy after epoch 10; then the wall time until
``heartbeat.train.fit.train`` first reaches it with the stage's params.yaml recipe (R-R input,
class weights, monitor and batch size as configured), the same recipe at batch 128, and the
paper's recipe (batch 128). Also the stricter target of the best validation accuracy plain fit
reached in its 10 epochs. Validation accuracy is measured at the end of each epoch.

``flops``: forward FLOPs per beat of the ResNet (counted from its layers), a training step taken as
3× that, times the measured beats/s of plain fit, against the CPU's peak (cores × clock × 32 fp32
FLOP per cycle: two 256-bit FMA pipes, as AVX-512 on AMD Zen 4).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import TempDir, median, physionet_prepared, print_machine, table, write_json

MITBIH_ROWS = 87_554
VAL_ROWS = 8_755


def stage_cfg(**overrides: object):
    from heartbeat.core.config import stage_params

    cfg = stage_params("train_resnet_mitbih", str(Path(__file__).resolve().parents[1] / "params.yaml"))
    return cfg.model_copy(update=overrides)


def load(folder: Path, split: str):
    from heartbeat.prepare.arrays import load_split

    return load_split(folder / "mitbih", split)


def tiled(split, n: int):
    """``split`` repeated to ``n`` beats (beats, labels and R-R features alike)."""
    from heartbeat.prepare.arrays import Split

    reps = -(-n // len(split.y))

    def tile(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(np.tile(a, (reps,) + (1,) * (a.ndim - 1))[:n])

    return Split(X=tile(np.asarray(split.X, np.float32)), y=tile(np.asarray(split.y)), R=tile(split.R))


class EpochClock:
    """Wall time at the end of every epoch, from ``start``, and the epoch's validation accuracy.

    ``stop_at``: stop training at the end of the first epoch whose val_accuracy reaches it.
    """

    def __init__(self, stop_at: float | None = None) -> None:
        self.start = time.perf_counter()
        self.ends: list[float] = []
        self.begins: list[float] = []
        self.val_accuracy: list[float] = []
        self.stop_at = stop_at

    def begin(self) -> None:
        self.begins.append(time.perf_counter())

    def end(self, model, logs: dict | None) -> None:
        self.ends.append(time.perf_counter() - self.start)
        self.val_accuracy.append(float((logs or {}).get("val_accuracy", float("nan"))))
        if self.stop_at is not None and self.val_accuracy[-1] >= self.stop_at:
            model.stop_training = True

    def epoch_seconds(self) -> list[float]:
        return [e - (b - self.start) for b, e in zip(self.begins, self.ends, strict=True)]


def keras_callback(clock: EpochClock):
    import keras

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            clock.begin()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            clock.end(self.model, logs)

    return Clock()


def plain_fit(tr, va, batch: int, epochs: int, clock: EpochClock) -> None:
    """What a user writes first: the paper's ResNet, Adam at Keras' defaults, ``fit`` on numpy beats."""
    import keras

    from heartbeat.model.architectures import build_resnet
    from heartbeat.train.fit import make_deterministic

    make_deterministic(0)
    model = build_resnet(5)
    model.compile(
        optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    clock.start = time.perf_counter()
    model.fit(
        np.asarray(tr.X, np.float32),
        np.asarray(tr.y),
        batch_size=batch,
        epochs=epochs,
        shuffle=True,
        validation_data=None if va is None else (np.asarray(va.X, np.float32), np.asarray(va.y)),
        callbacks=[keras_callback(clock)],
        verbose=0,
    )


def our_train(tr, va, cfg, clock: EpochClock) -> None:
    """``heartbeat.train.fit.train`` as heartbeat/train/stage.py calls it (with the R-R input when
    ``cfg.rhythm`` and the data has it), with the epoch clock as an extra callback."""
    from heartbeat.model.builders import BUILDERS
    from heartbeat.signal.context import input_width
    from heartbeat.train.fit import make_deterministic, train

    make_deterministic(cfg.seed)
    rhythm = input_width(cfg.template) if cfg.rhythm and tr.R is not None and va.R is not None else 0
    model = BUILDERS["resnet"](cfg, 5, rhythm_width=rhythm)
    clock.start = time.perf_counter()
    train(model, tr, va, cfg, callbacks=[keras_callback(clock)])


PAPER = {"class_weight": "none", "monitor": "val_loss", "lr_schedule": "step", "rhythm": False}


def bench_overhead(data: Path, rounds: int, epochs: int, batch: int | None) -> dict:
    tr, va = tiled(load(data, "train"), MITBIH_ROWS), tiled(load(data, "val"), VAL_ROWS)
    cfg = stage_cfg(epochs=epochs, rhythm=False, **({"batch_size": batch} if batch else {}))
    batch = cfg.batch_size
    ours = f"train(), params.yaml loop (class_weight {cfg.class_weight}, monitor {cfg.monitor})"
    configs = {
        "plain fit": lambda clock: plain_fit(tr, None, batch, epochs, clock),
        "plain fit + validation": lambda clock: plain_fit(tr, va, batch, epochs, clock),
        "train(), paper loop (no class weights, monitor val_loss)": lambda clock: our_train(
            tr, va, cfg.model_copy(update=PAPER), clock
        ),
        ours: lambda clock: our_train(tr, va, cfg, clock),
    }
    runs: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, run in configs.items():
            clock = EpochClock()
            run(clock)
            runs[name] += clock.epoch_seconds()[1:]  # the first epoch traces the step function
    base, base_val = median(runs["plain fit"]), median(runs["plain fit + validation"])
    rows = []
    for name, secs in runs.items():
        m = median(secs)
        rows.append(
            [
                name,
                f"{m:.2f}",
                f"{min(secs):.2f}",
                f"{MITBIH_ROWS / m:,.0f}",
                f"{m / base:.3f}",
                f"{m / base_val:.3f}",
            ]
        )
    print(
        f"\n### Seconds per epoch: the paper's ResNet, {MITBIH_ROWS:,} × 187 training beats "
        f"(+ {VAL_ROWS:,} validation), batch {batch}, {rounds} rounds × {epochs - 1} timed epochs\n"
    )
    print(
        table(
            ["loop", "median s/epoch", "best", "train beats/s", "× plain fit", "× plain fit + validation"],
            rows,
        )
    )
    return {"batch": batch, "epoch_seconds": runs, "beats_per_s": MITBIH_ROWS / base}


def bench_tta(data: Path, rounds: int, max_epochs: int, previous: bool) -> dict:
    tr, va = load(data, "train"), load(data, "val")
    cfg = stage_cfg(epochs=max_epochs)
    recipes = {f"train(), params.yaml recipe (batch {cfg.batch_size})": cfg}
    if previous:
        if cfg.batch_size != 128:
            recipes["train(), params.yaml recipe at batch 128"] = cfg.model_copy(
                update={"batch_size": 128, "lr_decay_steps": 10_000}
            )
        recipes["train(), paper recipe (batch 128, lr 1e-3 step, no weights, val_loss, beats only)"] = (
            cfg.model_copy(
                update={**PAPER, "batch_size": 128, "lr": 1e-3, "lr_decay": 0.75, "lr_decay_steps": 10_000}
            )
        )
    baseline = "plain fit, batch 32, 10 epochs (baseline)"
    out: dict = {"train_beats": len(tr.y), "val_beats": len(va.y), "recipe": cfg.model_dump(), "runs": []}
    results: dict[str, list[dict]] = {baseline: [], **{name: [] for name in recipes}}
    target = best = 0.0
    for r in range(rounds):
        clock = EpochClock()
        plain_fit(tr, va, 32, 10, clock)
        target, best = clock.val_accuracy[9], max(clock.val_accuracy)
        results[baseline].append({"ends": clock.ends, "val_accuracy": clock.val_accuracy})
        for name, c in recipes.items():
            clock = EpochClock(stop_at=best)
            our_train(tr, va, c, clock)
            results[name].append({"ends": clock.ends, "val_accuracy": clock.val_accuracy})
        print(f"round {r + 1}/{rounds} done", flush=True)

    def reach(run: dict, goal: float) -> tuple[float, int] | None:
        hit = np.flatnonzero(np.asarray(run["val_accuracy"]) >= goal)
        return (run["ends"][hit[0]], int(hit[0]) + 1) if hit.size else None

    base = median([run["ends"][9] for run in results[baseline]])
    base_best = median([reach(run, best)[0] for run in results[baseline]])
    rows = []
    for name, runs in results.items():
        row = [name]
        for goal, ref in ((target, base), (best, base_best)):
            hits = [reach(run, goal) for run in runs]
            if name == baseline and goal == target:
                hits = [(run["ends"][9], 10) for run in runs]
            if all(hits):
                t = median([h[0] for h in hits])
                row += [f"{t:.0f} s (epoch {hits[0][1]})", f"{ref / t:.2f}"]
            else:
                row += [f"not within {max_epochs} epochs", ""]
        rows.append(row)
    print(
        f"\n### Time to accuracy on {len(tr.y):,} real training beats (validation {len(va.y):,}), {rounds} rounds\n\n"
        f"Target: val_accuracy {target:.4f}, plain fit's after 10 epochs at batch 32; stricter: {best:.4f}, "
        "the best of its 10 epochs.\n"
    )
    print(table(["recipe", f"time to {target:.4f}", "speed-up", f"time to {best:.4f}", "speed-up"], rows))
    out.update(target=target, best=best, results=results)
    return out


def resnet_flops() -> tuple[float, int]:
    """Forward FLOPs per beat of the paper's ResNet (multiply-adds × 2 of its Conv1D and Dense layers)."""
    import keras

    from heartbeat.model.architectures import build_resnet

    model = build_resnet(5)
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            length, cout = layer.output.shape[1], layer.output.shape[2]
            k, cin = layer.kernel.shape[0], layer.kernel.shape[1]
            flops += 2 * length * k * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return float(flops), model.count_params()


def cpu_peak() -> tuple[float, str]:
    import os

    mhz = 0.0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            mhz = max(mhz, float(line.split(":")[1]))
    cores = os.cpu_count() or 1
    return cores * mhz * 1e6 * 32, f"{cores} cores × {mhz / 1000:.2f} GHz × 32 fp32 FLOP/cycle"


def bench_flops(beats_per_s: float | None) -> dict:
    fwd, params = resnet_flops()
    peak, how = cpu_peak()
    print(
        f"\n### Physical reference\n\nResNet ({params:,} parameters): {fwd / 1e6:.2f} MFLOP forward per beat, "
    )
    print(
        f"about {3 * fwd / 1e6:.1f} MFLOP per training beat (forward + backward ≈ 3× forward). Peak: {how} = {peak / 1e9:.0f} GFLOP/s."
    )
    out = {"forward_flops": fwd, "train_flops": 3 * fwd, "peak_flops": peak, "peak": how}
    if beats_per_s:
        achieved = beats_per_s * 3 * fwd
        print(
            f"At {beats_per_s:,.0f} training beats/s: {achieved / 1e9:.1f} GFLOP/s, {achieved / peak:.0%} of peak."
        )
        out.update(beats_per_s=beats_per_s, achieved_flops=achieved)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="*", help="overhead, tta and/or flops (default: all three)")
    ap.add_argument(
        "--data", type=Path, help="folder for the prepared physionet beats (kept; made if missing)"
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tta-rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per overhead run (the first is not timed)")
    ap.add_argument("--batch", type=int, help="overhead at this batch size instead of params.yaml's")
    ap.add_argument(
        "--tta-max-epochs", type=int, default=10, help="tta: stop a recipe after this many epochs"
    )
    ap.add_argument("--no-previous", action="store_true", help="tta: skip the previous recipes")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.what = args.what or ["overhead", "tta", "flops"]
    if set(args.what) - {"overhead", "tta", "flops"}:
        ap.error(f"unknown benchmark {sorted(set(args.what) - {'overhead', 'tta', 'flops'})}")
    logging.basicConfig(level=logging.WARNING)
    info = print_machine()
    results: dict = {"machine": info}
    with TempDir("heartbeat-bench-train-") as tmp:
        data = physionet_prepared(args.data or tmp / "prepared")
        if "overhead" in args.what:
            results["overhead"] = bench_overhead(data, args.rounds, args.epochs, args.batch)
        if "tta" in args.what:
            results["tta"] = bench_tta(data, args.tta_rounds, args.tta_max_epochs, not args.no_previous)
        if "flops" in args.what:
            results["flops"] = bench_flops(results.get("overhead", {}).get("beats_per_s"))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
