"""Headless Chromium (Debian `chromium`) driven over the DevTools protocol: log in with a session cookie,
open the dashboard, wait until every chart has drawn, save a PNG."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from itertools import count
from pathlib import Path
from typing import Any

import httpx

from rtfin_cli.local.supervisor import free_port, stop_pid, wait_for

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--mute-audio"]  # fmt: skip
# every chart drawn: 2 ECharts canvases + 3 tables with rows, and no spinner left
READY_JS = """(() => {
  const charts = document.querySelectorAll('.dashboard-chart, [data-test="chart-container"]').length;
  const canvases = document.querySelectorAll(
    '.dashboard-chart canvas, [data-test="chart-container"] canvas').length;
  const rows = [...document.querySelectorAll('table')]
    .filter(t => t.querySelectorAll('tbody tr').length > 0).length;
  const loading = document.querySelectorAll('.loading, [aria-label="Loading"], .ant-skeleton').length;
  const errors = document.querySelectorAll(
    '.alert-danger, [data-test="error-alert"], .ant-alert-error').length;
  // Superset's "row limit reached" notice: a warning icon in a chart's header (rowcount >= row_limit)
  const limit_warnings = document.querySelectorAll(
    '[data-test="slice-header"] [aria-label="warning"], [data-test="row-count-label"]').length;
  return JSON.stringify({charts, canvases, rows, loading, errors, limit_warnings});
})()"""


def session_cookie(base_url: str, username: str, password: str) -> str:
    """A logged-in Flask session cookie from Superset's login form."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/login/")
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or re.search(
            r'id="csrf_token"[^>]*value="([^"]+)"', page.text
        )
        assert match, "no csrf_token on Superset's login page"
        resp = client.post(
            "/login/", data={"csrf_token": match.group(1), "username": username, "password": password}
        )
        assert resp.status_code in (302, 303), f"login failed: {resp.status_code}"
        assert client.get("/api/v1/me/").status_code == 200, "session cookie not logged in"
        return str(client.cookies["session"])


class CDP:
    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=20).__enter__()
        self.ids = count(1)

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def eval(self, expr: str) -> Any:
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.ws.close()


def screenshot(
    url: str, cookie: str, out: Path, tmp: Path, width: int = 1600, timeout: float = 150
) -> dict[str, Any]:
    """Open ``url`` logged in, wait for the charts, write a PNG; returns the final readiness state."""
    port = free_port()
    profile = tmp / "chromium-profile"
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
         f"--window-size={width},1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/json/version").status_code == 200, 30)
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
        cdp = CDP(pages[0]["webSocketDebuggerUrl"])
        try:
            host = re.sub(r"^https?://([^/:]+).*$", r"\1", url)
            cdp.call("Network.enable")
            cdp.call("Network.setCookie", name="session", value=cookie, domain=host, path="/")
            cdp.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=1000,
                deviceScaleFactor=1,
                mobile=False,
            )
            cdp.call("Page.enable")
            cdp.call("Page.navigate", url=url)
            state: dict[str, Any] = {}
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                state = json.loads(cdp.eval(READY_JS) or "{}")
                if state.get("canvases", 0) >= 2 and state.get("rows", 0) >= 3 and not state.get("loading"):
                    break
                time.sleep(1)
            time.sleep(2)  # let the ECharts animations finish
            height = int(cdp.eval("document.documentElement.scrollHeight") or 1000)
            cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=min(max(height, 900), 2400),
                     deviceScaleFactor=1, mobile=False)  # fmt: skip
            time.sleep(1)
            png = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(png)
            state["url"] = cdp.eval("location.href")
            return state
        finally:
            cdp.close()
    finally:
        stop_pid(proc.pid, timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
