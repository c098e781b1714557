"""The benchmark: method rows (split by training settings, runs that did not learn left out), the papers' claims
with their clean-accuracy parts and the interval each part uses (paired t, Welch, hierarchical bootstrap), the
seeds that would settle an open part, suites that train, evaluate and attack every (method, seed) and reuse
finished work, and the `suite` and `report` commands."""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import shutil
import statistics
from typing import Any

import numpy as np
import pytest
from benchmark_util import count_every_run, fake_run

from engine import stats
from engine.__main__ import main
from engine.attacks.recipes import AttackError
from engine.execution import jobs
from engine.execution.kinds import find_done
from engine.reporting.benchmark import (
    METRICS,
    AttackSpec,
    aggregate,
    budget_curve,
    budget_curves,
    build_report,
    excluded_runs,
    extra_seed_suites,
    group_runs,
    missing_work,
    scale_note,
    statements,
)
from engine.reporting.claims import CLAIMS, ROBUST_METRICS, combine, judge_methods, named_for, part_interval
from engine.reporting.export import methods_table, to_csv, to_markdown
from engine.store.runs import RunStore
from engine.suite.job import (
    SuiteError,
    SuiteSpec,
    estimate_seconds,
    suite_config,
    suite_items,
    suite_train_runs,
)
from engine.training.config import ConfigError

SPEC = dict(methods=["vanilla", "rose-second"], seeds=[0, 1], model="tiny", train_size=32, epochs=1, attack_n=2,
            train={"batch_size": 16})
ATTACK = AttackSpec("deepwordbug", "sst2-dev", 2)
METHOD_KEYS = ("method", "n_runs", "dev_accuracy", "dev_accuracy_std", "advglue_accuracy",
               "advglue_accuracy_std", "attack_success_rate", "attack_success_rate_std")


def run_suite(store: RunStore, spec: SuiteSpec):
    """Record a suite and run it to its end in this process."""
    suite = store.create(suite_config(spec), kind="suite")
    results = jobs.execute(store, suite, lambda: False)
    assert results["status"] == "done", suite.log_text()
    return suite


@pytest.fixture(scope="module")
def suite_store(tmp_path_factory) -> tuple[RunStore, str]:
    """A store holding one finished tiny suite: vanilla and rose-second, seeds 0 and 1, two examples attacked."""
    store = RunStore(tmp_path_factory.mktemp("suite_runs"))
    return store, run_suite(store, SuiteSpec(**SPEC)).id


@pytest.fixture
def tiny_runs_count(monkeypatch):
    count_every_run(monkeypatch)


# ---------------------------------------------------------------- rows by hand

TRAINING = {"model": "tiny", "dataset": "sst2", "train_size": 32, "epochs": 1, "lr": 2e-4, "batch_size": 16}
IM_BERT = {"h": 1.0, "K": 2, "gamma": 0.5, "field": "residual", "exact_grad": False, "layers": [-1]}
EX_BERT = {"h": 0.5, "field": "residual", "layers": [-1]}
_ids = itertools.count()


def row(method: str | None, seed: int | None, status: str = "done", learned: bool | None = True,
        settings: dict | None = None, per_sentence: tuple[str, ...] = (), **values: Any) -> dict:
    """A run row shaped like run_row's. Metrics not given are None (and missing, for a finished run); other
    keyword arguments are training settings that differ from TRAINING."""
    metrics = {m: values.pop(m, None) for m in METRICS}
    done = status == "done"
    return {"run_id": f"{method}-{seed}-{next(_ids)}", "method": method, "seed": seed, "status": status,
            **metrics, "missing": [m for m, v in metrics.items() if v is None] if done else [],
            "included": done and learned is not False, "learned": learned if done else None,
            "learning_reason": "dev 0.520 is within 10 points of chance 0.509" if learned is False else "ok",
            "chance_accuracy": 0.509 if done else None, "attack_run": None,
            "training": {**TRAINING, **values} if method else None, "settings": settings or {},
            "per_sentence": list(per_sentence)}


def seeds_rows(method: str, metric: str, values: list[float], first_seed: int = 0, **extra: Any) -> list[dict]:
    return [row(method, first_seed + i, **{metric: v}, **extra) for i, v in enumerate(values)]


def by_method(rows: list[dict]) -> dict[str, dict]:
    return {r["method"]: r for r in rows}


def claim(claims: list[dict], key: str) -> dict:
    return next(c for c in claims if c["key"] == key)


def part(claims: list[dict], text: str) -> dict:
    return next(p for c in claims for p in c["parts"] if p["text"] == text)


def judge(rows: list[dict], sentences: dict | None = None) -> list[dict]:
    return judge_methods(group_runs(rows), sentences or {})


def test_combine_verdicts():
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["supported", "not supported", "inconclusive"]) == "not supported"
    assert combine(["supported", "inconclusive"]) == "inconclusive"
    assert combine([]) == "inconclusive"


def test_aggregate_means_spread_failed_missing_and_deleted():
    rows = [row("vanilla", 0, dev_accuracy=0.80, advglue_accuracy=0.50, attack_success_rate=0.6,
                accuracy_under_attack=0.3),
            row("vanilla", 1, dev_accuracy=0.84, attack_success_rate=0.4, accuracy_under_attack=0.5),
            row("vanilla", 2, dev_accuracy=0.82, advglue_accuracy=0.54, attack_success_rate=0.5,
                accuracy_under_attack=0.4),
            row("vanilla", 3, "failed"), row("vanilla", 4, "running"),
            row("im-bert", 0, dev_accuracy=0.7, settings=IM_BERT),
            row(None, None, "deleted")]
    methods = aggregate(group_runs(rows), rows)
    assert [m["method"] for m in methods] == ["vanilla", "im-bert", "(deleted runs)"]
    vanilla, im_bert, deleted = methods
    assert (vanilla["n_runs"], vanilla["n_failed"], vanilla["n_unfinished"], vanilla["seeds"]) == (3, 1, 1, [0, 1, 2])
    assert vanilla["dev_accuracy"] == pytest.approx(0.82)
    assert vanilla["dev_accuracy_std"] == pytest.approx(statistics.stdev([0.80, 0.84, 0.82]))
    # the run without AdvGLUE is counted missing, and its None never becomes a zero in the mean
    assert vanilla["advglue_accuracy"] == pytest.approx(0.52) and vanilla["advglue_accuracy_n"] == 2
    assert vanilla["advglue_accuracy_missing"] == 1 and vanilla["dev_accuracy_missing"] == 0
    assert vanilla["advglue_accuracy_std"] == pytest.approx(statistics.stdev([0.50, 0.54]))
    assert im_bert["dev_accuracy"] == pytest.approx(0.7) and im_bert["dev_accuracy_std"] is None
    assert im_bert["advglue_accuracy"] is None and im_bert["advglue_accuracy_missing"] == 1
    assert deleted["n_runs"] == 0 and deleted["n_unfinished"] == 1 and deleted["dev_accuracy"] is None


# ---------------------------------------------------------------- claims as the papers state them

def test_every_robustness_part_has_a_clean_non_inferiority_part():
    for c in CLAIMS:
        parts = list(c.parts)
        for p in parts:
            if p.metric in ROBUST_METRICS:
                clean = [q for q in parts if q.test == "non-inferiority" and (q.group, q.baseline) ==
                         (p.group, p.baseline)]
                assert len(clean) == 1, (c.key, p.text)
                assert clean[0].metric == "dev_accuracy" and clean[0].margin == pytest.approx(0.01)
                assert clean[0].matched == p.matched
    # as judged on SST-2 rows: the AdvGLUE parts named by the task
    texts = {c.key: [p.text for p in named_for(c, "sst2").parts if p.test == "superiority"] for c in CLAIMS}
    assert {"AdvGLUE-SST2: rose-first above vanilla", "AdvGLUE-SST2: rose-second above vanilla",
            "AdvGLUE-SST2: rose-ensemble above vanilla"} <= set(texts["rose"])
    assert "AdvGLUE-SST2: im-bert above ex-bert" in texts["im-bert"]


def test_a_robustness_gain_bought_with_clean_accuracy_is_not_supported():
    """IM-BERT far above vanilla on AdvGLUE but 3 points below it on dev: the clean part fails, so the claim
    does; 0.2 points below (within the 1-point margin, tight spread) passes."""
    vanilla = [row("vanilla", s, dev_accuracy=d, advglue_accuracy=a)
               for s, d, a in ((0, 0.850, 0.40), (1, 0.852, 0.41), (2, 0.848, 0.42))]
    def im_bert(drop: float) -> list[dict]:
        return [row("im-bert", s, settings=IM_BERT, dev_accuracy=d - drop, advglue_accuracy=a)
                for s, d, a in ((0, 0.851, 0.50), (1, 0.854, 0.52), (2, 0.847, 0.51))]
    claims = judge(vanilla + im_bert(0.03))
    clean = part(claims, "dev accuracy: im-bert no more than 1 point below vanilla")
    assert part(claims, "AdvGLUE-SST2: im-bert above vanilla")["verdict"] == "supported"
    assert clean["verdict"] == "not supported" and clean["test"] == "non-inferiority" and clean["margin"] == 0.01
    assert clean["kind"] == "paired t" and clean["diff"] == pytest.approx(-0.03 + 0.0006667, abs=1e-6)
    assert claim(claims, "im-bert")["verdict"] == "not supported"
    clean = part(judge(vanilla + im_bert(0.002)), "dev accuracy: im-bert no more than 1 point below vanilla")
    assert clean["verdict"] == "supported", clean


def im_bert_rows() -> tuple[list, list, list]:
    """Three seeds each of vanilla, IM-BERT (h = 1) and EX-BERT at its default h, AdvGLUE 0.41 / 0.51 / 0.46."""
    vanilla = seeds_rows("vanilla", "advglue_accuracy", [0.40, 0.41, 0.42], dev_accuracy=0.85)
    im_bert = seeds_rows("im-bert", "advglue_accuracy", [0.50, 0.51, 0.52], dev_accuracy=0.85,
                         settings=IM_BERT)
    ex_default = seeds_rows("ex-bert", "advglue_accuracy", [0.45, 0.46, 0.47], dev_accuracy=0.85,
                            settings=EX_BERT)
    return vanilla, im_bert, ex_default


def test_im_bert_is_compared_with_an_ex_bert_of_the_same_step_size_and_field():
    vanilla, im_bert, ex_default = im_bert_rows()
    im_bert_small_step = seeds_rows("im-bert", "advglue_accuracy", [0.50, 0.51, 0.52], dev_accuracy=0.85,
                                    settings={**IM_BERT, "h": 0.75})
    refused = part(judge(vanilla + im_bert_small_step + ex_default), "AdvGLUE-SST2: im-bert above ex-bert")
    assert refused["verdict"] == "inconclusive" and refused["kind"] == "none" and refused["n_a"] == 0
    assert refused["reason"].startswith("refused") and "h 0.75 vs 0.5" in refused["reason"]
    # h = 1 with the residual field: the explicit step x + (Layer(x) - x) is vanilla BERT, so vanilla is the twin
    twin = part(judge(vanilla + im_bert + ex_default), "AdvGLUE-SST2: im-bert above ex-bert")
    assert twin["baseline_row"] == "vanilla" and twin["mean_b"] == pytest.approx(0.41)
    assert "vanilla BERT exactly" in twin["reason"] and twin["diff"] == pytest.approx(0.10)
    assert not any("different settings" in s for s in claim(judge(vanilla + im_bert + ex_default),
                                                             "im-bert")["statements"])
    ex_same = seeds_rows("ex-bert", "advglue_accuracy", [0.45, 0.46, 0.47], dev_accuracy=0.85,
                         settings={**EX_BERT, "h": 1.0})
    claims = judge(vanilla + im_bert + ex_default + ex_same)
    judged = part(claims, "AdvGLUE-SST2: im-bert above ex-bert")
    assert judged["kind"] != "none" and judged["baseline_row"] == "ex-bert (h=1)"
    assert judged["mean_b"] == pytest.approx(0.46)
    assert part(claims, "dev accuracy: im-bert no more than 1 point below ex-bert")["baseline_row"] == "ex-bert (h=1)"


# ---------------------------------------------------------------- bad input: mixed settings, not learned, one seed

def test_a_method_trained_with_different_settings_is_split_and_claims_use_the_matching_row():
    rows = (seeds_rows("vanilla", "dev_accuracy", [0.80, 0.81, 0.82])
            + seeds_rows("vanilla", "dev_accuracy", [0.60, 0.61, 0.62], lr=1e-4)
            + seeds_rows("uegr", "dev_accuracy", [0.83, 0.84, 0.85]))
    groups = group_runs(rows)
    methods = by_method(aggregate(groups, rows))
    assert list(methods) == ["vanilla (lr=0.0001)", "vanilla (lr=0.0002)", "uegr"]
    assert methods["vanilla (lr=0.0001)"]["dev_accuracy"] == pytest.approx(0.61)
    assert methods["vanilla (lr=0.0002)"]["dev_accuracy"] == pytest.approx(0.81)
    said = " ".join(statements(groups, rows))
    assert "vanilla runs were trained with different settings" in said and "not pooled" in said
    uegr = part(judge_methods(groups, {}), "dev accuracy: uegr above vanilla")
    assert uegr["baseline_row"] == "vanilla (lr=0.0002)" and uegr["mean_b"] == pytest.approx(0.81)
    assert "this claim uses the rows vanilla (lr=0.0002)." in " ".join(claim(judge_methods(groups, {}),
                                                                              "uegr")["statements"])

    other = seeds_rows("vanilla", "dev_accuracy", [0.80, 0.81, 0.82]) + seeds_rows(
        "uegr", "dev_accuracy", [0.83, 0.84, 0.85], lr=5e-5)
    refused = part(judge(other), "dev accuracy: uegr above vanilla")
    assert refused["verdict"] == "inconclusive" and refused["mean_a"] is None
    assert "refused" in refused["reason"] and "lr 5e-05 vs 0.0002" in refused["reason"]
    assert any("lr" in s for s in statements(group_runs(other), other))


def test_runs_that_did_not_learn_are_left_out_of_every_mean_and_claim():
    rows = (seeds_rows("vanilla", "advglue_accuracy", [0.40, 0.41, 0.42], dev_accuracy=0.85)
            + [row("vanilla", 3, learned=False, dev_accuracy=0.52, advglue_accuracy=0.70)]
            + seeds_rows("uegr", "advglue_accuracy", [0.44, 0.45, 0.46], dev_accuracy=0.85))
    groups = group_runs(rows)
    vanilla = by_method(aggregate(groups, rows))["vanilla"]
    assert (vanilla["n_runs"], vanilla["n_not_learned"], vanilla["seeds"]) == (3, 1, [0, 1, 2])
    assert vanilla["advglue_accuracy"] == pytest.approx(0.41) and vanilla["dev_accuracy"] == pytest.approx(0.85)
    claims = judge_methods(groups, {})
    advglue = part(claims, "AdvGLUE-SST2: uegr above vanilla")
    assert (advglue["n_b"], advglue["mean_b"]) == (3, pytest.approx(0.41))
    dropped = rows[3]["run_id"]
    assert any(dropped in s and "within 10 points of chance" in s for s in claim(claims, "uegr")["statements"])
    assert excluded_runs(rows) == [{"run_id": dropped, "method": "vanilla", "seed": 3, "row": "vanilla",
                                    "reason": "did not learn: dev 0.520 is within 10 points of chance 0.509"}]
    assert any(dropped in s and "left out" in s for s in statements(groups, rows))
    only_failed = seeds_rows("uegr", "advglue_accuracy", [0.44, 0.45, 0.46]) + [
        row("vanilla", s, learned=False, advglue_accuracy=0.7) for s in range(3)]
    nothing = part(judge(only_failed), "AdvGLUE-SST2: uegr above vanilla")
    assert nothing["verdict"] == "inconclusive" and "3 did not learn" in nothing["reason"]


def test_one_seed_gives_a_statement_and_no_verdict():
    rows = [row("vanilla", 0, dev_accuracy=0.80, advglue_accuracy=0.40),
            row("uegr", 0, dev_accuracy=0.90, advglue_accuracy=0.60)]
    groups = group_runs(rows)
    assert any("One seed per method row" in s for s in statements(groups, rows))
    uegr = claim(judge_methods(groups, {}), "uegr")
    assert uegr["verdict"] == "inconclusive"
    assert all(p["verdict"] == "inconclusive" and p["seeds_needed"] is None for p in uegr["parts"])
    assert any("Fewer than 3 seeds" in s for s in uegr["statements"])


# ---------------------------------------------------------------- which interval

def test_paired_welch_or_bootstrap_is_chosen_from_the_runs(monkeypatch):
    """Same seeds on both sides: paired t over seed-wise differences; different seeds: Welch; AdvGLUE accuracy
    and accuracy under attack with every run's per-sentence results: the hierarchical bootstrap, paired when the
    seeds are; a run without them, or the attack success rate: the seed-level test, saying so."""
    calls = []
    real = stats.compare
    monkeypatch.setattr(stats, "compare", lambda *a, **k: calls.append(k) or real(*a, **k))
    a = seeds_rows("uegr", "dev_accuracy", [0.80, 0.82, 0.84])
    b = seeds_rows("vanilla", "dev_accuracy", [0.79, 0.80, 0.83])
    iv, _ = part_interval("dev_accuracy", a, b, {})
    assert iv.kind == "paired t" and calls[-1]["pairs"] == [(0.80, 0.79), (0.82, 0.80), (0.84, 0.83)]
    shifted = seeds_rows("vanilla", "dev_accuracy", [0.79, 0.80, 0.83], first_seed=5)
    iv, _ = part_interval("dev_accuracy", a, shifted, {})
    assert iv.kind == "Welch" and "pairs" not in calls[-1] and "per_sentence" not in calls[-1]

    metric = "advglue_accuracy"
    a = seeds_rows("uegr", metric, [0.5, 0.5, 0.5], per_sentence=(metric,))
    b = seeds_rows("vanilla", metric, [0.4, 0.4, 0.4], per_sentence=(metric,))
    rng = np.random.default_rng(0)
    sentences = {r["run_id"]: {metric: (rng.random(148) < 0.5).astype(float)} for r in a + b}
    iv, note = part_interval(metric, a, b, sentences)
    assert iv.kind == "hierarchical bootstrap" and calls[-1]["paired_sentences"] is True and note == ""
    per_a, per_b = calls[-1]["per_sentence"]
    assert sorted(per_a) == sorted(per_b) == [0, 1, 2]
    assert per_a[1] is sentences[a[1]["run_id"]][metric]
    other = seeds_rows("vanilla", metric, [0.4] * 3, first_seed=5, per_sentence=(metric,))
    iv, _ = part_interval(metric, a, other, {**sentences, **{r["run_id"]: {metric: np.ones(148)} for r in other}})
    assert iv.kind == "hierarchical bootstrap" and calls[-1]["paired_sentences"] is False
    assert sorted(calls[-1]["per_sentence"][1]) == [0, 1, 2]     # unpaired: keyed by position, not by seed
    iv, note = part_interval(metric, a, b, {k: v for k, v in sentences.items() if k != b[0]["run_id"]})
    assert iv.kind == "paired t" and "1 run(s) lack per-sentence results" in note
    under = "accuracy_under_attack"
    a = seeds_rows("uegr", under, [0.5] * 3)
    b = seeds_rows("vanilla", under, [0.6] * 3)
    iv, _ = part_interval(under, a, b, {r["run_id"]: {under: rng.random(10).round()} for r in a + b})
    assert iv.kind == "hierarchical bootstrap" and calls[-1]["paired_sentences"] is True
    # the success rate counts a different set of sentences per run: seed level only, saying why
    success = "attack_success_rate"
    a = seeds_rows("uegr", success, [0.5, 0.52, 0.51])
    b = seeds_rows("vanilla", success, [0.6, 0.61, 0.63])
    iv, note = part_interval(success, a, b, {})
    assert iv.kind == "paired t" and "only the sentences each model had right" in note


def test_inconclusive_parts_say_how_many_seeds_would_settle_them():
    noisy = judge(seeds_rows("uegr", "dev_accuracy", [0.80, 0.86, 0.83])
                  + seeds_rows("vanilla", "dev_accuracy", [0.81, 0.82, 0.815]))
    open_part = part(noisy, "dev accuracy: uegr above vanilla")
    assert open_part["verdict"] == "inconclusive" and open_part["kind"] == "paired t"
    assert open_part["seeds_needed"] == stats.seeds_needed(open_part["diff"], open_part["sd"], "paired t")
    assert isinstance(open_part["seeds_needed"], int) and open_part["seeds_needed"] >= 3
    clear = part(judge(seeds_rows("uegr", "dev_accuracy", [0.90, 0.91, 0.92])
                       + seeds_rows("vanilla", "dev_accuracy", [0.80, 0.81, 0.81])), "dev accuracy: uegr above vanilla")
    assert clear["verdict"] == "supported" and clear["seeds_needed"] is None


def test_extra_seeds_are_new_seed_numbers_for_the_rows_that_need_them():
    rows = (seeds_rows("uegr", "dev_accuracy", [0.80, 0.86, 0.83])
            + [row("uegr", 3, learned=False, dev_accuracy=0.5)]
            + seeds_rows("vanilla", "dev_accuracy", [0.81, 0.82, 0.815]))
    groups = group_runs(rows)
    report = {"claims": judge_methods(groups, {}), "methods": aggregate(groups, rows),
              "attack": {"recipe": "deepwordbug", "dataset": "sst2-dev", "n": 50}}
    needed = part(report["claims"], "dev accuracy: uegr above vanilla")["seeds_needed"]
    assert needed and needed > 4
    suites = extra_seed_suites(report)
    by_methods = {tuple(spec.methods): (spec, new) for spec, new in suites}
    assert set(by_methods) == {("vanilla", "uegr")} or set(by_methods) == {("vanilla",), ("uegr",)}
    for spec, new in suites:
        for method in spec.methods:
            tried = {"uegr": {0, 1, 2, 3}, "vanilla": {0, 1, 2}}[method]
            assert set(new).isdisjoint(tried) and set(spec.seeds) == tried | set(new)
            assert len(new) == needed - 3      # three counted runs already: the not-learned one does not count
        assert (spec.model, spec.train_size, spec.epochs, spec.train["lr"]) == ("tiny", 32, 1, 2e-4)
        assert (spec.recipe, spec.attack_n) == ("deepwordbug", 50)
        spec.check()
    assert extra_seed_suites({**report, "claims": []}) == []


def test_scale_note_says_what_was_measured_and_nothing_more():
    rows = seeds_rows("vanilla", "dev_accuracy", [0.80, 0.81, 0.82])
    note = scale_note(group_runs(rows), ATTACK)
    assert "92" not in note and "would reach" not in note
    assert "tiny random BERT" in note and "32 SST-2 examples" in note and "1 epoch" in note
    assert "learning rate 0.0002" in note and "3 counted seed(s)" in note and "deepwordbug" in note
    assert "BERT-base or larger" in note


def test_budget_curve_counts_failed_and_late_successes():
    results = [{"status": "succeeded", "queries": 5}, {"status": "failed", "queries": 40},
               {"status": "skipped", "queries": 0}]
    assert budget_curve(results, [0, 5, 10]) == pytest.approx([2 / 3, 1 / 3, 1 / 3])
    assert budget_curve([], [0, 5]) == []


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("changes, error, message", [
    ({"methods": []}, SuiteError, "at least one method"),
    ({"seeds": []}, SuiteError, "at least one seed"),
    ({"methods": ["vanilla", "nope"]}, SuiteError, "unknown method"),
    ({"seeds": [0, 1, 0]}, SuiteError, "seeds repeated: 0"),
    ({"methods": ["vanilla", "vanilla"]}, SuiteError, "methods repeated: vanilla"),
    ({"seeds": [-1]}, SuiteError, "whole numbers"),
    ({"attack_n": -1}, SuiteError, "attack must be >= 0"),
    ({"train": {"batch_size": 64}}, ConfigError, "larger than"),
    ({"recipe": "nope"}, AttackError, "unknown recipe"),
])
def test_impossible_suites_are_refused(changes, error, message):
    with pytest.raises(error, match=message):
        SuiteSpec(**{**SPEC, **changes}).check()


def test_cli_bad_suite_and_report_input_exit_2(run_home, capsys):
    assert main(["suite", "--methods", "", "--seeds", "0"]) == 2
    assert "error: a suite needs at least one method" in capsys.readouterr().err
    assert main(["suite", "--methods", "vanilla", "--seeds", "a,b"]) == 2
    assert "error: seeds are whole numbers" in capsys.readouterr().err
    assert main(["report", "--json"]) == 2
    captured = capsys.readouterr()
    assert "error: no suite" in captured.err and captured.out == ""
    assert RunStore(run_home).list() == [], "a refused suite records nothing"


def test_suite_items_before_it_runs(run_home):
    """A queued suite lists its items seed by seed, methods in the order given, with nothing trained yet."""
    suite = RunStore(run_home).create(suite_config(SuiteSpec(**SPEC)), kind="suite")
    items = suite_items(suite)
    assert [(i["method"], i["seed"]) for i in items] == [("vanilla", 0), ("rose-second", 0), ("vanilla", 1),
                                                          ("rose-second", 1)]
    assert all(i["train_status"] == "queued" and i["attack_status"] == "queued" for i in items)
    assert suite_train_runs(RunStore(run_home), suite) == []


# ---------------------------------------------------------------- a real suite

@pytest.mark.slow
def test_suite_trains_evaluates_and_attacks_every_item(suite_store):
    store, suite_id = suite_store
    suite = store.get(suite_id)
    assert suite.status["status"] == "done"
    items = suite.status["items"]
    assert [(i["method"], i["seed"]) for i in items] == [(m, s) for s in SPEC["seeds"] for m in SPEC["methods"]]
    train_runs = suite_train_runs(store, suite)
    assert len(set(train_runs)) == 4 and sorted(train_runs) == sorted(r["id"] for r in store.list(kind="train"))
    for item in items:
        assert item["train_status"] == "done" and item["reused"] is False and item["attack_status"] == "done"
        run = store.get(item["train_run"])
        assert (run.config["method"], run.config["seed"], run.config["suite"]) == (item["method"], item["seed"],
                                                                                    suite_id)
        evals = json.loads((run.dir / "eval.json").read_text())
        assert {"sst2-dev", "advglue-sst2"} <= set(evals)
        attack = find_done(store, "attack", ATTACK.config_for(run.id))
        assert attack is not None and attack.id == item["attack_run"] and attack.results["n"] == 2


def test_report_of_a_suite(suite_store, tiny_runs_count):
    store, suite_id = suite_store
    report = build_report(store, suite_train_runs(store, store.get(suite_id)), ATTACK)
    assert missing_work(report["runs"]) == {"evaluations": [], "attacks": []}
    methods = by_method(report["methods"])
    assert list(methods) == ["vanilla", "rose-second"]
    for m in methods.values():
        assert m["n_runs"] == 2 and m["seeds"] == [0, 1] and m["n_failed"] == 0
        for metric in METRICS:
            assert m[f"{metric}_n"] == 2 and math.isfinite(m[metric]) and math.isfinite(m[f"{metric}_std"])
    vanilla_runs = [r for r in report["runs"] if r["method"] == "vanilla"]
    assert methods["vanilla"]["dev_accuracy"] == pytest.approx(statistics.mean(r["dev_accuracy"] for r in vanilla_runs))
    assert all(c["verdict"] in ("supported", "not supported", "inconclusive") for c in report["claims"])
    assert claim(report["claims"], "im-bert")["verdict"] == "inconclusive"

    curves = budget_curves(store, report["runs"])
    assert curves["budgets"][0] == 0 and set(curves["methods"]) == {"vanilla", "rose-second"}
    vanilla_curve = curves["methods"]["vanilla"]
    assert vanilla_curve["n"] == 2 and len(vanilla_curve["mean"]) == len(curves["budgets"])
    # with the whole budget the curve is the stored accuracy under attack
    assert vanilla_curve["mean"][-1] == pytest.approx(methods["vanilla"]["accuracy_under_attack"])

    text = to_markdown(report)
    assert "## Methods" in text and "## Claims" in text and "small-scale" in text
    table = list(csv.DictReader(io.StringIO(to_csv(methods_table(report)))))
    assert [r["method"] for r in table] == ["vanilla", "rose-second"] and table[0]["runs"] == "2"


def test_same_model_config_is_found_and_others_are_not(suite_store):
    store, suite_id = suite_store
    first = suite_items(store.get(suite_id))[0]
    spec = SuiteSpec(**{**SPEC, "train": {"batch_size": 16, "eval_every": 3, "device": "cpu"}})
    assert find_done(store, "train", spec.train_config("vanilla", 0).to_dict()).id == first["train_run"]
    assert find_done(store, "train", spec.train_config("vanilla", 7).to_dict()) is None
    assert find_done(store, "train", SuiteSpec(**{**SPEC, "train": {"batch_size": 16, "lr": 1e-4}})
                     .train_config("vanilla", 0).to_dict()) is None
    estimate = estimate_seconds(store, SuiteSpec(**{**SPEC, "seeds": [0, 1, 9]}))
    assert set(estimate) == {"vanilla", "rose-second"} and all(v > 0 for v in estimate.values())
    assert estimate_seconds(store, SuiteSpec(**SPEC)) == {"vanilla": 0.0, "rose-second": 0.0}


def test_identical_suite_reuses_every_run_and_attack(suite_store, monkeypatch, capsys):
    store, suite_id = suite_store
    before = {kind: {r["id"] for r in store.list(kind=kind)} for kind in ("train", "attack")}
    first = suite_items(store.get(suite_id))
    again = run_suite(store, SuiteSpec(**SPEC)).status["items"]
    assert [(i["train_run"], i["attack_run"]) for i in again] == [(i["train_run"], i["attack_run"]) for i in first]
    assert all(i["reused"] is True and i["attack_status"] == "done" for i in again)
    # the command line does the same (the batch size and learning rate it passes are the defaults)
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    monkeypatch.setattr(jobs.StopFlag, "install", lambda self: self)  # keep pytest's signal handlers
    assert main(["suite", "--methods", "vanilla,rose-second", "--seeds", "0,1", "--model", "tiny", "--train-size",
                 "32", "--epochs", "1", "--batch-size", "16", "--attack-n", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["n_trained"] == 4 and summary["n_failed"] == 0
    assert summary["train_runs"] == [i["train_run"] for i in first]
    assert {kind: {r["id"] for r in store.list(kind=kind)} for kind in ("train", "attack")} == before


def test_report_with_a_failed_and_a_deleted_run(suite_store, tiny_runs_count, tmp_path, monkeypatch, capsys):
    """On a copy of the suite's store: a deleted run is a "deleted" row, a failed one counts in n_failed, and
    neither brings a zero into the means; `report --json --runs` prints the same report as one JSON line."""
    source, suite_id = suite_store
    shutil.copytree(source.home, tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    items = suite_items(store.get(suite_id))
    run_ids = [i["train_run"] for i in items]
    deleted, failed = items[0]["train_run"], items[1]["train_run"]      # vanilla seed 0, rose-second seed 0
    store.delete(deleted)
    run = store.get(failed)
    run.set_status("failed", error="x")
    store.update_index(run)

    report = build_report(store, run_ids, ATTACK)
    rows = {r["run_id"]: r for r in report["runs"]}
    assert rows[deleted]["status"] == "deleted" and rows[deleted]["method"] is None
    assert rows[failed]["status"] == "failed" and rows[failed]["error"] == "x" and rows[failed]["dev_accuracy"] is None
    methods = by_method(report["methods"])
    assert list(methods) == ["vanilla", "rose-second", "(deleted runs)"]
    assert (methods["rose-second"]["n_runs"], methods["rose-second"]["n_failed"]) == (1, 1)
    assert (methods["vanilla"]["n_runs"], methods["vanilla"]["n_failed"]) == (1, 0)
    assert methods["(deleted runs)"]["n_unfinished"] == 1
    for item in items[2:]:      # each method's mean is its one remaining run's number, not pulled towards zero
        remaining = rows[item["train_run"]]
        for metric in METRICS:
            assert methods[item["method"]][metric] == pytest.approx(remaining[metric])
            assert methods[item["method"]][f"{metric}_std"] is None

    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    assert main(["report", "--json", "--runs", ",".join(run_ids), "--attack-n", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    printed = json.loads(lines[0])
    assert [m["method"] for m in printed["methods"]] == ["vanilla", "rose-second", "(deleted runs)"]
    for m in printed["methods"]:
        assert set(METHOD_KEYS) <= set(m)
    assert printed["methods"][:2] == report["methods"][:2]
    assert len(printed["claims"]) == 5 and all(c["verdict"] for c in printed["claims"])


def test_a_run_named_twice_counts_once_and_nothing_attacked_has_no_success_rate(suite_store, tiny_runs_count, tmp_path):
    """Naming a run twice must not narrow the spread; an attack that skipped every sentence (the model was wrong on
    all of them) has no success rate, which must read as missing, not as a perfect 0."""
    from engine.reporting.benchmark import run_row
    from engine.store.runs import write_json

    source, suite_id = suite_store
    ids = suite_train_runs(source, source.get(suite_id))
    report = build_report(source, [ids[0], ids[0], ids[2]], ATTACK)
    assert by_method(report["methods"])["vanilla"]["n_runs"] == 2
    assert "tiny random BERT" in report["scale_note"]

    shutil.copytree(source.home, tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    attack = find_done(store, "attack", ATTACK.config_for(ids[0]))
    write_json(attack.dir / "results.json", {**attack.results, "succeeded": 0, "failed": 0, "skipped": 2,
                                             "success_rate": 0.0, "accuracy_under_attack": 0.0})
    row = run_row(store, ids[0], ATTACK)
    assert row["attack_success_rate"] is None and "attack_success_rate" in row["missing"]
    assert row["accuracy_under_attack"] == 0.0
    assert missing_work([row])["attacks"] == [], "the stored attack is not queued again"


def test_an_attack_that_cannot_run_fails_its_item_not_the_suite(suite_store, tmp_path):
    """The machine changed between queueing and running (here: the suite asks for a recipe whose data is not on
    this machine): every model is still trained or reused and reported; each item's attack says why it failed."""
    from engine.store.runs import write_json

    source, _ = suite_store
    shutil.copytree(source.home, tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    suite = store.create(suite_config(SuiteSpec(**SPEC)), kind="suite")
    write_json(suite.dir / "config.json", {**suite.config, "recipe": "textfooler"})
    results = jobs.execute(store, suite, lambda: False)
    assert results["status"] == "done" and results["n_trained"] == 4 and results["n_failed"] == 4
    for item in results["items"]:
        assert item["train_status"] == "done" and item["attack_status"] == "failed"
        assert "textfooler cannot run here" in item["error"]


def test_report_fill_computes_only_what_is_missing(suite_store, tmp_path, monkeypatch, capsys):
    """`report --fill` evaluates a run whose eval.json is gone and re-attacks a run whose attack was deleted;
    everything else is read as stored."""
    source, suite_id = suite_store
    shutil.copytree(source.home, tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    ids = suite_train_runs(store, store.get(suite_id))
    (store.get(ids[0]).dir / "eval.json").unlink()
    store.delete(find_done(store, "attack", ATTACK.config_for(ids[1])).id)
    attacks_before = len(store.list(kind="attack"))
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    monkeypatch.setattr(jobs.StopFlag, "install", lambda self: self)  # keep pytest's signal handlers
    assert main(["report", "--json", "--suite", suite_id]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert missing_work(printed["runs"]) == {"evaluations": [ids[0]], "attacks": [ids[1]]}
    assert main(["report", "--json", "--suite", suite_id, "--fill"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert missing_work(printed["runs"]) == {"evaluations": [], "attacks": []}
    assert len(store.list(kind="attack")) == attacks_before + 1


def test_report_json_states_mixed_settings_runs_that_did_not_learn_and_one_seed(run_home, capsys):
    """Bad input reaches `report --json` as plain statements, and no verdict is built on it."""
    store = RunStore(run_home)
    ids = [fake_run(store, "vanilla", 0, 0.82, 0.40).id, fake_run(store, "vanilla", 1, 0.55, 0.60).id,
           fake_run(store, "uegr", 0, 0.85, 0.45, lr=1e-4).id, fake_run(store, "uegr", 1, 0.86, 0.46, lr=3e-4).id]
    assert main(["report", "--json", "--runs", ",".join(ids), "--recipe", "none"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    said = " ".join(printed["statements"])
    assert "uegr runs were trained with different settings" in said
    assert f"{ids[1]} (vanilla seed 1, did not learn" in said
    assert "One seed per method row" in said
    assert printed["excluded"] == [{"run_id": ids[1], "method": "vanilla", "seed": 1, "row": "vanilla",
                                    "reason": printed["excluded"][0]["reason"]}]
    assert "did not learn" in printed["excluded"][0]["reason"]
    assert [m["method"] for m in printed["methods"]] == ["vanilla", "uegr (lr=0.0001)", "uegr (lr=0.0003)"]
    assert all(p["verdict"] == "inconclusive" for c in printed["claims"] for p in c["parts"])
    assert printed["chance"]["dev_accuracy"] == pytest.approx(444 / 872)
    assert 0.45 < printed["chance"]["advglue_accuracy"] < 0.55


def test_report_grid_must_name_a_recovery_grid(run_home, capsys):
    store = RunStore(run_home)
    run_id = fake_run(store, "vanilla", 0, 0.82, 0.40).id
    assert main(["report", "--json", "--runs", run_id, "--grid", "nope"]) == 2
    captured = capsys.readouterr()
    assert "no recovery grid nope" in captured.err and captured.out == ""
    assert main(["report", "--json", "--runs", run_id, "--grid", run_id]) == 2
    assert "not a recovery grid" in capsys.readouterr().err


@pytest.mark.parametrize("dataset,attacked", [("sst2", "sst2-dev"), ("rte", "rte-dev"), ("csv:/x.csv", "heldout")])
def test_a_suite_attacks_its_own_dataset_s_dev_set_unless_told(dataset, attacked):
    assert SuiteSpec(methods=["vanilla"], seeds=[0], dataset=dataset).attack_dataset == attacked
    assert SuiteSpec(methods=["vanilla"], seeds=[0], dataset=dataset, attack_dataset="x").attack_dataset == "x"
