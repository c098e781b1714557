"""One real-browser test: the app served by `streamlit run` on localhost, driven by Playwright with
Debian's Chromium, from Home to Runs, with a screenshot saved."""
from __future__ import annotations

import pytest
from browser_util import launch_browser, require_chromium, serve_app

pytestmark = pytest.mark.browser   # starts Chromium: left out of `make test-fast`


@pytest.fixture
def served_app(run_home):
    require_chromium()
    with serve_app(run_home) as url:
        yield url


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
