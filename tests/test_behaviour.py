"""Behavioural tests: suite file checks, seeded case generation, each kind's pass/fail rule, the INV/DIR counting
rule, the `behaviour` job on a tiny model whose behaviour is known, and `python -m engine behave`."""
from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from benchmark_util import count_every_run
from cli_util import refused

from engine.__main__ import main
from engine.behaviour.compare import capability_rates, compare_runs
from engine.behaviour.generate import GenerationError, generate_cases
from engine.behaviour.perturb import contractions, punctuation, replace, typo
from engine.behaviour.runner import export_rows, model_cases, read_cases
from engine.behaviour.scoring import score_test
from engine.behaviour.spec import MAX_CASES, BehaviourSuiteError, load_behaviour_suite, parse_behaviour_suite
from engine.execution.kinds import find_done
from engine.store.runs import RunStore

LABELS = ["negative", "positive"]
WORDS = {"thing": ["film", "plot", "cast"], "pos": ["good", "great"], "neg": ["bad", "awful"],
         "name": ["ann", "bob", "cy"]}


def suite_text(*tests: dict, words: dict | None = None) -> str:
    return json.dumps({"name": "mini", "words": WORDS if words is None else words, "tests": list(tests)}, indent=1)


MFT = {"name": "mft", "kind": "MFT", "capability": "Vocabulary",
       "templates": [{"template": "The {thing} is {pos}.", "label": "positive"},
                     {"template": "The {thing} is {neg}.", "label": "negative"}]}
INV = {"name": "inv", "kind": "INV", "capability": "Names", "perturbation": {"type": "swap", "slot": "name"},
       "templates": [{"template": "{name} says the {thing} is {pos}.", "label": "positive"},
                     {"template": "{name} says the {thing} is {neg}.", "label": "negative"}]}
DIR = {"name": "dir", "kind": "DIR", "capability": "Intensity", "direction": "up",
       "templates": [{"template": "The {thing} is {pos}.", "perturbed": "The {thing} is very {pos}.",
                      "label": "positive"},
                     {"template": "The {thing} is {neg}.", "perturbed": "The {thing} is very {neg}.",
                      "label": "negative"}]}


def no_sentences(name):
    raise AssertionError(f"no evaluation set expected, asked for {name}")


# -- the suite file: every problem named with its line and test


def problems_of(text: str) -> list[str]:
    with pytest.raises(BehaviourSuiteError) as err:
        parse_behaviour_suite(text)
    return err.value.problems


def test_built_in_suite_is_valid_and_covers_the_issue():
    suite = load_behaviour_suite("sentiment")
    assert len(suite.tests) >= 16
    assert len({t.capability for t in suite.tests}) >= 6
    assert {t.kind for t in suite.tests} == {"MFT", "INV", "DIR"}
    assert suite.labels() == set(LABELS)


def test_invalid_json_names_the_line():
    assert problems_of('{"tests": [\n  {"name": "a",,}\n]}') == [
        "line 2, column 16: not valid JSON (Expecting property name enclosed in double quotes)"]


def test_unknown_placeholder_names_line_and_test():
    bad = {**MFT, "templates": [{"template": "The {thing} is {colour}.", "label": "positive"}]}
    [problem] = problems_of(suite_text(bad))
    assert problem == ("line 25, test 1 ('mft'): template 1 uses {colour}, which no word list defines "
                       "(lists: name, neg, pos, thing)")


def test_each_problem_is_reported_at_once():
    problems = problems_of(suite_text({**MFT, "n": 10_000}, {**INV, "kind": "XYZ"}, {**MFT, "name": "mft"},
                                      words={**WORDS, "empty": []}))
    assert any("word list 'empty' is empty" in p for p in problems)
    assert any("test 1 ('mft'): \"n\" is 10,000; a test makes at most" in p for p in problems), problems
    assert any("test 2 ('inv'): \"kind\" must be one of MFT, INV, DIR (got 'XYZ')" in p for p in problems)
    assert any("test 3 ('mft'): the name is used by an earlier test" in p for p in problems)
    assert MAX_CASES < 10_000


def test_pieces_each_kind_needs():
    problems = problems_of(suite_text({**DIR, "direction": None}, {**INV, "perturbation": None},
                                      {**INV, "name": "inv2", "perturbation": {"type": "swap", "slot": "thing2"}},
                                      {**MFT, "name": "mft2", "templates": [{"template": "{pos}"}]}))
    assert any("test 1 ('dir'): a DIR test needs \"direction\"" in p for p in problems)
    assert any("test 2 ('inv'): an INV test needs a \"perturbation\"" in p for p in problems)
    assert any("test 3 ('inv2'): swap slot 'thing2' needs a word list" in p for p in problems)
    assert any("test 4 ('mft2'): template 1 needs a \"label\"" in p for p in problems)


def test_hostile_text_in_a_message_is_shown_not_obeyed():
    name = "evil\u202e<img src=x onerror=alert(1)>" + "x" * 12_000
    [problem] = problems_of(suite_text({**MFT, "name": name, "kind": "BAD"}))
    assert "\u202e" not in problem and "⟨U+202E⟩" in problem and "(12," in problem and len(problem) < 300


def test_labels_outside_the_models_classes_and_tests_without_cases():
    suite = parse_behaviour_suite(suite_text({**MFT, "templates": [{"template": "{pos}", "label": "neutral"}]},
                                   {"name": "c", "kind": "INV", "sentences": [{"text": "no short forms here",
                                                                               "label": "positive"}],
                                    "perturbation": {"type": "contractions"}}))
    with pytest.raises(BehaviourSuiteError) as err:
        model_cases(suite, 0, {"dataset": "sst2"}, LABELS)
    assert err.value.problems == ["line 25, test 'mft': label(s) 'neutral' not among the model's classes "
                                  "(negative, positive)"]
    with pytest.raises(GenerationError, match="applies to none of its sentences"):
        generate_cases(suite.tests[1], 0, no_sentences)


# -- generation: the same cases for the same suite and seed


def test_generation_is_deterministic_per_seed():
    suite = load_behaviour_suite("sentiment")
    pool = [("it is n't a good film .", "negative"), ("a great cast", "positive"), ("bob 's plot is bad .", "negative")]
    for test in suite.tests:
        source = (lambda name: pool) if test.sentences == "sst2-dev" else no_sentences
        first = generate_cases(test, 3, source)
        assert first == generate_cases(test, 3, source)
        if test.templates:
            assert len(first) >= 100, test.name
            assert first != generate_cases(test, 4, source), test.name
            assert len({(c.original, c.text) for c in first}) == len(first)


def test_one_tests_cases_do_not_depend_on_the_others():
    alone = parse_behaviour_suite(suite_text(INV)).tests[0]
    beside = parse_behaviour_suite(suite_text(MFT, DIR, INV)).tests[2]
    assert generate_cases(alone, 0, no_sentences) == generate_cases(beside, 0, no_sentences)


def test_swap_changes_only_the_slot_and_pairs_keep_their_words():
    inv = parse_behaviour_suite(suite_text(INV)).tests[0]
    for case in generate_cases(inv, 0, no_sentences):
        before, after = case.original.split(), case.text.split()
        assert before[1:] == after[1:] and before[0] != after[0] and after[0] in WORDS["name"]
    dir_ = parse_behaviour_suite(suite_text(DIR)).tests[0]
    for case in generate_cases(dir_, 0, no_sentences):
        assert case.text == case.original.replace(" is ", " is very ")


def test_perturbations():
    import random

    rng = random.Random(0)
    assert contractions("it is n't good , it 's bad .", rng) == "it is not good , it is bad ."
    assert contractions("it is not good", rng) == "it's not good"
    assert contractions("they were not there", rng) == "they weren't there"
    assert contractions("nothing here", rng) is None
    assert punctuation("fine .", rng) == "fine" and punctuation("fine", rng) == "fine."
    assert replace("Ann met bob", rng, ("ann", "bob")) in {"Bob met bob", "Ann met ann"}
    assert replace("nobody", rng, ("ann", "bob")) is None
    changed = typo("wonderful", rng)
    assert sorted(changed) == sorted("wonderful") and changed != "wonderful"


# -- the pass/fail rules and the INV/DIR counting rule


def keyword_probs(texts: list[str]) -> dict[str, np.ndarray]:
    """A model whose behaviour is known: P(positive) 0.9 with "good", 0.1 with "bad", 0.5 otherwise; "very" pushes
    it 0.05 further out, "not" flips it, and the name "bob" makes it negative."""
    out = {}
    for text in texts:
        words = text.lower().replace(".", "").split()
        p = 0.9 if "good" in words or "great" in words else 0.1 if "bad" in words or "awful" in words else 0.5
        p = p + 0.05 * np.sign(p - 0.5) if "very" in words else p
        p = 1 - p if "not" in words else p
        p = 0.05 if "bob" in words else p
        out[text] = np.array([1 - p, p])
    return out


def scored(test_json: dict, tolerance: float | None = None):
    raw = {**test_json, **({"tolerance": tolerance} if tolerance is not None else {})}
    test = parse_behaviour_suite(suite_text(raw)).tests[0]
    cases = generate_cases(test, 0, no_sentences)
    texts = [t for c in cases for t in (c.original, c.text) if t]
    return score_test(test, cases, keyword_probs(texts), LABELS)


def test_mft_fails_where_the_prediction_differs_and_counts_every_case():
    negated = {**MFT, "templates": [{"template": "The {thing} is not {pos}.", "label": "negative"},
                                    {"template": "The {thing} is {pos}.", "label": "positive"},
                                    {"template": "The {thing} is {neg}.", "label": "positive"}]}
    summary, rows = scored(negated)
    assert summary["n_cases"] == summary["n_counted"] == 18
    assert summary["n_failed"] == 6 and summary["failure_rate"] == pytest.approx(6 / 18)
    assert all(r["failed"] == (r["label"] == "positive" and "bad" in r["text"] or "awful" in r["text"])
               for r in rows)


def test_inv_keeps_the_correct_originals_only_rate_as_a_second_number():
    """Was test_inv_counts_only_correct_originals_and_fails_on_a_changed_prediction, which asserted RobustLab's
    former rule as *the* INV rate; that count is now the second, separately named number."""
    summary, rows = scored(INV)
    # originals naming bob are predicted negative: the positive ones are wrong and not counted
    for row in rows:
        original_bob = row["original"].startswith("bob")
        assert row["original_correct"] == (row["label"] == "negative" or not original_bob)
        assert (row["original_correct"] and row["failed"]) == (
            row["original_correct"] and row["label"] == "positive" and row["text"].startswith("bob"))
    correct = [r for r in rows if r["original_correct"]]
    assert summary["n_counted_correct_originals"] == len(correct) < summary["n_cases"]
    assert summary["n_failed_correct_originals"] == sum(r["failed"] for r in correct) > 0
    assert summary["failure_rate_correct_originals"] == pytest.approx(
        summary["n_failed_correct_originals"] / summary["n_counted_correct_originals"])
    assert "every case counts" in summary["rule"]


def test_dir_fails_when_the_probability_moves_the_wrong_way_beyond_the_tolerance():
    up, _ = scored(DIR)
    assert up["n_failed"] == 0 and up["n_counted"] == up["n_cases"]
    down, _ = scored({**DIR, "direction": "down"}, tolerance=0.01)
    assert down["failure_rate"] == 1.0                   # "very" raises confidence by 0.05 > 0.01
    tolerant, _ = scored({**DIR, "direction": "down"}, tolerance=0.06)   # was 0.1: see the note below
    assert tolerant["failure_rate"] == 0.0
    strict, _ = scored(DIR, tolerance=0.0)
    assert strict["n_failed"] == 0                      # "very" raises the label's probability: never down
    towards, rows = scored({**DIR, "towards": "positive"}, tolerance=0.01)
    assert [r["failed"] for r in rows] == [r["label"] == "negative" for r in rows]   # "very bad" lowers P(positive)
    # The note: with tolerance 0.1 every original here has P(predicted class) = 0.9 = 1 - 0.1, so by CheckList's
    # rule ("down" cannot fail from there) no case counts; 0.06 keeps the point, a change within it passes.


def test_comparison_mean_and_std_over_seeds():
    def result(rate_a, rate_b):
        return {"suite": "s", "tests": [
            {"name": "a", "capability": "X", "kind": "MFT", "description": "", "rule": "", "n_cases": 10,
             "failure_rate": rate_a},
            {"name": "b", "capability": "X", "kind": "INV", "description": "", "rule": "", "n_cases": 10,
             "failure_rate": rate_b}]}
    table = compare_runs({"r1": result(0.2, 0.4), "r2": result(0.4, None), "r3": result(0.0, 0.0)},
                         {"r1": "vanilla", "r2": "vanilla", "r3": "rose"})
    assert capability_rates(result(0.2, None)) == {"X": 0.2}
    [cap] = table["capabilities"]
    assert cap["failure_rates"] == {"r1": pytest.approx(0.3), "r2": 0.4, "r3": 0.0}
    assert cap["by_method"]["vanilla"]["mean"] == pytest.approx(0.35)
    assert cap["by_method"]["vanilla"]["std"] == pytest.approx(np.std([0.3, 0.4], ddof=1))
    assert table["tests"][1]["by_method"]["vanilla"]["n_runs"] == 1


# -- the job on a tiny model whose behaviour is known, and the command line


def constant_run(tiny_run, home):
    """A copy of the tiny run whose classifier ignores its input: P(positive) = sigmoid(1) for every text."""
    import torch

    from engine.models.loading import load_trained, save_trained

    source = tiny_run[1]
    store = RunStore(home)
    run = store.create({k: v for k, v in source.config.items() if k not in ("kind", "run_id")})
    shutil.copytree(source.dir / "model", run.dir / "model")
    shutil.copy(source.dir / "results.json", run.dir / "results.json")
    model, tok, _ = load_trained(run.dir)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([-0.5, 0.5]))
    save_trained(model, tok, model.config, run.dir / "model")
    run.set_status("done", finished=time.time())
    store.update_index(run)
    return store, run


@pytest.fixture(scope="module")
def constant(tiny_run, tmp_path_factory):
    return constant_run(tiny_run, tmp_path_factory.mktemp("constant") / "runs")


def test_job_on_a_constant_model_and_reuse(constant, monkeypatch, tmp_path, capsys):
    store, target = constant
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    path = tmp_path / "mini.json"
    path.write_text(suite_text(MFT, INV, DIR))
    assert main(["behave", target.id, "--suite", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["run_id"] == target.id and out["suite"] == "mini" and not out["cached"]
    assert out["learned"] is False and "chance" in out["learning"]      # a one-class model: its 0 % INV says little
    tests = {t["name"]: t for t in out["tests"]}
    assert set(tests["mft"]) >= {"name", "capability", "kind", "n_cases", "failure_rate"}
    assert tests["mft"]["failure_rate"] == 0.5          # always positive: the negative half fails
    # CheckList counts every INV case (was: n_counted == n_cases // 2, RobustLab's former correct-originals count)
    assert tests["inv"]["n_counted"] == tests["inv"]["n_cases"] and tests["inv"]["failure_rate"] == 0
    assert tests["inv"]["n_counted_correct_originals"] == tests["inv"]["n_cases"] // 2
    assert tests["inv"]["failure_rate_correct_originals"] == 0
    assert tests["dir"]["failure_rate"] == 0
    run = store.get(out["behaviour_run"])
    failing = read_cases(run, "mft", failed_only=True)
    assert len(failing) == 6 and {r["pred"] for r in failing} == {"positive"}
    assert failing[0]["probs"] == pytest.approx([0.2689, 0.7311], abs=1e-4)
    assert export_rows(failing)[0].keys() == {"text", "label", "model_label", "test", "original"}
    assert main(["behave", target.id, "--suite", str(path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["cached"] and again["behaviour_run"] == run.id
    assert find_done(store, "behaviour", {**run.config, "seed": 1}) is None


def test_cli_compares_runs(constant, monkeypatch, tmp_path, capsys):
    store, target = constant
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    path = tmp_path / "mini.json"
    path.write_text(suite_text(MFT))
    assert main(["behave", "--runs", f"{target.id},{target.id}", "--suite", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["runs"] == [] and "chance" in out["not_learned"][target.id]      # its stored dev accuracy is at chance
    count_every_run(monkeypatch)
    assert main(["behave", "--runs", f"{target.id},{target.id}", "--suite", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["runs"] == [target.id]
    assert out["capabilities"][0]["by_method"]["vanilla"] == {"mean": 0.5, "std": None, "n_runs": 1}


def test_cli_refuses_bad_input(constant, monkeypatch, tmp_path, capsys):
    store, target = constant
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    before = len(store.list())
    assert refused(["behave", target.id, "--suite", str(bad)], capsys).startswith(
        "error: --suite: line 1, column 2: not valid JSON")
    assert refused(["behave", target.id, "--suite", "nope"], capsys) == (
        "error: --suite: 'nope' is neither a built-in suite (sentiment) nor a file")
    assert refused(["behave", "no-such-run"], capsys).startswith("error: run_id: no run 'no-such-run'")
    assert refused(["behave", target.id, "--runs", target.id], capsys).startswith("error: --runs: give one")
    labels = tmp_path / "labels.json"
    labels.write_text(suite_text({**MFT, "templates": [{"template": "{pos}", "label": "joy"}]}))
    assert "label(s) 'joy' not among the model's classes" in refused(
        ["behave", target.id, "--suite", str(labels)], capsys)
    assert len(store.list()) == before


def test_a_cancelled_job_keeps_nothing_half_made_and_is_not_reused(constant):
    from engine.behaviour.runner import behaviour_config
    from engine.execution import jobs

    store, target = constant
    config = behaviour_config(target.id, load_behaviour_suite("sentiment"))
    run = store.create(config, kind="behaviour", parent=target.id)
    steps = []
    outcome = jobs.execute(store, run, lambda: bool(steps), lambda done, total, _: steps.append((done, total)),
                           slot_held=True)
    assert outcome["status"] == "cancelled" and steps[0][0] == 256 and steps[0][1] > 3000
    assert run.status["step"] == 256 and not (run.dir / "cases.jsonl").exists()
    assert find_done(store, "behaviour", config) is None


def test_an_empty_word_list_is_named_once():
    assert problems_of(suite_text(MFT, words={**WORDS, "pos": []})) == ["word list 'pos' is empty"]


@pytest.mark.slow
def test_a_pair_model_is_refused_as_what_single_sentence_suites_cannot_test(pair_run, monkeypatch, capsys):
    store, target = pair_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    before = len(store.list())
    assert refused(["behave", target.id], capsys) == (
        "error: --suite: this model reads sentence pairs (sentence1 / sentence2); behavioural suites test "
        "single-sentence classifiers: each case is one sentence")
    assert len(store.list()) == before
