"""Launch Debian's Chromium (/usr/bin/chromium) headless through Playwright.

Playwright's own browser download cannot work here, so tests point it at the
system Chromium that `make setup` installs with apt-get.

Import it as `browser_util`, not `tests.browser_util`: flair installs a
top-level `tests` package into site-packages that shadows this folder (it has
no __init__.py); pytest puts tests/ itself on sys.path, so the plain name works.

    from playwright.sync_api import sync_playwright
    from browser_util import CHROMIUM_MISSING, chromium_available, launch_browser

    @pytest.mark.skipif(not chromium_available(), reason=CHROMIUM_MISSING)
    def test_page():
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page()
            ...
"""
from __future__ import annotations

import os

CHROMIUM = os.environ.get("ROBUSTLAB_CHROMIUM", "/usr/bin/chromium")
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


def launch_browser(playwright, **kwargs):
    """Return a headless Chromium Browser from a Playwright instance (sync or async API)."""
    options = {"executable_path": CHROMIUM, "headless": True, "args": list(CHROMIUM_ARGS)}
    options.update(kwargs)
    return playwright.chromium.launch(**options)
