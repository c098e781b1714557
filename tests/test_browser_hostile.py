"""Hostile text typed into the app's text inputs, in a real browser (Chromium driven by Playwright).

One server, one run store with the tiny run; each page in turn gets each hostile string: a Markdown link, a
Markdown image, a right-to-left override, an HTML `<img onerror>` and a 12,000-character string. After each,
the page must show no exception box, no link or image whose target came from the input, no dialog, fetch
nothing the input names, show no bidi control outside a heat map (so nothing is reversed), and stay short
(long input is shortened in messages). Every problem is collected, so one run lists them all.
"""
from __future__ import annotations

import shutil

import pytest
from browser_util import launch_browser, require_chromium, serve_app

pytestmark = pytest.mark.browser   # starts Chromium: left out of `make test-fast`

EVIL = "evil.invalid"
LONG = ("[click](https://evil.invalid/long) " + "lorem ipsum dolor sit amet " * 500)[:12_000]
HOSTILE = {
    "markdown link": "[click me](https://evil.invalid/link)",
    "markdown image": "![img](https://evil.invalid/img.png)",
    "rtl override": "\u202egnp.exe a good movie",
    "img onerror": "<img src=x onerror=alert(1)>",
    "12,000 characters": LONG,
}
MAX_PAGE_HEIGHT = 3_000   # px; a message that echoes 12,000 characters in full makes a page over 8,000 px

BIDI_OUTSIDE_HEATMAPS = """() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (/[\\u202a-\\u202e\\u2066-\\u2069]/.test(node.data)
            && !node.parentElement.closest('.rl-tokens, textarea, input')) found.push(node.data.slice(0, 60));
    }
    return found;
}"""
PAGE_HEIGHT = """() => Math.max(document.documentElement.scrollHeight,
    ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')]
        .map(e => e.scrollHeight))"""


@pytest.fixture
def served_store(request, tmp_path):
    require_chromium()                      # before the tiny run is trained for nothing
    store, _ = request.getfixturevalue("tiny_run")
    home = tmp_path / "runs"
    shutil.copytree(store.home, home)
    with serve_app(home) as url:
        yield url


class Watch:
    """What the browser did that hostile input must never make it do: dialogs, and requests the input names."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.fetched: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", self._request)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _request(self, request) -> None:
        if EVIL in request.url or request.url.rstrip("/").endswith("/x"):
            self.fetched.append(request.url)


def wait_for_app_run(page) -> None:
    """Streamlit's own e2e rule: give the rerun a moment to start, then wait until the script is idle."""
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
    page.wait_for_timeout(200)


def problems_on(page, watch: Watch, where: str, tall_ok: bool = False) -> list[str]:
    """Everything hostile input made this page do."""
    found = []
    exceptions = page.get_by_test_id("stException")
    if exceptions.count():
        found.append(f"{where}: exception box: {exceptions.first.inner_text()[:200]!r}")
    links = page.locator(f'a[href*="{EVIL}"]')
    if links.count():
        found.append(f"{where}: {links.count()} live link(s) to {links.first.get_attribute('href')[:80]}")
    images = page.locator(f'img[src*="{EVIL}"], img[src="x"]')
    if images.count():
        found.append(f"{where}: {images.count()} image(s) from {images.first.get_attribute('src')[:80]}")
    if bidi := page.evaluate(BIDI_OUTSIDE_HEATMAPS):
        found.append(f"{where}: bidi control shown as is in {bidi[0]!r}")
    if not tall_ok and (height := page.evaluate(PAGE_HEIGHT)) > MAX_PAGE_HEIGHT:
        found.append(f"{where}: page is {height} px tall")
    if watch.dialogs:
        found.append(f"{where}: dialog {watch.dialogs}")
    if watch.fetched:
        found.append(f"{where}: fetched {sorted(set(watch.fetched))[:3]}")
    watch.dialogs.clear()
    watch.fetched.clear()
    return found


def open_page(browser, url: str, heading: str):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(url, timeout=60_000)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=90_000)
    wait_for_app_run(page)
    return page, watch


def type_into(page, label: str, text: str) -> None:
    box = page.get_by_role("textbox", name=label).first
    box.fill(text)
    box.press("Enter")
    wait_for_app_run(page)


def playground(browser, url: str, name: str, text: str, run_id: str) -> list[str]:
    """Type the text (a fresh session each time), see its prediction, attack it, read the attack header. The run
    is named by a link: the tiny run stays at chance, so it is never a default pick."""
    from playwright.sync_api import expect

    page, watch = open_page(browser, f"{url}/playground?run={run_id}", "Adversarial playground")
    try:
        expect(page.get_by_text("Prediction:").first).to_be_visible(timeout=90_000)
        box = page.get_by_role("textbox", name="Text")
        box.fill(text)
        box.press("Control+Enter")
        wait_for_app_run(page)
        expect(page.locator(".rl-tokens").filter(has_text="charming")).to_have_count(0, timeout=60_000)
        found = problems_on(page, watch, f"Playground, {name}, typed", tall_ok=True)
        page.get_by_role("button", name="Attack", exact=True).click()
        expect(page.get_by_text("queries ·").first).to_be_visible(timeout=180_000)
        wait_for_app_run(page)
        return found + problems_on(page, watch, f"Playground, {name}, attacked", tall_ok=True)
    finally:
        page.close()


def train_model_field(page, watch: Watch, name: str, text: str) -> list[str]:
    type_into(page, "Model folder or hub id", text)
    found = problems_on(page, watch, f"Train model field, {name}")
    button = page.get_by_role("button", name="Train", exact=True)
    if not button.count():
        return found + [f"Train model field, {name}: the form lost its Train button"]
    button.click()
    wait_for_app_run(page)
    return found + problems_on(page, watch, f"Train model field, {name}, Train clicked")


def test_hostile_text_stays_text_on_every_page(served_store, tiny_run, tmp_path):
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            for name, text in HOSTILE.items():
                problems += playground(browser, served_store, name, text, tiny_run[1].id)

            page, watch = open_page(browser, served_store + "/train", "Train a model")
            page.get_by_text("local folder / hub id").click()
            wait_for_app_run(page)
            for name, text in HOSTILE.items():
                problems += train_model_field(page, watch, name, text)
            page.screenshot(path=str(tmp_path / "train.png"), full_page=True)

            page.goto(served_store + "/runs")
            wait_for_app_run(page)
            for name, text in HOSTILE.items():
                type_into(page, "Search id", text)
                problems += problems_on(page, watch, f"Runs search, {name}")

            page.goto(served_store + "/behaviour")
            wait_for_app_run(page)
            page.get_by_text("Write a test").click()
            wait_for_app_run(page)
            for name, text in HOSTILE.items():
                type_into(page, "Test name", text)
                problems += problems_on(page, watch, f"Behaviour test name, {name}")

            page.goto(served_store + "/recovery")
            wait_for_app_run(page)
            for name, text in HOSTILE.items():
                type_into(page, "Seeds", text)
                problems += problems_on(page, watch, f"Recovery seeds, {name}")
            page.screenshot(path=str(tmp_path / "recovery.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
