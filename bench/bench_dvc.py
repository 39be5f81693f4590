"""What DVC costs around the stages, and what a rerun after one param edit costs.

Usage: python bench/bench_dvc.py [--size demo|tiny] [--rounds N] [--json FILE]

In a temporary copy of the project (a fresh git repo, as tests/conftest.py makes), on the demo
source at its params.yaml size (``--size demo``, the documented epochs) or tests' tiny size:

* a full ``dvc repro``, with the wall time of each stage (from when DVC announces it);
* a no-op ``dvc repro`` (everything up to date) and ``dvc status``, ``--rounds`` times, medians;
* ``train_mlp.dropout`` edited: the rerun's wall time against the full run, and which stages ran;
* a training stage forced to rerun with unchanged params (``dvc repro -f -s train_resnet_ptb``),
  then ``dvc repro``: with byte-deterministic model files only ``report`` follows;
* the evaluate stage's work for one model (``stages/evaluate.py mlp_ptb``, what
  ``evaluate@mlp_ptb`` runs) against all four in one process (what one ``evaluate`` stage over
  every model would run after any model changed), interleaved, medians.

bench/bench_pipeline.py runs the same on full-size data.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, TempDir, interleaved, median, print_machine, table, write_json

from testkit import projects
from testkit.projects import TINY_PARAMS as TINY
from testkit.projects import edit_params

ENV = projects.env()
DVC = str(Path(PYTHON).with_name("dvc"))


def make_project(dest: Path, params: dict) -> Path:
    """A copy of the pipeline in a fresh git repo, with ``params`` merged into params.yaml."""
    return projects.make_project(ROOT, dest, params, tiny=False)


def repro(project: Path, *args: str) -> tuple[float, dict[str, float], str]:
    """Run ``dvc repro ARGS``; (wall seconds, seconds per stage that ran, output).

    A stage's time runs from DVC's "Running stage" line to the next such line (or the end), so it
    includes DVC's bookkeeping for that stage (hashing its outputs, writing dvc.lock).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [DVC, "repro", *args],
        cwd=project,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marks: list[tuple[str, float]] = []
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"Running stage '([^']+)'", line)
        if m:
            marks.append((m.group(1), time.perf_counter()))
    proc.wait()
    end = time.perf_counter()
    output = "".join(lines)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc repro {' '.join(args)} failed:\n{output[-4000:]}")
    stages = {
        name: (marks[i + 1][1] if i + 1 < len(marks) else end) - start
        for i, (name, start) in enumerate(marks)
    }
    return end - t0, stages, output


def dvc_seconds(project: Path, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([DVC, *args], cwd=project, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - t0


def stage_table(stages: dict[str, float], total: float) -> str:
    rows = [[name, f"{s:.1f}", f"{s / total:.0%}"] for name, s in stages.items()]
    rows.append(["dvc start-up and checks before the first stage", f"{total - sum(stages.values()):.1f}", ""])
    rows.append(["**total**", f"**{total:.1f}**", "100%"])
    return table(["stage", "wall s", "share"], rows)


def training_table(project: Path) -> str:
    """Epochs run and best epoch of each model, from models/<name>.json (training time is in the stage
    log only, so that a rerun leaves that file unchanged; the stage table above has the wall times)."""
    import json

    rows = []
    for path in sorted((project / "models").glob("*.json")):
        info = json.loads(path.read_text())
        ens = info.get("ensemble") or {}  # a seed ensemble: per member, e.g. "14 + 23 + 20 (57)"
        epochs, best = info.get("epochs_run"), info.get("best_epoch")
        if ens:
            epochs = f"{' + '.join(map(str, ens.get('epochs_run', [])))} ({epochs})"
            best = " / ".join(map(str, ens.get("best_epoch", [])))
        rows.append(
            [
                info.get("stage", path.stem),
                epochs,
                best,
                info.get("global_batch_size"),
            ]
        )
    return table(["stage", "epochs run", "best epoch", "batch"], rows)


def full_repro(project: Path, label: str) -> dict:
    """One ``dvc repro`` of ``project`` from scratch, printed as the stage and training tables;
    returns its wall seconds and the seconds of each stage."""
    total, stages, _ = repro(project)
    print(f"\n### Full `dvc repro`, {label}\n")
    print(stage_table(stages, total))
    print()
    print(training_table(project))
    return {"seconds": total, "stages": stages}


def bench_project(project: Path, rounds: int, label: str, identical: bool = True) -> dict:
    """The measurements on an existing project copy (run from scratch here)."""
    out: dict = {"full": full_repro(project, label)}
    total = out["full"]["seconds"]

    noop = [repro(project)[0] for _ in range(rounds)]
    status = [dvc_seconds(project, "status") for _ in range(rounds)]
    out["noop"], out["status"] = noop, status

    edit_params(project, {"train_mlp": {"dropout": 0.25}})
    rerun, rerun_stages, _ = repro(project)
    out["rerun"] = {"seconds": rerun, "stages": rerun_stages}
    print(f"\n### After editing `train_mlp.dropout`: {rerun:.1f} s, {rerun / total:.1%} of the full run\n")
    print(stage_table(rerun_stages, rerun))

    same, same_stages = float("nan"), {}
    if identical:
        repro(project, "-f", "-s", "train_resnet_ptb")
        same, same_stages, _ = repro(project)
        out["retrain_identical"] = {"seconds": same, "stages": same_stages}

    print(f"\n### DVC overhead, {label}, {rounds} rounds\n")
    rows = [
        ["no-op `dvc repro` (all up to date)", f"{median(noop):.2f}", f"{min(noop):.2f}", "< 3 s"],
        ["`dvc status`", f"{median(status):.2f}", f"{min(status):.2f}", ""],
    ]
    if identical:
        rows.append(
            [
                "`dvc repro` after `dvc repro -f -s train_resnet_ptb` (same params, identical model bytes)",
                f"{same:.1f}",
                "",
                "ran: " + (", ".join(same_stages) or "nothing"),
            ]
        )
    print(table(["command", "median s", "best s", "note"], rows))

    def evaluate(*names: str):
        return lambda: subprocess.run(
            [PYTHON, "stages/evaluate.py", *names], cwd=project, env=ENV, check=True, capture_output=True
        )

    ev = interleaved(
        {"all four models": evaluate(), "mlp_ptb only": evaluate("mlp_ptb")}, rounds, warmup=False
    )
    out["evaluate"] = ev
    base = median(ev["all four models"])
    print(f"\n### `python stages/evaluate.py`, {rounds} rounds\n")
    print(
        table(
            ["models evaluated", "median s", "× all four"],
            [[k, f"{median(v):.2f}", f"{median(v) / base:.2f}"] for k, v in ev.items()],
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["demo", "tiny"], default="demo")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    info = print_machine()
    with TempDir("heartbeat-bench-dvc-") as tmp:
        project = make_project(tmp / "project", TINY if args.size == "tiny" else {})
        label = "demo source at params.yaml sizes and epochs" if args.size == "demo" else "tiny demo project"
        results = bench_project(project, args.rounds, label)
    write_json(args.json, {"machine": info, "size": args.size, **results})


if __name__ == "__main__":
    main()
