"""AppTest of the Playground with a sentence-pair run (the tiny model on generated pairs): two boxes named as
the task names its segments, saliency over both with the [SEP] boundary, an attack that edits the chosen segment
and leaves the other byte for byte, a batch attack on a pair dataset, and the messages for empty segments."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from apptest_util import jobs_run_in_process, read_as
from pair_run_util import copy_run
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "playground.py")
PAIR = ("the old man walked to the market .", "false , a farmer looked at the garden .")


@pytest.fixture(scope="module")
def store_home(pair_run, tmp_path_factory):
    home = tmp_path_factory.mktemp("playground_pairs") / "runs"
    _, run = copy_run(pair_run[1], home)
    return home, run.id


@pytest.fixture
def app(store_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store_home[0]))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    at.text_area(key="pg-text").input(PAIR[0])
    at.text_area(key="pg-text-b").input(PAIR[1]).run()
    assert not at.exception, at.exception
    return at


def html_of(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def block(page: str, label: str) -> str:
    """The text of the token block under `label`, as a reader sees it."""
    found = re.search(rf'>{re.escape(label)}</div><div class="rl-tokens"[^>]*>(.*?)</div>', page, re.S)
    assert found, label
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def finish_attack(at: AppTest):
    live = at.session_state["pg-live"]
    assert live.wait(120), "the attack did not end"
    at.run()
    assert not at.exception, at.exception
    return next(iter(live.snapshot().runs.values())).outcome


def test_two_boxes_named_by_the_task_and_saliency_with_the_boundary(app):
    at = app
    assert [t.label for t in at.text_area] == ["Sentence1", "Sentence2"]
    assert any(read_as(m.value).startswith("Prediction: **not_entailment**") for m in at.markdown)   # `false` denies
    page = html_of(at)
    boundary = re.search(r'<span style="[^"]*box-shadow[^"]*"[^>]*>\[SEP\]</span>', page)
    assert boundary, "no boxed [SEP] between the segments"
    shown = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert f"Sentence1: {PAIR[0]} [SEP]\nSentence2: {PAIR[1]}" in shown
    assert any("boxed [SEP] is where the sentence1 ends" in c.value for c in at.caption)
    at.session_state["pg-saliency"] = "Attention"
    at.run()
    assert not at.exception and "[SEP]" in html_of(at) and "attention share" in html_of(at)


@pytest.mark.parametrize("segment, attacked", [(None, 1), ("Sentence1", 0)])
def test_attack_edits_the_chosen_segment_only(app, segment, attacked):
    at = app
    if segment:
        at.segmented_control(key="pg-segment").set_value(segment).run()
    at.selectbox(key="pg-recipe").set_value("deepwordbug")
    at.number_input(key="pg-budget-queries").set_value(400)
    at.button(key="pg-attack").click().run()
    outcome = finish_attack(at)
    assert outcome.original_input == PAIR and outcome.attacked_segment == attacked
    assert outcome.perturbed_input[1 - attacked] == PAIR[1 - attacked]            # byte-identical
    page = html_of(at)
    name = ("Sentence1", "Sentence2")
    assert block(page, f"{name[1 - attacked]} (kept fixed)") == PAIR[1 - attacked]
    assert block(page, f"{name[attacked]}, original (attacked)") == PAIR[attacked]
    assert block(page, f"{name[attacked]}, adversarial") == outcome.perturbed_text
    if attacked == 1:   # the cue word is in the second segment: editing it flips the model
        assert outcome.status == "succeeded" and outcome.perturbed_text != PAIR[1]
        at.button(key=f"pg-use-{next(iter(at.session_state['pg-live'].models))}").click().run()
        assert (at.text_area(key="pg-text").value, at.text_area(key="pg-text-b").value) == outcome.perturbed_input


def test_empty_segment_is_asked_for(app):
    at = app
    at.text_area(key="pg-text-b").input("   ").run()
    assert not at.exception
    assert any("Type the sentence2" in i.value for i in at.info) and at.button(key="pg-attack").disabled
    at.text_area(key="pg-text").input("").run()
    assert any("Type the sentence1 and the sentence2" in i.value for i in at.info)


def test_examples_fill_both_boxes(app):
    from engine.data.registry import load_dataset

    at = app
    data = load_dataset("advglue-rte")
    at.segmented_control(key="pg-source").set_value("AdvGLUE-RTE").run()
    at.selectbox(key="pg-example-advglue-rte").set_value(2).run()
    assert not at.exception
    assert (at.text_area(key="pg-text").value, at.text_area(key="pg-text-b").value) == data.inputs[2]
    assert any("label" in m.value for m in at.markdown if m.value.startswith("Prediction"))


def test_batch_attack_on_a_pair_dataset(app, monkeypatch):
    """The batch form attacks AdvGLUE-RTE's pairs on the chosen segment; its table shows both segments."""
    from engine.data.registry import load_dataset

    jobs_run_in_process(monkeypatch)
    at = app
    assert at.selectbox(key=f"pg-batch-dataset-{at.session_state['pg-run-a']}").value == "advglue-rte"
    assert set(at.selectbox(key=f"pg-batch-dataset-{at.session_state['pg-run-a']}").options) >= {
        "AdvGLUE-RTE"} and not any("SST" in o for o in at.selectbox(
            key=f"pg-batch-dataset-{at.session_state['pg-run-a']}").options)   # no single-sentence sets
    at.segmented_control(key="pg-batch-segment").set_value("Sentence1")
    at.number_input(key="pg-batch-n").set_value(4)
    at.number_input(key="pg-batch-budget-queries").set_value(100)
    at.button[[b.label for b in at.button].index("Start batch attack")].click().run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    data = load_dataset("advglue-rte")
    assert len(table) == 4 and {"attacked_segment", "first", "second", "perturbed", "diff"} <= set(table.columns)
    assert list(zip(table["first"], table["second"])) == data.inputs[:4]
    assert set(table["attacked_segment"]) == {"sentence1"}
    assert any("attacked on its sentence1 only" in c.value for c in at.caption)


def test_segment_names_from_a_csv_header_are_shown_as_text(pair_run, tmp_path, monkeypatch):
    """A pair CSV's column names name the boxes and the attack's segments: Markdown in them stays literal."""
    from engine.store.runs import read_json, write_json

    home = tmp_path / "runs"
    _, run = copy_run(pair_run[1], home)
    write_json(run.dir / "results.json", {**read_json(run.dir / "results.json", {}),
                                          "segment_names": ["**claim**", "_evidence_"]})
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    labels = [at.text_area(key=k).label for k in ("pg-text", "pg-text-b")]
    assert [read_as(label) for label in labels] == ["**claim**", "_evidence_"]      # what a reader sees
    assert labels != ["**claim**", "_evidence_"]                                     # escaped, not bold or italic
