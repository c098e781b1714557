"""The Playground's probability bars as Chromium draws them: every class labelled by its name (not numeric ticks
between class ids), and both ends of the probability axis labelled, 100 % included, inside the chart."""
from __future__ import annotations

import pytest
from browser_util import launch_browser, require_chromium

from app.playground.prediction import probs_figure

pytestmark = pytest.mark.browser   # starts Chromium: left out of `make test-fast`

WIDTH = 300   # about a narrow Playground column


def drawn_ticks(tmp_path, names: list[str]) -> tuple[list[tuple[str, dict | None]], list[str]]:
    """(x tick labels with their boxes on the page, None where hidden; y tick labels) of the drawn chart."""
    from playwright.sync_api import sync_playwright

    path = tmp_path / "bars.html"
    probs_figure(names, {"p": [1 / len(names)] * len(names)}, height=110).write_html(
        path, include_plotlyjs=True, full_html=True, default_width=WIDTH)
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport={"width": WIDTH + 100, "height": 400})
            page.goto(path.as_uri())
            page.wait_for_selector(".xtick text", state="attached")
            x = [(t.text_content(), t.bounding_box()) for t in page.query_selector_all(".xtick text")]
            y = [t.text_content() for t in page.query_selector_all(".ytick text")]
        finally:
            browser.close()
    return x, y


@pytest.mark.parametrize("names", [["0", "1", "2", "3", "4"], ["0", "1"], ["negative", "positive"]])
def test_every_class_and_both_ends_are_labelled(tmp_path, names):
    require_chromium()
    x, y = drawn_ticks(tmp_path, names)
    assert sorted(y) == sorted(names)                               # one tick per class, no 0.5 or 1.5
    shown = {text: box for text, box in x if box is not None}
    assert "0%" in shown and "100%" in shown, x
    for box in shown.values():                                      # nothing cut off at either edge
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, x
