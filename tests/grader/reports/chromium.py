"""Opening a page in headless Chromium (Debian's `chromium`) over the DevTools protocol, with the
`websockets` client: which images loaded, what was logged, what was fetched, and a screenshot."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IMAGES_JS = "Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))"


def find_chromium() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)


@dataclass
class PageCheck:
    images: list[dict] = field(default_factory=list)  # {"alt": ..., "ok": bool}
    console: list[str] = field(default_factory=list)  # console calls, exceptions and log entries
    requests: list[str] = field(default_factory=list)  # URLs fetched besides the page itself
    screenshot: bytes = b""


class _Session:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))))


def open_page(path: Path, width: int = 1200, max_height: int = 6000) -> PageCheck:
    """Load `path` from disk, let it settle, and report what happened."""
    binary = find_chromium()
    profile = tempfile.mkdtemp(prefix="grader-chromium-")
    process = subprocess.Popen([binary, *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                f"--window-size={width},900", "about:blank"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in process.stderr:
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                port = match[1]
                break
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=2 ** 28, open_timeout=30) as ws:
            return _inspect(_Session(ws), Path(path).resolve().as_uri(), width, max_height)
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _inspect(session: _Session, url: str, width: int, max_height: int) -> PageCheck:
    for domain in ("Page", "Runtime", "Log", "Network"):
        session.send(f"{domain}.enable")
    session.send("Page.navigate", url=url)
    session.wait_for("Page.loadEventFired")
    time.sleep(0.3)
    check = PageCheck()
    check.images = session.send("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)["result"]["value"]
    metrics = session.send("Page.getLayoutMetrics")
    height = min(max_height, int(metrics["cssContentSize"]["height"]))
    session.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                 mobile=False)
    shot = session.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    check.screenshot = base64.b64decode(shot["data"])
    for event in session.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            check.console.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            check.console.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded":
            check.console.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            request_url = params["request"]["url"]
            if request_url != url and not request_url.startswith("data:"):
                check.requests.append(request_url)
    return check
