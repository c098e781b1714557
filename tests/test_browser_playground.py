"""The Playground in a real browser: the app served by `streamlit run`, Chromium driven by Playwright.

Types a sentence, waits for its prediction and heat map, runs an attack, and attacks from two tabs at
once (each tab must get its own result). Screenshots are saved in the test's temporary folder.
"""
from __future__ import annotations

import pytest
from browser_util import launch_browser, require_chromium, serve_app
from test_attacks import sensitive_tiny_run

pytestmark = pytest.mark.browser   # starts Chromium: left out of `make test-fast`

SENTENCE = "a gorgeous , witty , seductive movie ."


@pytest.fixture
def served_playground(request, tmp_path):
    require_chromium()                      # before the tiny run is trained for nothing
    home = tmp_path / "runs"
    _, run = sensitive_tiny_run(request.getfixturevalue("tiny_run"), home)
    with serve_app(home) as url:
        yield f"{url}/playground?run={run.id}"   # named by the link: a tiny run stays at chance, never a default


def open_playground(browser, url: str):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(url, timeout=60_000)
    expect(page.get_by_role("heading", name="Adversarial playground")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Prediction:").first).to_be_visible(timeout=90_000)
    return page


def type_sentence(page, text: str) -> None:
    from playwright.sync_api import expect

    box = page.get_by_role("textbox", name="Text")
    box.fill(text)
    box.press("Control+Enter")
    expect(page.locator(".rl-tokens").filter(has_text=text.split()[2]).first).to_be_visible(timeout=60_000)


def test_type_attack_and_two_tabs(served_playground, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            first = open_playground(browser, served_playground)
            type_sentence(first, SENTENCE)
            heat = first.locator(".rl-tokens").filter(has_text="seductive").first
            assert "Completeness" in (heat.get_attribute("title") or "")
            first.get_by_role("button", name="Attack", exact=True).click()
            expect(first.get_by_text("Adversarial", exact=True).first).to_be_visible(timeout=120_000)
            expect(first.get_by_text("queries ·").first).to_be_visible()
            first.screenshot(path=str(tmp_path / "playground-attack.png"), full_page=True)
            assert (tmp_path / "playground-attack.png").stat().st_size > 10_000

            # a second tab: both attack at once, and each keeps its own sentence and result
            second = open_playground(browser, served_playground)
            type_sentence(second, "a dull , lifeless and boring film .")
            type_sentence(first, "an utterly charming and hilarious film .")
            first.get_by_role("button", name="Attack", exact=True).click()
            second.get_by_role("button", name="Attack", exact=True).click()
            for page, word in ((first, "hilarious"), (second, "lifeless")):
                summary = page.locator("p").filter(has_text="Attack with").first
                expect(summary).to_contain_text(word, timeout=120_000)
                expect(page.get_by_text("queries ·").first).to_be_visible()
            second.screenshot(path=str(tmp_path / "second-tab.png"), full_page=True)
        finally:
            browser.close()
