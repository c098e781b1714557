"""Word-level attributions on the tiny model: mapping onto the typed text, completeness, input fitting."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from test_attacks import sensitive_tiny_run

from engine.explain.attribution import AttributionError, explain, fit_text, word_spans
from engine.models.inference import LoadedModel

MESSY = "It's  a char-ming,\tfilm 😀 שלום zero\u200bwidth ok!!"


@pytest.fixture(scope="module")
def loaded(tiny_run, tmp_path_factory):
    _, run = sensitive_tiny_run(tiny_run, tmp_path_factory.mktemp("attribution") / "runs")
    return LoadedModel.from_run(run.dir)


def test_words_are_the_typed_words(loaded):
    a = explain(loaded, MESSY, "ig")
    assert [w.text for w in a.words] == MESSY.split()
    assert all(MESSY[w.start:w.end] == w.text for w in a.words)
    assert len(a.scores) == len(a.words)
    mapped = [w for w in a.token_word if w >= 0]
    assert mapped == sorted(mapped) and set(mapped) == set(range(len(a.words)))   # every word has a piece
    # summing pieces onto words keeps the total
    assert sum(a.scores) == pytest.approx(sum(s for s, w in zip(a.token_scores, a.token_word) if w >= 0), abs=1e-9)


def test_integrated_gradients_completeness(loaded):
    a = explain(loaded, "a gorgeous , witty , seductive movie .", "ig")
    c = a.completeness
    assert c["sum"] == pytest.approx(sum(a.scores), abs=1e-6)
    assert c["sum"] - c["delta_output"] == pytest.approx(c["error"], abs=1e-6)
    assert abs(c["delta_output"]) > 1e-3
    assert c["relative_error"] < 0.05, c
    assert "Completeness" in a.describe() and f"{c['sum']:+.4f}" in a.describe()


def test_two_classes_give_opposite_attributions(loaded):
    text = "the story is bleak and the acting is stiff"
    first, second = explain(loaded, text, "ig", target=0), explain(loaded, text, "ig", target=1)
    np.testing.assert_allclose(first.scores, -np.asarray(second.scores), atol=1e-5)
    assert first.target_name != second.target_name


def test_gradient_x_input_and_attention(loaded):
    gxi = explain(loaded, "a solid , well-acted thriller", "gxi")
    assert gxi.completeness is None and any(abs(s) > 0 for s in gxi.scores)
    att = explain(loaded, "a solid , well-acted thriller", "attention")
    assert all(s >= 0 for s in att.scores) and 0 < sum(att.scores) <= 1 + 1e-6
    assert "attention" in att.describe().lower()


def test_bad_input(loaded):
    with pytest.raises(AttributionError, match="no text"):
        explain(loaded, "  \n ", "ig")
    with pytest.raises(AttributionError, match="unknown attribution method"):
        explain(loaded, "fine", "lime")
    with pytest.raises(AttributionError, match="class 5"):
        explain(loaded, "fine", "ig", target=5)


def test_fit_text_truncates_and_cleans(loaded):
    long = "a remarkably long sentence about films . " * 250          # 10,000 characters
    fitted = fit_text(loaded.tokenizer, long, loaded.max_length)
    assert fitted.truncated and len(fitted.text) < len(long) and long.startswith(fitted.text)
    assert len(loaded.tokenizer(fitted.text)["input_ids"]) <= loaded.max_length
    assert any("only the first" in n for n in fitted.notices())
    explain(loaded, fitted.text, "ig")                                 # the fitted text explains fine

    dirty = fit_text(loaded.tokenizer, "good\x00 film\x07 \u202eright-to-left\u202c \u200b", loaded.max_length)
    assert dirty.removed_controls == 2 and "\x00" not in dirty.text and "\u200b" in dirty.text
    short = fit_text(loaded.tokenizer, "fine", loaded.max_length)
    assert short.text == "fine" and not short.notices()
    assert [w.text for w in word_spans(" a  b ")] == ["a", "b"]


def test_concurrent_use_is_safe(loaded):
    """Integrated gradients hooks the embedding layer; predictions in another thread, one text per forward
    pass while the attributions run, must not see the hook (the shared lock keeps them apart)."""
    texts = [f"an ordinary movie number {i}" for i in range(120)]
    expected = LoadedModel(loaded.model, loaded.tokenizer, loaded.method, loaded.max_length).logits(texts, batch_size=1)
    fresh = LoadedModel(loaded.model, loaded.tokenizer, loaded.method, loaded.max_length)
    fresh.lock = loaded.lock                                   # as two tabs share one cached model
    got, done = {}, threading.Event()

    def predict() -> None:
        try:
            got["logits"] = fresh.logits(texts, batch_size=1)
        except Exception as err:  # a hooked forward pass fails on a shape mismatch
            got["error"] = err
        done.set()

    explain(loaded, "a tender , moving story", "ig")            # imports and first-call costs out of the race
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)                                # switch threads often, so the two overlap
    try:
        worker = threading.Thread(target=predict)
        worker.start()
        while not done.is_set():
            explain(loaded, "a tender , moving story", "ig")
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert "error" not in got, got.get("error")
    np.testing.assert_allclose(got["logits"], expected, atol=1e-5)
