"""What every stage script and the CLI share at the edge: logging, signals and clean errors.

A :class:`HeartbeatError` becomes one line on stderr and a non-zero exit, never
a traceback. SIGTERM (what ``kill``, DVC and CI send) is turned into
``KeyboardInterrupt`` so that it unwinds through the same ``try``/``except
BaseException`` paths as Ctrl-C: temporary files are removed and the previous
outputs stay in place.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

from heartbeat.errors import HeartbeatError
from heartbeat.logs import setup


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def run(name: str, main: Callable[[], None]) -> None:
    """Run ``main`` as the stage or command ``name`` and exit with its status."""
    setup(name)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        main()
    except HeartbeatError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        # By now the exception has unwound through every temporary file's cleanup. Exit without
        # the interpreter's teardown: with TensorFlow's thread pools stopped mid-step, that
        # teardown sometimes crashed (SIGSEGV instead of 130; seen once in three runs here).
        print(f"{name}: interrupted; previous outputs are unchanged", file=sys.stderr)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
