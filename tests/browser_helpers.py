"""Helpers for the real-browser tests: Debian's Chromium under Playwright, a JupyterLab server.

No browser is ever downloaded (``playwright install`` is never run): Playwright drives the
system's ``chromium`` (Debian's package; ``.ci/run`` installs it). Tests that need it are skipped
with a reason where it is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The system's Chromium (Debian's ``chromium`` package), or None when it is not installed.
CHROMIUM = shutil.which("chromium")

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
)

#: Flags for a headless Chromium on a machine with no screen, no GPU and a closed network:
#: without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Fewest distinct colours a screenshot of a rendered page has; a blank page has one or two.
MIN_COLOURS = 64


@contextlib.contextmanager
def chromium_context(profile_dir: Path, **options: Any) -> Iterator[Any]:
    """A Playwright browser context on the system Chromium with a fresh profile folder.

    Args:
        profile_dir: An empty folder for the profile (``--user-data-dir``).
        **options: Passed to ``launch_persistent_context`` (viewport, offline, ...).

    Yields:
        The ``BrowserContext``; the browser is closed on exit.
    """
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            **options,
        )
        try:
            yield context
        finally:
            context.close()


_COUNT_COLOURS_JS = """
async (dataUrl) => {
  const img = new Image();
  img.src = dataUrl;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  // Sample at most about 4 million pixels so a tall full-page screenshot stays quick.
  const pixels = canvas.width * canvas.height;
  const step = Math.max(1, Math.floor(pixels / 4000000));
  const seen = new Set();
  for (let i = 0; i < pixels; i += step) {
    const o = i * 4;
    seen.add((data[o] << 16) | (data[o + 1] << 8) | data[o + 2]);
  }
  return {width: canvas.width, height: canvas.height, colours: seen.size};
}
"""


@dataclass(frozen=True)
class PngStats:
    """Size and number of distinct colours of a PNG image."""

    width: int
    height: int
    colours: int


def png_stats(context: Any, png: bytes) -> PngStats:
    """Decode a PNG in the browser (no imaging library needed) and count its distinct colours."""
    import base64

    page = context.new_page()
    try:
        page.set_content("<!DOCTYPE html><html><body></body></html>")
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        stats = page.evaluate(_COUNT_COLOURS_JS, url)
    finally:
        page.close()
    return PngStats(int(stats["width"]), int(stats["height"]), int(stats["colours"]))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class JupyterLabServer:
    """A running JupyterLab server (see ``jupyterlab_server``)."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    def lab_url(self, path: str) -> str:
        """The address that opens ``path`` (relative to the root folder) in JupyterLab."""
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def api(self, path: str, *, method: str = "GET") -> Any:
        """Call the server's REST API; returns the decoded JSON (None for an empty answer)."""
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def jupyterlab_server(
    root_dir: Path, state_dir: Path, *, startup_timeout: float = 60
) -> Iterator[JupyterLabServer]:
    """Start JupyterLab headless on 127.0.0.1 with a token; stop it and its kernels on exit.

    Settings, workspaces, runtime files and config live under ``state_dir``, so the test reads
    and writes nothing of the user's Jupyter setup. The environment is otherwise inherited
    (``IERKIT_CACHE_DIR`` included: the kernel uses the same cached demo as the test).

    Args:
        root_dir: The folder JupyterLab serves.
        state_dir: An empty folder for the server's own files and log.
        startup_timeout: Seconds to wait for the server to answer.
    """
    port = free_port()
    token = secrets.token_hex(16)
    settings = state_dir / "settings"
    # No "official Jupyter news?" prompt over the notebook (and no fetch of the news feed).
    plugin = settings / "@jupyterlab" / "apputils-extension"
    notification = plugin / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(state_dir / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"),
        JUPYTER_CONFIG_DIR=str(state_dir / "config"),
    )
    log = state_dir / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ServerApp.open_browser=False",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = JupyterLabServer(f"http://127.0.0.1:{port}", token, process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}"
                )
            try:
                server.api("status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not answer in {startup_timeout} s:\n{server.log_tail()}"
                    ) from None
                time.sleep(0.25)
        yield server
    finally:
        _stop(server)


def _stop(server: JupyterLabServer) -> None:
    """Shut the kernels down through the API, then the server (SIGTERM, then SIGKILL)."""
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(Exception):
            for kernel in server.api("kernels"):
                server.api(f"kernels/{kernel['id']}", method="DELETE")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
