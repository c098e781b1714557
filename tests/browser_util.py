"""Launch Debian's Chromium (/usr/bin/chromium) headless through Playwright.

Playwright's own browser download cannot work here, so tests point it at the
system Chromium that `make setup` installs with apt-get.

Import it as `browser_util`, not `tests.browser_util`: flair installs a
top-level `tests` package into site-packages that shadows this folder (it has
no __init__.py); pytest puts tests/ itself on sys.path, so the plain name works.

    from playwright.sync_api import sync_playwright
    from browser_util import launch_browser, require_chromium

    def test_page():
        require_chromium()      # a skip, or a failure under ROBUSTLAB_REQUIRE_ALL=1 (CI)
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page()
            ...
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from skip_util import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = os.environ.get("ROBUSTLAB_CHROMIUM", "/usr/bin/chromium")   # another path, or a missing one to test CI
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM_MISSING = f"{CHROMIUM} not found (Debian chromium; `make setup` installs it with apt-get when it can)"


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK)


def require_chromium() -> None:
    """Skip the calling test (or fixture) when Chromium is missing; fail it when everything is required."""
    if not chromium_available():
        skip_or_fail(CHROMIUM_MISSING)


def launch_browser(playwright, **kwargs):
    """Return a headless Chromium Browser from a Playwright instance (sync or async API)."""
    options = {"executable_path": CHROMIUM, "headless": True, "args": list(CHROMIUM_ARGS)}
    options.update(kwargs)
    return playwright.chromium.launch(**options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer on {url} within {limit}s")


@contextlib.contextmanager
def serve_app(run_home: Path) -> Iterator[str]:
    """`streamlit run app/main.py` on a free localhost port over the given run store; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "ROBUSTLAB_HOME": str(run_home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
