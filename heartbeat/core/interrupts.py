"""Ctrl-C and SIGTERM held back while native code runs, and raised where unwinding is safe.

Python runs a signal's handler at the next bytecode of the main thread, wherever that is. During
``model.fit`` that can be inside TensorFlow's own Python: a finaliser releasing a tensor or a
``tf.data`` iterator, a function being traced, an iterator being swapped between epochs. A
``KeyboardInterrupt`` raised there leaves the C++ objects behind half released, and the process
can die of SIGSEGV (-11) instead of exiting 130, seen on a loaded machine. Inside
:func:`deferred_interrupts` the handlers only record the signal; the caller raises it with
``check()`` at a point it chose (Keras calls it between batches), or it is raised when the block
ends. A second signal is raised at once: whoever sends it wants the process to stop now.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Callable[[], None]]:
    """Within the block, SIGINT and SIGTERM are recorded, not acted on; yields ``check``, which
    raises the recorded one through its previous handler (``KeyboardInterrupt`` for both, under
    :func:`heartbeat.core.entry.guarded`). On leaving the block the handlers are restored and a
    recorded signal is raised. Only signals that already have a Python handler are deferred: one
    ignored, or left to the system's default (outside a stage), stays as it is; off the main
    thread, where no handler can be set, nothing is deferred."""
    previous = {s: signal.getsignal(s) for s in DEFERRED}
    deferred = {s: h for s, h in previous.items() if callable(h)}
    if threading.current_thread() is not threading.main_thread() or not deferred:
        yield lambda: None
        return
    pending: list[int] = []

    def record(signum: int, frame: object) -> None:
        if pending:  # the second one: stop now
            deferred[signum](signum, frame)
        pending.append(signum)

    def check() -> None:
        if pending:
            signum = pending[0]
            deferred[signum](signum, None)

    for signum in deferred:
        signal.signal(signum, record)
    try:
        yield check
    finally:
        for signum, handler in deferred.items():
            signal.signal(signum, handler)
    check()
