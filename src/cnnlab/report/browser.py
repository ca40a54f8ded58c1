"""Open an HTML file in headless Chromium and report what went wrong: console errors, uncaught
exceptions, failed loads, images that did not decode, requests that left the machine; optionally
save a full-page screenshot.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (JSON messages
ending in NUL on file descriptors 3 and 4), so this needs the browser binary and nothing else
(no Playwright, no Selenium, no websocket library, no open port).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import CnnlabError, ConfigError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# A closed network and a throwaway profile: nothing to sync, update or phone home, no GPU.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe")
TIMEOUT = 60.0   # seconds for the whole check; a hung browser fails instead of blocking CI
WIDTH = 1200     # viewport width of the screenshot, in CSS pixels

_IMAGES_JS = ("JSON.stringify(Array.from(document.images, i => ({src: i.src.slice(0, 64), "
              "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))")


class BrowserError(CnnlabError, RuntimeError):
    """Chromium is missing, did not start or stopped answering."""


@dataclass
class PageCheck:
    """What the browser saw: problems (empty when the page is clean), the images and their
    decoded sizes, and the screenshot path if one was asked for."""

    errors: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on PATH, or None."""
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class _Pipe:
    """One DevTools connection: numbered commands out, responses and events back."""

    def __init__(self, proc, write_fd: int, read_fd: int, deadline: float):
        self.proc, self.w, self.r, self.deadline = proc, write_fd, read_fd, deadline
        self.buf, self.n, self.events = b"", 0, []
        self.sel = selectors.DefaultSelector()
        self.sel.register(read_fd, selectors.EVENT_READ)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.n

    def recv(self) -> dict:
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                raise BrowserError(f"Chromium did not answer within {TIMEOUT:.0f} s")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited (code {self.proc.poll()}) during the check")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        i = self.send(method, params, session)
        while True:
            m = self.recv()
            if m.get("id") == i:
                if "error" in m:
                    raise BrowserError(f"{method} failed: {m['error'].get('message')}")
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self.recv())


def _problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, error log entries and non-local requests."""
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            out.append(f"console.{p['type']}: {args}")
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            what = d.get("exception", {}).get("description") or d.get("text")
            out.append(f"uncaught exception: {what}")
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            url = p["entry"].get("url")
            out.append(f"{p['entry'].get('text')}" + (f" ({url[:120]})" if url else ""))
        elif m == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                out.append(f"the page asked the network for {url[:120]}")
    return out


def check_page(html_path: str | os.PathLike, screenshot: str | os.PathLike | None = None,
               chromium: str | None = None) -> PageCheck:
    """Load `html_path` in headless Chromium; list console errors, failed or undecodable images
    and network requests, and save a full-page PNG screenshot to `screenshot` if given."""
    path = Path(html_path).resolve()
    if not path.is_file():
        raise ConfigError(f"no such HTML file: {str(path)!r}")
    binary = chromium or find_chromium()
    if not binary:
        raise BrowserError("no Chromium found on PATH (tried " + ", ".join(CANDIDATES) + "); "
                           "on Debian/Ubuntu: apt-get install chromium")
    cmd_r, cmd_w = os.pipe()     # we write commands; Chromium reads them on fd 3
    out_r, out_w = os.pipe()     # Chromium writes answers on fd 4; we read them

    # In the child: move the pipe ends to 3 and 4, via numbers >= 10 so that neither clobbers
    # the other. close_fds=False keeps them open through exec; pass_fds cannot, since it needs
    # 3 and 4 to be open in this process already. Python's own descriptors are non-inheritable
    # (PEP 446), so nothing else leaks into the browser.
    def wire_fds():
        a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    with tempfile.TemporaryDirectory(prefix="cnnlab-chromium-") as profile:
        proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                preexec_fn=wire_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        pipe = _Pipe(proc, cmd_w, out_r, time.monotonic() + TIMEOUT)
        try:
            return _run_check(pipe, path, screenshot)
        except BrokenPipeError:
            raise BrowserError(f"Chromium exited (code {proc.poll()}) before the check; see why "
                               f"with `{binary} --headless --no-sandbox about:blank`") from None
        finally:
            try:
                pipe.send("Browser.close")
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(cmd_w)
            os.close(out_r)


def _run_check(pipe: _Pipe, path: Path, screenshot) -> PageCheck:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    s = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session=s)
    pipe.call("Emulation.setDeviceMetricsOverride",
              {"width": WIDTH, "height": 800, "deviceScaleFactor": 1, "mobile": False}, s)
    pipe.events.clear()   # about:blank's own events are not the page's
    pipe.call("Page.navigate", {"url": path.as_uri()}, s)
    pipe.wait_for("Page.loadEventFired")
    value = pipe.call("Runtime.evaluate", {"expression": _IMAGES_JS, "returnByValue": True},
                      s)["result"]["value"]
    check = PageCheck(images=json.loads(value))
    check.errors = _problems(pipe.events)
    check.errors += [f"image {i} did not load ({im['src']}...)"
                     for i, im in enumerate(check.images) if not im["width"]]
    if screenshot is not None:
        size = pipe.call("Page.getLayoutMetrics", session=s)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": size["height"], "scale": 1}
        shot = pipe.call("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True, "clip": clip}, s)
        check.screenshot = Path(screenshot)
        check.screenshot.parent.mkdir(parents=True, exist_ok=True)
        check.screenshot.write_bytes(base64.b64decode(shot["data"]))
    return check
