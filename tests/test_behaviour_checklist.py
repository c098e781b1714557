"""Behaviour failure rates as CheckList defines them (github.com/marcotcr/checklist: `Expect.eq`, `Expect.inv`,
`Expect.monotonic`, the tutorial's neutral band), RobustLab's correct-originals rate as a second number, what a
constant answer scores with the "no better than a constant answer" flag, and results stored before these rules
scored again from their cases (or said to be missing), on the Behaviour page too. Fast: no model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from apptest_util import no_exception, page, read_as
from benchmark_util import fake_run

from engine.behaviour.compare import compare_runs, constant_flags, method_spread
from engine.behaviour.generate import generate_cases
from engine.behaviour.runner import behaviour_config, current_results, model_cases, read_cases
from engine.behaviour.scoring import SCORING, judge, score_test, wilson
from engine.behaviour.spec import BehaviourSuiteError, load_behaviour_suite, parse_behaviour_suite
from engine.store.runs import RunStore, write_json

LABELS = ["negative", "positive"]
WORDS = {"thing": ["film", "plot", "cast"], "pos": ["good", "great"], "neg": ["bad", "awful"]}


def one(test: dict):
    return parse_behaviour_suite(json.dumps({"name": "mini", "words": WORDS, "tests": [test]})).tests[0]


def mft(**extra):
    return one({"name": "mft", "kind": "MFT", "templates": [{"template": "The {thing} is not {neg}.",
                                                             "label": "positive"}], **extra})


INV = one({"name": "inv", "kind": "INV", "perturbation": {"type": "typo"},
           "sentences": [{"text": "The film is good.", "label": "positive"},
                         {"text": "The plot is awful.", "label": "negative"}]})


def dir_(**extra):
    return one({"name": "dir", "kind": "DIR", "direction": "up", "templates": [
        {"template": "The {thing} is {pos}.", "perturbed": "The {thing} is very {pos}.", "label": "positive"}],
        **extra})


NEG, POS = 0, 1


# -- INV: every case counts; a changed prediction within the tolerance passes (Expect.inv(threshold=0.1))


def test_inv_counts_a_case_whose_original_is_wrong():
    # the original is predicted negative though its label is positive: CheckList still judges the pair
    assert judge(INV, POS, [0.3, 0.7], [0.6, 0.4]) == (True, True)
    assert judge(INV, POS, [0.65, 0.35], [0.6, 0.4]) == (True, False)


def test_inv_tolerates_a_flip_whose_probability_moved_within_the_tolerance():
    assert judge(INV, NEG, [0.46, 0.54], [0.52, 0.48]) == (True, False)     # P(negative) moved 0.06 <= 0.1
    assert judge(INV, NEG, [0.30, 0.70], [0.52, 0.48]) == (True, True)      # moved 0.22
    strict = one({"name": "s", "kind": "INV", "perturbation": {"type": "typo"}, "tolerance": 0.0,
                  "sentences": [{"text": "good", "label": "positive"}]})
    assert judge(strict, NEG, [0.46, 0.54], [0.52, 0.48]) == (True, True)


# -- DIR: Expect.monotonic watches the original's predicted class and skips a case that cannot fail


def test_dir_watches_the_originals_predicted_class_not_its_label():
    test = dir_(tolerance=0.01)
    # label positive, original predicted negative (0.8): "very" raises P(negative) to 0.85, so P(predicted) rose
    assert judge(test, POS, [0.85, 0.15], [0.8, 0.2]) == (True, False)
    assert judge(test, POS, [0.75, 0.25], [0.8, 0.2]) == (True, True)
    assert judge(dir_(tolerance=0.01, towards="positive"), POS, [0.85, 0.15], [0.8, 0.2], towards=POS) == (
        True, True)


def test_dir_does_not_count_a_case_that_cannot_fail():
    up = dir_(tolerance=0.1, towards="positive")
    assert judge(up, POS, [0.99, 0.01], [0.95, 0.05], towards=POS) == (False, False)   # 0.05 <= 0.1: cannot drop 0.1
    assert judge(up, POS, [0.99, 0.01], [0.8, 0.2], towards=POS) == (True, True)
    down = dir_(tolerance=0.1, direction="down")
    assert judge(down, POS, [0.01, 0.99], [0.05, 0.95]) == (False, False)   # 0.95 >= 0.9: cannot rise 0.1
    assert judge(down, POS, [0.01, 0.99], [0.2, 0.8]) == (True, True)
    summary, _ = score_test(up, _cases(up), _probs({"is": [0.95, 0.05], "very": [0.99, 0.01]}), LABELS)
    assert summary["n_cases"] == 6 and summary["n_counted"] == 0 and summary["failure_rate"] is None


def _cases(test):
    return generate_cases(test, 0, lambda name: [])


def _probs(by_word: dict[str, list[float]]):
    """probs_of for texts: the first key (checked in reverse order) the text contains decides."""
    class Lookup(dict):
        def __missing__(self, text):
            for word in reversed(list(by_word)):
                if word in text:
                    return np.array(by_word[word])
            raise KeyError(text)
    return Lookup()


# -- MFT "not negative": CheckList's neutral band for a two-class model, a neutral class otherwise


def test_a_neutral_answer_passes_a_not_negative_test_and_only_that():
    loose, strict = mft(neutral_passes=True), mft()
    assert judge(loose, POS, [0.6, 0.4], None) == (True, False)      # P(positive) 0.4 is in (1/3, 2/3): neutral
    assert judge(loose, POS, [0.8, 0.2], None) == (True, True)       # 0.2 < 1/3: negative
    assert judge(strict, POS, [0.6, 0.4], None) == (True, True)
    three = ["negative", "neutral", "positive"]
    assert judge(loose, 2, [0.2, 0.5, 0.3], None, neutral=three.index("neutral")) == (True, False)
    assert judge(loose, 2, [0.5, 0.2, 0.3], None, neutral=1) == (True, True)
    assert judge(strict, 2, [0.2, 0.5, 0.3], None, neutral=1) == (True, True)
    assert "neither the expected label nor neutral" in loose.rule()


def test_not_negative_needs_two_classes_or_a_neutral_class():
    test = {"name": "nn", "kind": "MFT", "neutral_passes": True,
            "templates": [{"template": "not {neg}", "label": "positive"}]}
    suite = parse_behaviour_suite(json.dumps({"words": WORDS, "tests": [test]}))
    assert model_cases(suite, 0, {}, ["negative", "neutral", "positive"])["nn"]
    with pytest.raises(BehaviourSuiteError) as err:
        model_cases(suite, 0, {}, ["negative", "mixed", "positive"])
    assert err.value.problems == ["line 1, test 'nn': \"neutral_passes\" needs a two-class model (CheckList's "
                                  "neutral band) or a class named neutral (the model has negative, mixed, positive)"]


def test_the_built_in_suite_lets_neutral_pass_where_checklist_does():
    tests = {t.name: t for t in load_behaviour_suite("sentiment").tests}
    assert tests["negated-negative"].neutral_passes          # CheckList: "simple negations: not negative"
    assert not tests["negated-positive"].neutral_passes      # CheckList: "simple negations: negative", labels=0
    assert [t for t in tests.values() if t.neutral_passes] == [tests["negated-negative"]]


# -- the constant answer and the flag


def test_wilson_interval():
    assert wilson(0, 10)[1] == pytest.approx(1.959964 ** 2 / (10 + 1.959964 ** 2), abs=1e-6)
    low, high = wilson(52, 100)
    assert low == pytest.approx(0.4231, abs=1e-4) and high == pytest.approx(0.6153, abs=1e-4)
    assert wilson(0, 0) is None
    for n in (4, 10, 12, 100, 1000):       # the ends are exact where the maths makes them 0 and 1
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_no_failure_is_no_better_than_a_constant_answer_on_an_inv_test():
    """A constant answer never changes its prediction: 0 % on every INV test, like a model that passes them all."""
    sentences = [{"text": f"The {thing} is {adj}.", "label": "positive"} for thing in WORDS["thing"]
                 for adj in WORDS["pos"] + WORDS["neg"]]
    test = one({"name": "inv12", "kind": "INV", "perturbation": {"type": "typo"}, "sentences": sentences})
    inv, _ = score_test(test, _cases(test), _probs({" ": [0.1, 0.9]}), LABELS)
    assert inv["n_counted"] == 12 and inv["failure_rate"] == 0.0
    assert inv["no_better_than_constant"] == ["negative", "positive"]


def _mft_half():
    test = one({"name": "m", "kind": "MFT", "templates": [{"template": "The {thing} is {pos}.", "label": "positive"},
                                                          {"template": "The {thing} is {neg}.", "label": "negative"}]})
    return test, _cases(test)


def test_each_test_says_what_a_constant_answer_scores():
    test, cases = _mft_half()
    summary, _ = score_test(test, cases, _probs({"is": [0.1, 0.9]}), LABELS)
    assert {k: v["failure_rate"] for k, v in summary["constant"].items()} == {"negative": 0.5, "positive": 0.5}
    lopsided = one({"name": "l", "kind": "MFT", "templates": [
        {"template": "The {thing} is {pos}.", "label": "positive"},
        {"template": "A {pos} {thing}.", "label": "positive"},
        {"template": "The {thing} is {neg}.", "label": "negative"}]})
    summary, _ = score_test(lopsided, _cases(lopsided), _probs({" ": [0.1, 0.9]}), LABELS)
    assert summary["constant"]["negative"] == {"n_counted": 18, "n_failed": 12, "failure_rate": 12 / 18}
    assert summary["constant"]["positive"] == {"n_counted": 18, "n_failed": 6, "failure_rate": 6 / 18}
    inv, _ = score_test(INV, _cases(INV), _probs({" ": [0.1, 0.9]}), LABELS)
    assert {k: v["failure_rate"] for k, v in inv["constant"].items()} == {"negative": 0.0, "positive": 0.0}


def test_a_rate_within_the_spread_of_a_constant_answer_is_flagged():
    test, cases = _mft_half()
    always, _ = score_test(test, cases, _probs({"is": [0.1, 0.9]}), LABELS)      # always positive: fails half
    assert always["failure_rate"] == 0.5 and always["no_better_than_constant"] == ["negative", "positive"]
    # right on "awful" only: 3 of 12 fail (0.25); its Wilson interval 0.09..0.53 still holds the constants' 0.5
    some, _ = score_test(test, cases, _probs({"is": [0.1, 0.9], "awful": [0.9, 0.1]}), LABELS)
    assert some["failure_rate"] == 0.25 and some["no_better_than_constant"] == ["negative", "positive"]
    right, _ = score_test(test, cases, _probs({"good": [0.1, 0.9], "great": [0.1, 0.9], "bad": [0.9, 0.1],
                                               "awful": [0.9, 0.1]}), LABELS)
    assert right["failure_rate"] == 0.0 and right["no_better_than_constant"] == []
    assert right["interval"][1] < 0.5


def _summary(failed: int, counted: int, constant_failed: int):
    return {"name": "t", "capability": "C", "kind": "MFT", "description": "", "rule": "", "n_cases": counted,
            "n_counted": counted, "n_failed": failed, "failure_rate": failed / counted,
            "constant": {"negative": {"n_counted": counted, "n_failed": constant_failed,
                                      "failure_rate": constant_failed / counted}}}


def test_a_methods_spread_is_the_wider_of_its_pooled_cases_and_its_seeds():
    # pooled 60/400 = 0.15 (Wilson about 0.12..0.19); seeds 0.05 and 0.25: mean 0.15 ± 0.141 (0.009..0.291), wider.
    # The constant's 0.25 lies outside the pooled interval and inside the seeds' spread.
    runs = [_summary(10, 200, 50), _summary(50, 200, 50)]
    low, high = method_spread(runs)
    assert low == pytest.approx(0.15 - np.std([0.05, 0.25], ddof=1)) and high > 0.28
    assert constant_flags(runs) == ["negative"]
    assert constant_flags([_summary(10, 200, 50), _summary(12, 200, 50)]) == []     # 0.05..0.06: far from 0.25
    table = compare_runs({"a": {"tests": [runs[0]]}, "b": {"tests": [runs[1]]}}, {"a": "m", "b": "m"})
    assert table["tests"][0]["method_no_better_than_constant"] == {"m": ["negative"]}
    assert table["tests"][0]["constant"] == {"negative": 0.25}


# -- results stored before CheckList's rule


# label, original probs, probs; by CheckList: A fails, B fails (its original is wrong), C passes (0.06), D passes
INV_ROWS = [
    ("A", "positive", [0.2, 0.8], [0.7, 0.3]), ("B", "positive", [0.55, 0.45], [0.3, 0.7]),
    ("C", "negative", [0.52, 0.48], [0.46, 0.54]), ("D", "negative", [0.9, 0.1], [0.85, 0.15])]
OLD_FAILED = {"A": True, "B": False, "C": True, "D": False}      # RobustLab's former rule: correct originals, any flip


def old_behaviour_run(store: RunStore, target: str, suite, inv_test: str, mft_test: str, with_cases: bool = True):
    """A finished behaviour run as RobustLab stored it before `scoring`: its INV test scored by the former rule."""
    run = store.create(behaviour_config(target, suite), kind="behaviour", parent=target)
    rows = [{"test": inv_test, "index": i, "text": f"{name} perturbed", "label": label, "original": f"{name} original",
             "kind": "INV", "capability": "Robustness", "pred": LABELS[int(np.argmax(p))], "probs": p,
             "original_pred": LABELS[int(np.argmax(o))], "original_probs": o,
             "counted": name != "B", "failed": OLD_FAILED[name]} for i, (name, label, o, p) in enumerate(INV_ROWS)]
    if with_cases:
        (run.dir / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    old = [{"name": inv_test, "capability": "Robustness", "kind": "INV", "description": "", "rule": "old",
            "n_cases": 4, "n_counted": 3, "n_failed": 2, "failure_rate": 2 / 3, "counts_only_correct_originals": True},
           {"name": mft_test, "capability": "Temporal", "kind": "MFT", "description": "", "rule": "old",
            "n_cases": 4, "n_counted": 4, "n_failed": 2, "failure_rate": 0.5, "counts_only_correct_originals": False}]
    write_json(run.dir / "results.json", {"status": "done", "target": target, "suite": suite.name, "seed": 0,
                                          "label_names": LABELS, "tests": old, "n_cases": 8})
    run.set_status("done")
    store.update_index(run)
    return run


def test_old_results_are_scored_again_from_their_cases_or_said_to_be_missing(tmp_path):
    store = RunStore(tmp_path / "runs")
    suite = load_behaviour_suite("sentiment")
    run = old_behaviour_run(store, "target-1", suite, "typos", "used-to-now")
    results = current_results(run)
    assert results["scoring"] == SCORING and results["stored_scoring"] == 1 and "rounded" in results["rescored"]
    inv, mft_ = results["tests"]
    assert (inv["n_counted"], inv["n_failed"], inv["failure_rate"]) == (4, 2, 0.5)
    assert inv["failure_rate_correct_originals"] == pytest.approx(1 / 3) and inv["former_failure_rate"] == 2 / 3
    assert mft_["failure_rate"] is None and "no case records" in mft_["missing"] and mft_["former_failure_rate"] == 0.5
    assert [r["text"] for r in read_cases(run, "typos", failed_only=True)] == ["A perturbed", "B perturbed"]
    gone = current_results(old_behaviour_run(store, "target-2", suite, "typos", "used-to-now", with_cases=False))
    assert all(t["failure_rate"] is None and "case records are gone" in t["missing"] for t in gone["tests"])
    assert [t["former_failure_rate"] for t in gone["tests"]] == [2 / 3, 0.5]


def test_the_page_shows_checklists_rate_beside_the_second_number_the_constant_and_old_results(run_home):
    store = RunStore(run_home)
    target = fake_run(store, "vanilla", 0, dev=0.9)
    suite = load_behaviour_suite("sentiment")
    run = old_behaviour_run(store, target.id, suite, "typos", "used-to-now")
    rows = [{"test": "before-and-now", "index": i, "text": f"now {i}", "label": label, "original": None,
             "kind": "MFT", "capability": "Temporal", "pred": "positive", "probs": [0.3, 0.7], "original_pred": None,
             "original_probs": None, "counted": True, "failed": label == "negative"}
            for i, label in enumerate(["positive", "negative", "positive", "negative"])]
    with open(run.dir / "cases.jsonl", "a") as out:
        out.writelines(json.dumps(r) + "\n" for r in rows)
    stored = json.loads((run.dir / "results.json").read_text())
    stored["tests"].append({**stored["tests"][1], "name": "before-and-now"})
    write_json(run.dir / "results.json", stored)
    at = page("behaviour.py").run()
    at.multiselect(key="bh-runs").set_value([target.id]).run()
    no_exception(at)
    table = next(df.value for df in at.dataframe if "constant answer" in df.value.columns).set_index("test")
    [rate] = [c for c in table.columns if f"{c} · vs constant" in table.columns]     # the run's own column
    assert table.loc["typos", rate] == "50.0" and table.loc["typos", f"{rate} · correct originals only"] == "33.3"
    assert table.loc["typos", "counts"] == "all cases" and table.loc["typos", f"{rate} · vs constant"] == ""
    assert table.loc["typos", "constant answer"] == "negative 0.0 · positive 0.0"
    assert table.loc["before-and-now", rate] == "50.0" and table.loc["before-and-now", "constant answer"] == (
        "negative 50.0 · positive 50.0")
    assert table.loc["before-and-now", f"{rate} · vs constant"] == (
        "no better than a constant answer (negative, positive)")
    assert table.loc["used-to-now", rate] == "–"
    assert any("scored again from their case records" in read_as(i.value) for i in at.info)
    assert any("used-to-now" in read_as(w.value) and "no case records" in read_as(w.value) for w in at.warning)
