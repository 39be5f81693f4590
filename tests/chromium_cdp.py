"""A small driver for a headless Debian ``chromium``, over the Chrome DevTools protocol on a pipe.

Why not Selenium or Playwright: both need a second download that must match the
browser (chromedriver, or Node and playwright-core), while Chromium speaks the
DevTools protocol itself. With ``--remote-debugging-pipe`` it reads commands on
fd 3 and writes replies and events on fd 4 as NUL-terminated JSON, so the
standard library is enough: no WebSocket client, no open port.

The browser is started so that nothing can leave the machine: its proxy is a
local sink that records and refuses every connection (:class:`NetworkSink`),
host names do not resolve, and background services are off. What the page asks
for is also recorded from ``Network.requestWillBeSent`` so a test can assert on
the URLs themselves.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages",
    "--disable-domain-reliability",
    "--disable-field-trial-config",
    "--disable-search-engine-choice-screen",
    "--no-service-autorun",
    "--no-pings",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-features="
    + ",".join(
        (
            "NetworkTimeServiceQuerying",
            "OptimizationHints",
            "OptimizationGuideModelDownloading",
            "MediaRouter",
            "DialMediaRouteProvider",
            "Translate",
            "CertificateTransparencyComponentUpdater",
            "AutofillServerCommunication",
            "InterestFeedContentSuggestions",
            "SafeBrowsingEnhancedProtection",
            "LensOverlay",
            "HttpsUpgrades",
        )
    ),
)


def find_chromium() -> str | None:
    """The Chromium to use: $HEARTBEAT_CHROMIUM, else Debian's ``chromium`` on PATH."""
    explicit = os.environ.get("HEARTBEAT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _high_fd(fd: int) -> int:
    """A duplicate of ``fd`` numbered 10 or above; ``fd`` itself is closed."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class NetworkSink:
    """A local TCP listener used as the browser's proxy: every connection is recorded, then closed.

    Anything the browser tries to fetch from the network (a CDN script, a font,
    a background service) arrives here instead of leaving the machine.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    first = "<no request line>"
                self.requests.append(first or "<empty>")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


@dataclass
class PageLog:
    """What one page did while it loaded: console errors, exceptions and every request URL."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class CDPError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with a fresh profile, driven over the DevTools pipe."""

    def __init__(self, executable: str, profile: Path, log_file: Path) -> None:
        self.sink = NetworkSink()
        cmd_r, cmd_w = os.pipe()  # we write commands, the browser reads them on fd 3
        evt_r, evt_w = os.pipe()  # the browser writes on fd 4, we read
        # Move the child's ends above 9, so that bash's `3<&N 4>&M` below cannot clobber them.
        cmd_r, evt_w = (_high_fd(fd) for fd in (cmd_r, evt_w))
        flags = [
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{self.sink.port}",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash puts the pipe ends on fds 3 and 4, where Chromium expects them.
        self._log = open(log_file, "wb")
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                f'exec "$@" 3<&{cmd_r} 4>&{evt_w} {cmd_r}<&- {evt_w}>&-',
                "bash",
                executable,
                *flags,
            ],
            pass_fds=(cmd_r, evt_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        os.close(cmd_r)
        os.close(evt_w)
        self._out = os.fdopen(cmd_w, "wb", buffering=0)
        self._in = os.fdopen(evt_r, "rb", buffering=0)
        self._next_id = 0
        self._lock = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._lock:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                self._lock.notify_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; a protocol error raises :class:`CDPError`."""
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._lock:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise CDPError(f"{method}: no reply ({'browser exited' if self._closed else 'timeout'})")
                self._lock.wait(left)
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def events(self, session: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._events if e.get("sessionId") == session]

    def wait_event(self, session: str, method: str, after: int, timeout: float = 30) -> None:
        """Wait until ``method`` has fired on ``session`` more than ``after`` times."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                n = sum(1 for e in self._events if e.get("sessionId") == session and e["method"] == method)
                if n > after:
                    return
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise CDPError(f"{method} did not fire within {timeout} s")
                self._lock.wait(left)

    def open(self, url: str, width: int = 1280, height: int = 900) -> Page:
        """A new tab with logging and network recording on, navigated to ``url`` and loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        page = Page(self, session)
        loads = page.count("Page.loadEventFired")
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_event(session, "Page.loadEventFired", loads)
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self._out, self._in, self._log):
            f.close()
        self.sink.close()


class Page:
    """One tab of :class:`Chromium`."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def count(self, method: str) -> int:
        return sum(1 for e in self.browser.events(self.session) if e["method"] == method)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll ``expression`` until it is truthy; return its last value either way."""
        deadline = time.monotonic() + timeout
        value = self.evaluate(expression)
        while not value and time.monotonic() < deadline:
            time.sleep(0.2)
            value = self.evaluate(expression)
        return value

    def log(self) -> PageLog:
        """Console errors and warnings, uncaught exceptions and requested URLs so far."""
        out = PageLog()
        for e in self.browser.events(self.session):
            method, p = e["method"], e.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                if p.get("type") in ("error", "assert"):
                    out.errors.append(f"console.{p['type']}: {text}")
                elif p.get("type") == "warning":
                    out.warnings.append(text)
            elif method == "Runtime.exceptionThrown":
                details = p.get("exceptionDetails", {})
                desc = details.get("exception", {}).get("description") or details.get("text", "")
                out.errors.append(f"exception: {desc}")
            elif method == "Log.entryAdded":
                entry = p.get("entry", {})
                if entry.get("level") == "error":
                    out.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
                elif entry.get("level") == "warning":
                    out.warnings.append(str(entry.get("text")))
            elif method == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
            elif method == "Network.loadingFailed":
                out.failed.append(f"{p.get('errorText')} ({p.get('requestId')})")
        return out

    def screenshot(self, path: Path, max_height: int = 12000) -> None:
        """Save a PNG of the whole page, not only the viewport."""
        metrics = self.browser.send("Page.getLayoutMetrics", session=self.session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = int(size["width"]), min(int(size["height"]), max_height)
        self.browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": max(width, 800), "height": max(height, 200), "deviceScaleFactor": 1, "mobile": False},
            session=self.session,
        )
        shot = self.browser.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=self.session
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
