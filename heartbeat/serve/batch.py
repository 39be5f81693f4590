"""``heartbeat predict`` over many recordings: several inputs, a folder or a RECORDS file.

The model is loaded once (once per worker process with ``--parallel processes``) and the
recordings are classified ``--jobs`` at a time. Each recording gets its own output file in
``--output-dir``, written atomically, and one row in the summary table beside them. A recording
that fails gets its one-line error, and the others go on; the exit status says that some failed.
``--shard I/N`` keeps every N-th recording of the list, from the I-th, so that a job array (Slurm,
Kubernetes) spreads an archive over machines; ``heartbeat score`` reads their folders together.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartbeat.core.errors import DataError, HeartbeatError, ParamsError, first_line

log = logging.getLogger("heartbeat")

SUFFIXES = {"csv": ".csv", "json": ".json", "wfdb": ".heartbeat"}
"""The output file of each format, after the recording's name (.heartbeat: the WFDB annotator)."""
DATA_SUFFIXES = {".edf", ".csv", ".tsv", ".txt", ".npy"}
"""Suffixes dropped from an input's name to name its output (a WFDB record has none)."""


@dataclass(frozen=True)
class Job:
    """One recording to classify and the file its rows go to."""

    name: str
    input: str
    output: Path


@dataclass(frozen=True)
class Outcome:
    """What became of one :class:`Job`: its class counts, or its one-line error."""

    job: Job
    counts: tuple[int, ...] | None = None
    seconds: float = 0.0
    error: str | None = None


def is_batch(args: argparse.Namespace) -> bool:
    """Whether ``heartbeat predict`` runs over many recordings: several inputs, a folder, a RECORDS
    file, or --output-dir, --jobs or --shard given."""
    many = len(args.input) > 1 or any(Path(p).is_dir() or Path(p).name == "RECORDS" for p in args.input)
    return many or args.output_dir is not None or args.shard is not None or args.jobs > 1


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N), with 0 <= I < N."""
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ParamsError(f"--shard {text}: give I/N, e.g. 0/4 for the first of 4 shards") from None
    if n < 1 or not 0 <= i < n:
        raise ParamsError(f"--shard {text}: needs 0 <= I < N, e.g. 0/4 to 3/4 for 4 shards")
    return i, n


def expand(inputs: Sequence[str]) -> list[str]:
    """The recordings the inputs name: a folder's RECORDS file or its records (``*.hea``) and EDF
    files, a RECORDS file's records, or the input itself."""
    found: list[str] = []
    for given in inputs:
        path = Path(given)
        if given == "-":
            raise ParamsError("-: standard input is one recording; it cannot be one of many")
        if path.is_dir():
            listing = path / "RECORDS"
            if listing.is_file():
                found += _listed(listing)
                continue
            inside = sorted(
                [*(str(h.with_suffix("")) for h in path.glob("*.hea")), *map(str, path.glob("*.edf"))]
            )
            if not inside:
                raise DataError(
                    f"{given}: the folder has no RECORDS file, no WFDB records (.hea) and no .edf files"
                )
            found += inside
        elif path.name == "RECORDS" and path.is_file():
            found += _listed(path)
        else:
            found.append(given)
    return found


def _listed(listing: Path) -> list[str]:
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{listing}: cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})"
        ) from None
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise DataError(f"{listing}: lists no records")
    return [str(listing.parent / n) for n in names]


def output_name(path: str) -> str:
    p = Path(path)
    return p.stem if p.suffix.lower() in DATA_SUFFIXES else p.name


def plan_jobs(recordings: Sequence[str], output_dir: Path, fmt: str) -> list[Job]:
    """One job per recording; two recordings of one name would write one file, so they are refused."""
    seen: dict[str, str] = {}
    jobs = []
    for path in recordings:
        name = output_name(path)
        if name in seen:
            raise ParamsError(
                f"{path}: has the same name as {seen[name]}, and both would be written to "
                f"{output_dir / (name + SUFFIXES[fmt])}; classify them in separate calls"
            )
        seen[name] = path
        jobs.append(Job(name, path, output_dir / f"{name}{SUFFIXES[fmt]}"))
    return jobs


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def check_outputs(jobs: Sequence[Job], model: str, output_dir: Path) -> None:
    """Refuse, before any work, an output folder that is a file and outputs that are inputs."""
    from heartbeat.serve.steps import files_read

    if output_dir.exists() and not output_dir.is_dir():
        raise ParamsError(f"--output-dir {output_dir}: is not a folder")
    read = {i for job in jobs for p in files_read(job.input, model) if (i := _identity(p)) is not None}
    for job in jobs:
        if _identity(job.output) in read:
            raise ParamsError(
                f"--output-dir {output_dir}: the output {job.output} is one of the inputs; writing it would "
                "destroy that file, choose another folder"
            )


# ---------------------------------------------------------------- work


def predict_one(job: Job, runner, args: argparse.Namespace) -> Outcome:
    """Classify one recording and write its output; any failure becomes the outcome's error."""
    from heartbeat.core.atomic import atomic_path
    from heartbeat.serve.steps import check_labels, classify, read_beats, render

    start = time.perf_counter()
    try:
        beats = read_beats(job.input, args, **runner.patient_options)
        check_labels(beats, runner, job.input)
        proba, smoothing = classify(beats, runner, args, progress=False)
        data = render(beats, runner, proba, smoothing, args.format, job.input)
        with atomic_path(job.output) as tmp:
            tmp.write_bytes(data)
    except HeartbeatError as exc:
        return Outcome(job, error=str(exc), seconds=time.perf_counter() - start)
    except Exception as exc:  # a bug on one recording must not stop the others; it is named as one
        return Outcome(
            job,
            error=f"{job.input}: unexpected {type(exc).__name__} ({first_line(exc, 160)}); please report it",
            seconds=time.perf_counter() - start,
        )
    counts = np.bincount(proba.argmax(axis=1), minlength=runner.n_classes)
    return Outcome(job, tuple(int(c) for c in counts), time.perf_counter() - start)


_WORKER: dict = {}
"""The model and options of a worker process, loaded once by :func:`_start_worker`."""


def _start_worker(model: str, backend: str, threads: int, precision: str, args: argparse.Namespace) -> None:
    from heartbeat.serve.runners import load_runner

    logging.getLogger("heartbeat").setLevel(logging.ERROR)  # the parent already said what it loaded
    _WORKER["runner"] = load_runner(model, backend, threads, precision)
    _WORKER["args"] = args


def _work(job: Job) -> Outcome:
    return predict_one(job, _WORKER["runner"], _WORKER["args"])


def _locked(run):
    """``run`` behind a lock: one interpreter is not safe to call from two threads at once."""
    lock = threading.Lock()

    def call(*arrays):
        with lock:
            return run(*arrays)

    return call


def threads_per_worker(jobs: int, threads: int | None) -> int:
    """The model's threads in each worker: --threads, else the cores shared out among the jobs."""
    if threads:
        return threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // jobs)


def run_jobs(jobs: Sequence[Job], runner, model: str, backend: str, args: argparse.Namespace):
    """Yield the :class:`Outcome` of each job as it finishes."""
    workers = min(args.jobs, len(jobs))
    if workers <= 1:
        for job in jobs:
            yield predict_one(job, runner, args)
        return
    if args.parallel == "threads":
        shared = dataclasses.replace(runner, run=_locked(runner.run))
        pool: cf.Executor = cf.ThreadPoolExecutor(max_workers=workers)
        futures = [pool.submit(predict_one, job, shared, args) for job in jobs]
    else:
        # spawn, not fork: the parent holds a loaded interpreter and its threads.
        pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(model, backend, threads_per_worker(workers, args.threads), args.precision, args),
        )
        futures = [pool.submit(_work, job) for job in jobs]
    try:
        for future in cf.as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- the command


class SomeFailed(DataError):
    """Some recordings of a batch failed; each has had its line."""


def summary_csv(outcomes: Sequence[Outcome], class_names: Sequence[str]) -> str:
    """One row per recording, in the order of the list: its counts per class, or its error."""
    import pandas as pd

    rows = []
    for o in outcomes:
        row = {"record": o.job.name, "input": o.job.input, "status": "failed" if o.error else "ok"}
        row["beats"] = sum(o.counts) if o.counts else None
        for name, count in zip(class_names, o.counts or [None] * len(class_names), strict=True):
            row[name] = count
        row |= {"output": str(o.job.output) if not o.error else "", "seconds": round(o.seconds, 3)}
        row["error"] = o.error or ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    for name in ("beats", *class_names):
        frame[name] = frame[name].astype("Int64")
    return frame.to_csv(index=False, lineterminator="\n")


def run(args: argparse.Namespace) -> None:
    """``heartbeat predict`` over many recordings (see the module docstring)."""
    from heartbeat.core.atomic import write_text
    from heartbeat.core.progress import progress_bar
    from heartbeat.serve.runners import load_runner
    from heartbeat.serve.steps import PROG, check_model, default_model, synthetic_warning

    if args.output_dir is None:
        raise ParamsError(
            "several recordings: give --output-dir DIR, for one output per recording and a summary"
        )
    for option, value in (("-o", args.output), ("--plot", args.plot)):
        if value is not None:
            raise ParamsError(
                f"{option}: names one file, for one recording; with many, outputs go to --output-dir"
            )
    recordings = expand(args.input)
    total = len(recordings)
    summary_name = "summary.csv"
    if args.shard is not None:
        index, count = parse_shard(args.shard)
        recordings = recordings[index::count]
        summary_name = f"summary-shard-{index}-of-{count}.csv"
    output_dir = Path(args.output_dir)
    jobs = plan_jobs(recordings, output_dir, args.format)
    model, backend = (args.model, args.backend) if args.model else default_model(args.backend)
    check_outputs(jobs, model, output_dir)
    if not jobs:
        log.warning("--shard %s: takes none of the %d recordings; nothing to do", args.shard, total)
        return
    runner = load_runner(
        model, backend, threads_per_worker(min(args.jobs, len(jobs)), args.threads), args.precision
    )
    check_model(runner, model, args.dataset)
    warning = synthetic_warning(runner)
    if warning:
        log.warning("%s", warning)
    start = time.perf_counter()
    outcomes: dict[Job, Outcome] = {}
    show = {"auto": None, "on": True, "off": False}[args.progress]
    with progress_bar(len(jobs), f"{PROG} predict", unit="rec", disable=args.quiet or show is False) as bar:
        for outcome in run_jobs(jobs, runner, model, backend, args):
            outcomes[outcome.job] = outcome
            if outcome.error:
                _say(bar, f"{PROG} predict: error: {outcome.error}")
            bar.update(1)
    ordered = [outcomes[job] for job in jobs]
    summary = output_dir / summary_name
    write_text(summary, summary_csv(ordered, runner.class_names))
    failed = [o for o in ordered if o.error]
    if not args.quiet:
        counts = (
            np.sum([o.counts for o in ordered if o.counts], axis=0) if len(failed) < len(ordered) else None
        )
        beats = int(counts.sum()) if counts is not None else 0
        per_class = (
            ", ".join(f"{n} {int(c):,}" for n, c in zip(runner.class_names, counts, strict=True))
            if counts is not None
            else "none"
        )
        shard = f" (shard {args.shard} of {total})" if args.shard else ""
        print(
            f"{PROG} predict: {len(jobs)} recordings{shard}, {len(jobs) - len(failed)} ok, {len(failed)} failed, "
            f"in {time.perf_counter() - start:.1f} s ({min(args.jobs, len(jobs))} jobs, {args.parallel}); "
            f"{beats:,} beats: {per_class}; outputs and {summary_name} in {output_dir}",
            file=sys.stderr,
        )
    if failed:
        raise SomeFailed(
            f"{len(failed)} of {len(jobs)} recordings failed (each named above, and in {summary})"
        )


def _say(bar, line: str) -> None:
    """A line on stderr that a tqdm bar does not overwrite."""
    write = getattr(bar, "write", None)
    if write is not None:
        write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)
