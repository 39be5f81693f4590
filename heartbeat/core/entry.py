"""What every stage script and the ``heartbeat`` command share at the edge: logging, signals and clean errors.

A :class:`HeartbeatError` becomes one line on stderr and a non-zero exit, never
a traceback. What C++ libraries log straight to stderr (TensorFlow's absl lines) is filtered out
(heartbeat/core/native.py). SIGTERM (what ``kill``, DVC and CI send) is turned into
``KeyboardInterrupt`` so that it unwinds through the same ``try``/``except
BaseException`` paths as Ctrl-C: temporary files are removed and the previous
outputs stay in place. What a SIGKILL leaves behind is recovered when the next
stage starts (:func:`run`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

from heartbeat.core.atomic import recover_folders
from heartbeat.core.errors import HeartbeatError
from heartbeat.core.layout import output_folders
from heartbeat.core.logs import setup
from heartbeat.core.native import native_log_filter
from heartbeat.core.streams import reopen_closed_standard_streams

EXIT_INTERRUPTED = 130


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def guarded(
    name: str,
    main: Callable[[], None],
    exit_code: Callable[[HeartbeatError], int] = lambda exc: exc.exit_code,
    interrupted: str = "interrupted",
) -> int:
    """Run ``main`` as ``name`` with logging and SIGTERM handling; return its exit status.

    ``exit_code`` maps a :class:`HeartbeatError` to the status to return (the CLI returns 2 for bad
    input); ``interrupted`` is the line printed after Ctrl-C or SIGTERM, which return 130.
    """
    reopen_closed_standard_streams()  # before logging takes sys.stderr
    setup(name)
    signal.signal(signal.SIGTERM, _on_sigterm)
    with native_log_filter():
        try:
            main()
        except HeartbeatError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            return exit_code(exc)
        except KeyboardInterrupt:
            print(f"{name}: {interrupted}", file=sys.stderr)
            return EXIT_INTERRUPTED
    return 0


def recover_outputs(folders: tuple[os.PathLike[str] | str, ...] | None = None) -> None:
    """Remove the temporaries of writers that were killed and finish their folder swaps
    (:func:`heartbeat.core.atomic.recover`), in the folders the stages write to
    (:func:`heartbeat.core.layout.output_folders`), and say what was done, at WARNING: a deletion
    is never silent."""
    log = logging.getLogger("heartbeat")
    for folder in output_folders() if folders is None else folders:
        try:
            done = recover_folders([folder])
        except OSError as exc:  # never a reason to fail the stage
            log.warning("%s: could not clean up after an earlier run (%s)", folder, exc.strerror or exc)
            continue
        for path in done:
            if path.name.startswith("."):
                log.warning("removed %s, left behind by an earlier run that was killed", path)
            else:
                log.warning("%s: restored its previous version; an earlier run was killed replacing it", path)


def run(name: str, main: Callable[[], None]) -> NoReturn:
    """Run the stage ``name`` (after :func:`recover_outputs`) and exit with its status.

    Import TensorFlow (Keras, the model and train packages) inside ``main``, not at the top of the
    stage script: its C++ start-up lines are only filtered once ``run`` has begun.
    """

    def stage() -> None:
        recover_outputs()
        main()

    code = guarded(name, stage, interrupted="interrupted; previous outputs are unchanged")
    if code == EXIT_INTERRUPTED:
        # By now the exception has unwound through every temporary file's cleanup. Exit without
        # the interpreter's teardown: with TensorFlow's thread pools stopped mid-step, that
        # teardown can crash (SIGSEGV instead of 130).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
