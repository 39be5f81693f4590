"""Quiet, useful logs: native library lines filtered out, progress as plain lines off a terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from heartbeat.core.native import LineFilter
from heartbeat.core.progress import LogProgress, progress_bar, track

NATIVE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795957888.690619   10048 port.cc:153] oneDNN custom operations are on.\n",
    b"E0000 00:00:1795957743.093326    5990 node_def_util.cc:682] NodeDef mentions attribute x\n",
    b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32\n",
]


def test_line_filter_drops_native_lines_in_any_pieces() -> None:
    ours = [b"evaluate: INFO: accuracy 0.9\n", b"Error: a real message\n", b"Fine\n"]
    stream = b"".join([NATIVE[0], ours[0], NATIVE[1], NATIVE[2], ours[1], NATIVE[3], ours[2]])
    for size in (1, 7, 64, len(stream)):
        lines = LineFilter()
        out = b"".join(lines.feed(stream[i : i + size]) for i in range(0, len(stream), size)) + lines.flush()
        assert out == b"".join(ours), size


def test_line_filter_passes_progress_bars_without_waiting_for_a_newline() -> None:
    lines = LineFilter()
    assert lines.feed(b"\rmitdb records:  10%") == b"\rmitdb records:  10%"
    assert lines.feed(b"\rmitdb records:  20%\n") == b"\rmitdb records:  20%\n"
    assert lines.feed(b"E0000 00:00:1.5") == b""  # might be native: held until it can tell
    assert lines.feed(b" 1 a.cc:1] x\nok\n") == b"ok\n"


def test_a_stage_shows_no_tensorflow_lines() -> None:
    """A stage that imports TensorFlow inside run(): stderr has our lines and nothing from C++."""
    script = textwrap.dedent(
        """
        import logging, os, sys
        from heartbeat.core.entry import run

        def main():
            import tensorflow as tf
            tf.constant(1.0) + 1.0
            os.write(2, b"E0000 00:00:17.5   1 node_def_util.cc:682] NodeDef mentions attribute\\n")
            logging.getLogger("heartbeat").info("done")
            print("a plain line", file=sys.stderr)

        run("demo_stage", main)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["demo_stage: INFO: done", "a plain line"]


def test_progress_off_a_terminal_is_a_line_every_few_seconds(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    bar = LogProgress(total=10, desc="mitdb records", unit="records", every_s=5, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="heartbeat"):
        for _ in range(10):
            now[0] += 1.5
            bar.update(1)
    assert [r.getMessage() for r in caplog.records] == [
        "mitdb records: 4 records of 10 records (40%)",
        "mitdb records: 8 records of 10 records (80%)",
    ]
    size = LogProgress(total=3 << 20, desc="mitdb/100.dat", unit="B", unit_scale=True, initial=1 << 20)
    assert size.line() == "mitdb/100.dat: 1.00MB of 3.00MB (33%)"


def test_no_tqdm_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(progress_bar(5, "x"), LogProgress)
    assert list(track(range(3), "x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
