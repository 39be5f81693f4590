"""Local stand-ins for PhysioNet: a mirror folder over the shared real records, and HTTP servers on 127.0.0.1.

Tests and benchmarks never reach the internet: they serve a folder (or a handler of their own) from a
background thread on an ephemeral port, and stop it when done.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

HEALTHY = "patient003/s0017lre"
"""The shared PTB record a mirror relabels as a healthy control: all five shared records are
myocardial infarction, and the physionet source needs both classes."""


def build_mirror(root: Path, shared: Path, mit_records: Sequence[str] | None = None) -> Path:
    """A PhysioNet-layout folder (``root/mitdb``, ``root/ptbdb``, each with a RECORDS index) of links
    to ``shared``'s records: ``mit_records`` (default: all of them) and every PTB record, one of
    them relabelled healthy (:data:`HEALTHY`)."""
    mit = root / "mitdb"
    mit.mkdir(parents=True)
    records = (
        list(mit_records) if mit_records is not None else (shared / "mitdb" / "RECORDS").read_text().split()
    )
    for record in records:
        for ext in ("hea", "dat", "atr"):
            (mit / f"{record}.{ext}").symlink_to(shared / "mitdb" / f"{record}.{ext}")
    (mit / "RECORDS").write_text("\n".join(records) + "\n")
    ptb_records = (shared / "ptbdb" / "RECORDS").read_text().split()
    for record in ptb_records:
        for src in (shared / "ptbdb").glob(record + ".*"):
            target = root / "ptbdb" / src.relative_to(shared / "ptbdb")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(src)
    (root / "ptbdb" / "RECORDS").write_text("\n".join(ptb_records) + "\n")
    healthy = root / "ptbdb" / f"{HEALTHY}.hea"
    text = healthy.read_text()
    healthy.unlink()
    if "Reason for admission: Myocardial infarction" not in text:
        raise ValueError(f"{healthy}: expected an infarction record to relabel")
    healthy.write_text(
        text.replace("Reason for admission: Myocardial infarction", "Reason for admission: Healthy control")
    )
    return root


@dataclass
class Mirror:
    """A served folder: its URL, the faults to inject per path, and the requests it saw."""

    root: Path
    url: str
    faults: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(http.server.SimpleHTTPRequestHandler):
    mirror: Mirror

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, body: bytes, length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:
        path = urllib.parse.urlparse(self.path).path
        self.mirror.requests.append((path, self.headers.get("Range")))
        fault = self.mirror.faults.get(path)
        if fault is None:
            return super().do_GET()
        data = (self.mirror.root / path.lstrip("/")).read_bytes()
        if fault == "404":
            self.send_error(404, "Not Found")
        elif fault == "truncated":  # a complete transfer of a file that is itself short
            self._send(data[: len(data) // 2])
        elif fault == "bad-header":
            self._send(b"this is not a WFDB header\nneither is this\n")
        elif fault in ("cut", "cut-once"):  # announce the full size, send half, hang up
            if fault == "cut-once":
                del self.mirror.faults[path]
            self._send(data[: len(data) // 2], length=len(data))
            self.close_connection = True
        return None


class BytesHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` at any path, honouring ``Range`` unless ``honour_range`` is false; ``log`` keeps
    each request's Range header. The first ``cuts`` responses announce the whole body, send ``cut``
    bytes and hang up. Subclass it (or ``type(...)`` it) per test: the settings are class attributes."""

    body = bytes(range(256)) * 600  # 153,600 bytes
    cut = 40_000
    cuts = 0
    honour_range = True
    log: ClassVar[list[str | None]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        rng = self.headers.get("Range") if self.honour_range else None
        type(self).log.append(self.headers.get("Range"))
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        chunk = self.body[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(self.body) - 1}/{len(self.body)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if type(self).cuts > 0:
            type(self).cuts -= 1
            self.wfile.write(chunk[: self.cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(chunk)


def serve_handler(
    handler: type[http.server.BaseHTTPRequestHandler],
) -> tuple[http.server.ThreadingHTTPServer, int]:
    """Serve ``handler`` on 127.0.0.1 (an ephemeral port) from a daemon thread; returns (server, port).
    Stop it with ``server.shutdown(); server.server_close()``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def serve(root: Path) -> tuple[Mirror, http.server.ThreadingHTTPServer]:
    """Serve the folder ``root`` like a PhysioNet mirror, with injectable faults (:class:`Mirror`)."""
    state = Mirror(root=root, url="")
    handler = type("Handler", (_Handler,), {"mirror": state})
    server, port = serve_handler(lambda *a, **kw: handler(*a, directory=str(root), **kw))
    state.url = f"http://127.0.0.1:{port}/"
    return state, server


@contextlib.contextmanager
def served(root: Path) -> Iterator[Mirror]:
    """:func:`serve` for the length of a ``with`` block."""
    state, server = serve(root)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
