"""AppTest of the Playground page on the tiny model: predict, saliency, attack, cancel, bad input, batch."""
from __future__ import annotations

import difflib
import html
import re
import time
from pathlib import Path

import pytest
from apptest_util import jobs_run_in_process
from streamlit.testing.v1 import AppTest
from test_attacks import sensitive_tiny_run

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "playground.py")


@pytest.fixture(scope="module")
def store_home(tiny_run, tmp_path_factory):
    """A store with two runs of the tiny model (its head refit so attacks can flip it)."""
    home = tmp_path_factory.mktemp("playground") / "runs"
    _, first = sensitive_tiny_run(tiny_run, home)
    _, second = sensitive_tiny_run(tiny_run, home)
    return home, (first.id, second.id)


@pytest.fixture
def app(store_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store_home[0]))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["pg-run-a"] = store_home[1][0]   # picked by hand: a tiny run stays at chance, never a default
    at.run()
    assert not at.exception, at.exception
    return at


def html_of(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def marked(page: str, colour: str) -> str:
    """The characters of every span the page highlights with this background, in page order."""
    spans = re.findall(rf'<span style="background:{colour};[^"]*"[^>]*>([^<]*)</span>', page)
    return "".join(html.unescape(text) for text in spans)


def edited_characters(old: str, new: str) -> tuple[str, str]:
    """(characters taken out of the old text, characters put into the new one), letter by letter inside each
    changed word: what the diff view should highlight for a typo attack, worked out here with difflib alone."""
    from engine.attacks.diff import diff_tokens

    removed, added = "", ""
    for op, a, b in diff_tokens(old, new):
        if op == "equal":
            continue
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            removed += a[i1:i2] if tag in ("replace", "delete") else ""
            added += b[j1:j2] if tag in ("replace", "insert") else ""
    return removed, added


def finish_attack(at: AppTest, timeout: float = 120) -> object:
    live = at.session_state["pg-live"]
    assert live.wait(timeout), "the attack did not end"
    at.run()
    assert not at.exception, at.exception
    return live


def test_predict_and_saliency(app):
    at = app
    assert any(m.value.startswith("Prediction: **") for m in at.markdown)
    assert "Completeness: the attributions sum to" in html_of(at) and "charming" in html_of(at)
    at.text_area(key="pg-text").input("a dull , lifeless and boring film").run()
    assert "lifeless" in html_of(at)
    at.session_state["pg-saliency"] = "Attention"
    at.run()
    assert not at.exception and "attention" in html_of(at).lower() and "Completeness" not in html_of(at)
    history = at.session_state["pg-history"]
    assert [h["text"] for h in history][-2:] == ["it 's a charming and often affecting journey .",
                                                  "a dull , lifeless and boring film"]


def test_short_attack_shows_a_diff(app):
    at = app
    at.button(key="pg-attack").click().run()
    assert not at.exception, at.exception
    live = finish_attack(at)
    outcome = next(iter(live.snapshot().runs.values())).outcome
    assert outcome is not None and outcome.status == "succeeded", outcome
    page = html_of(at)
    removed, added = edited_characters(outcome.original_text, outcome.perturbed_text)
    assert "Adversarial" in page and removed + added                # the diff is shown and the attack edited
    assert marked(page, "#fecaca") == removed and marked(page, "#fde68a") == added   # red: old side; yellow: new
    assert any("succeeded" in m.value for m in at.markdown)
    assert len([c for c in at.get("plotly_chart")]) >= 2                    # probabilities before and after
    at.button(key=f"pg-use-{next(iter(live.models))}").click().run()
    assert at.text_area(key="pg-text").value == outcome.perturbed_text    # counterfactual editing goes on


def test_cancel(app, monkeypatch):
    from engine.models.inference import LoadedModel

    original = LoadedModel.logits

    def slow(self, texts, should_stop=None, batch_size=64):   # a slow model, so Cancel comes first
        time.sleep(0.05)
        return original(self, texts, should_stop, batch_size)

    monkeypatch.setattr(LoadedModel, "logits", slow)
    at = app
    at.text_area(key="pg-text").input("the plot is thin , the jokes are stale and the ending drags on forever "
                                      "but the cast is warm and the music is lovely").run()
    at.selectbox(key="pg-recipe").set_value("pwws")
    at.number_input(key="pg-budget-queries").set_value(100_000)
    at.button(key="pg-attack").click().run()
    assert at.session_state["pg-live"].running
    at.button(key="pg-cancel").click().run()
    live = finish_attack(at)
    outcome = next(iter(live.snapshot().runs.values())).outcome
    assert outcome.status == "cancelled"
    assert any("cancelled" in m.value for m in at.markdown)


def test_bad_input(app, store_home):
    at = app
    at.text_area(key="pg-text").input("   ").run()
    assert any("Type a sentence" in i.value for i in at.info)
    assert at.button(key="pg-attack").disabled

    at.text_area(key="pg-text").input("a gripping , beautifully shot film . " * 300).run()
    assert not at.exception and any("only the first" in w.value for w in at.warning)

    at.text_area(key="pg-text").input("bon film 😀 \u05e1\u05e8\u05d8 zero\u200bwidth\x07 \u202eevil\u202c").run()
    assert not at.exception and any("control character" in w.value for w in at.warning)
    assert any(m.value.startswith("Prediction: **") for m in at.markdown)

    at.text_area(key="pg-text").input("le film est beau et très émouvant , je le recommande").run()
    assert not at.exception

    at.text_area(key="pg-text").input('<script>alert(1)</script> a <b onclick="x">bold</b> film').run()
    assert "&lt;script&gt;" in html_of(at) and "<script>" not in html_of(at) and "<b " not in html_of(at)

    at.number_input(key="pg-budget-queries").set_value(0)
    at.button(key="pg-attack").click().run()
    assert any("query budget" in e.value for e in at.error) and "pg-live" not in at.session_state

    at.selectbox(key="pg-recipe").set_value("textfooler").run()
    assert any("cannot run here" in w.value for w in at.warning) and at.button(key="pg-attack").disabled


def test_misclassified_example_is_skipped(app):
    at = app
    at.session_state["pg-source"] = "SST-2 dev"
    at.run()
    from engine.data.registry import load_dataset
    from engine.models.inference import LoadedModel
    from engine.store.runs import RunStore

    store = RunStore()
    model = LoadedModel.from_run(store.get(at.selectbox(key="pg-run-a").value).dir)
    data = load_dataset("sst2-dev")
    probs = model.probs(data.texts[:40])
    wrong = next(i for i in range(40) if probs[i].argmax() != data.labels[i])
    at.selectbox(key="pg-example-sst2-dev").set_value(wrong).run()
    assert at.text_area(key="pg-text").value == data.texts[wrong]
    assert any("wrong: the SST-2 dev label" in m.value for m in at.markdown)
    at.button(key="pg-attack").click().run()
    live = finish_attack(at)
    outcome = next(iter(live.snapshot().runs.values())).outcome
    assert outcome.status == "skipped"
    assert any("already predicts" in c.value for c in at.caption)


def test_two_models_side_by_side(app, store_home):
    at = app
    other = next(i for i in store_home[1] if i != at.selectbox(key="pg-run-a").value)
    at.selectbox(key="pg-run-b").set_value(other).run()
    assert not at.exception
    assert sum(m.value.startswith("Prediction: **") for m in at.markdown) == 2
    at.button(key="pg-attack").click().run()
    live = finish_attack(at)
    assert len(live.snapshot().runs) == 2 and all(s.outcome for s in live.snapshot().runs.values())


def test_batch_attack_panel(app, monkeypatch):
    """The batch form queues an attack run; here it runs in-process (a worker would outlive the test)."""

    jobs_run_in_process(monkeypatch)
    at = app
    at.number_input(key="pg-batch-n").set_value(5)
    at.number_input(key="pg-batch-budget-queries").set_value(300)
    at.button[[b.label for b in at.button].index("Start batch attack")].click().run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert {"Success rate", "Avg queries", "Accuracy under attack"} <= set(labels)
    table = at.dataframe[-1].value
    assert len(table) == 5 and {"status", "diff", "original", "perturbed"} <= set(table.columns)
    assert any(b.proto.label == "Download CSV" for b in at.get("download_button"))
    at.button[[b.label for b in at.button].index("Start batch attack")].click().run()
    assert any("already ran" in i.value for i in at.info)                 # the same attack is reused


def test_no_model_offers_default_training(run_home, monkeypatch):
    from engine.execution import jobs

    submitted = {}

    def record(store, config, kind="train", parent=None):
        submitted.update(config)
        return store.create(config, kind=kind, parent=parent)   # queued, no worker: nothing trains here

    monkeypatch.setattr(jobs, "submit", record)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception
    at.button(key="pg-train").click().run()
    assert submitted["model"] == "minilm" and submitted["method"] == "vanilla" and submitted["train_size"] == 2000
    assert not at.exception and any("being trained" in i.value for i in at.info)
