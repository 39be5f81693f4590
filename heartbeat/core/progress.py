"""Progress of long work: a tqdm bar on a terminal, a plain log line every few seconds elsewhere.

tqdm redraws its bar with carriage returns and escape codes. In a log file (DVC's, CI's, a
``2> log`` redirect) that becomes a wall of fragments, so off a terminal the same progress is one
short line through the ``heartbeat`` logger at most every ``every_s`` seconds: a long download
still shows it is alive, a quick one says nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

log = logging.getLogger("heartbeat")

EVERY_S = 5.0
"""Seconds between two progress lines off a terminal."""

T = TypeVar("T")


class LogProgress:
    """The part of tqdm's interface we use, reported as log lines; a context manager like tqdm."""

    def __init__(
        self,
        total: float | None,
        desc: str,
        unit: str = "it",
        initial: float = 0,
        unit_scale: bool = False,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.unit_scale = total, desc, unit, unit_scale
        self.n = initial
        self.every_s, self.clock = every_s, clock
        self.last = clock()

    def _amount(self, value: float) -> str:
        if self.unit_scale:
            return tqdm.format_sizeof(value, self.unit, 1024 if self.unit == "B" else 1000)
        return f"{value:,.0f} {self.unit}"

    def line(self) -> str:
        done = self._amount(self.n)
        if not self.total:
            return f"{self.desc}: {done}"
        return f"{self.desc}: {done} of {self._amount(self.total)} ({self.n / self.total:.0%})"

    def update(self, n: float = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            log.info("%s", self.line())

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(
    total: float | None,
    desc: str,
    unit: str = "it",
    initial: float = 0,
    unit_scale: bool = False,
    disable: bool = False,
) -> Any:
    """A tqdm bar on stderr when it is a terminal, else a :class:`LogProgress`; both take ``update(n)``."""
    if not disable and sys.stderr.isatty():
        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit=unit,
            unit_scale=unit_scale,
            unit_divisor=1024 if unit == "B" else 1000,
            file=sys.stderr,
            leave=False,
        )
    return LogProgress(total, desc, unit, initial, unit_scale, every_s=float("inf") if disable else EVERY_S)


def track(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate over ``items`` with a :func:`progress_bar`."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
