"""Headless Chromium driven over the DevTools protocol, for the dashboard tests.

Debian's `chromium` (or another Chromium/Chrome on PATH, or the binary named
by `QUOTIO_CHROMIUM`) is started with a throw-away profile and
`--remote-debugging-port=0`; the port it picked is read from the profile's
`DevToolsActivePort` file, and the page target is driven through its
websocket with the `websockets` package's synchronous client. Nothing is
downloaded, and the browser is told to make no connections of its own.

    with Browser(tmp_path) as browser:
        page = browser.page()
        page.navigate("http://127.0.0.1:8317/v0/management/dashboard")
        page.wait_for("document.querySelectorAll('.account').length > 0")
        png = page.screenshot()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Self

import httpx
from websockets.sync.client import ClientConnection, connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless=new",
    "--remote-debugging-port=0",
    "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
    "--no-proxy-server",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-extensions",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--hide-scrollbars",
    "--window-size=1280,900",
)


class CDPError(RuntimeError):
    pass


def find_chromium() -> str | None:
    if named := os.environ.get("QUOTIO_CHROMIUM"):
        return named if Path(named).is_file() else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class Page:
    """One page target: `send` a command, `evaluate` JavaScript, wait for conditions."""

    def __init__(self, ws_url: str):
        self._ws: ClientConnection = connect(ws_url, max_size=None, open_timeout=10)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self._ws.close()

    def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        sent = self._next_id
        self._ws.send(json.dumps({"id": sent, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if msg.get("id") == sent:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(i)
            msg = json.loads(self._ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout}s: {expression}")
            time.sleep(0.1)

    def navigate(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def screenshot(self, width: int = 1280) -> bytes:
        """The whole page as PNG, `width` CSS pixels wide."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        try:
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            self.send("Emulation.clearDeviceMetricsOverride")
        return base64.b64decode(data)


class Browser:
    def __init__(self, workdir: Path, executable: str | None = None):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise FileNotFoundError("no chromium binary on PATH")
        self.profile = workdir / "chromium-profile"
        self.log_path = workdir / "chromium.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._pages: list[Page] = []

    def __enter__(self) -> Self:
        self.profile.mkdir(parents=True, exist_ok=True)
        cmd = [self.executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"chromium did not start:\n{self.log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        self.port = int(marker.read_text().split()[0])
        return self

    def page(self) -> Page:
        """The browser's first tab."""
        targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=10, trust_env=False).json()
        target = next(t for t in targets if t["type"] == "page")
        page = Page(target["webSocketDebuggerUrl"])
        self._pages.append(page)
        return page

    def __exit__(self, *exc_info: object) -> None:
        for page in self._pages:
            page.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
