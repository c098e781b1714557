"""One real-browser test: the app served by `streamlit run` on localhost, driven by Playwright with
Debian's Chromium, from Home to Runs, with a screenshot saved."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_util import CHROMIUM_MISSING, chromium_available, launch_browser

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not chromium_available(), reason=CHROMIUM_MISSING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer on {url} within {limit}s")


@pytest.fixture
def served_app(run_home):
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


def test_home_then_runs_in_a_real_browser(served_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(served_app, timeout=60_000)
            expect(page.get_by_role("heading", name="RobustLab", exact=True)).to_be_visible(timeout=90_000)
            expect(page.get_by_text("Quick start")).to_be_visible()
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs").click()
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text("No runs in the run store")).to_be_visible(timeout=30_000)
            assert page.url.rstrip("/").endswith("/runs")
            shot = tmp_path / "runs.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
