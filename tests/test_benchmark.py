"""The benchmark: comparing methods over seeds (Welch intervals, verdicts), grouping runs by method, judging the
papers' claims, suites that train, evaluate and attack every (method, seed) and reuse finished work, and the
`suite` and `report` commands."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import statistics

import pytest
from scipy import stats

from engine import jobs
from engine.__main__ import main
from engine.attacks.batch import find_cached
from engine.attacks.recipes import AttackError
from engine.benchmark import (
    METRICS,
    AttackSpec,
    aggregate,
    budget_curve,
    budget_curves,
    build_report,
    combine,
    compare,
    judge_all,
    methods_table,
    missing_work,
    to_csv,
    to_markdown,
)
from engine.runs import RunStore
from engine.suite import (
    SuiteError,
    SuiteSpec,
    estimate_seconds,
    find_trained,
    suite_config,
    suite_items,
    suite_train_runs,
)
from engine.train_config import ConfigError

SPEC = dict(methods=["vanilla", "rose-second"], seeds=[0, 1], model="tiny", train_size=32, epochs=1, attack_n=2,
            train={"batch_size": 16})
ATTACK = AttackSpec("deepwordbug", "sst2-dev", 2)
METHOD_KEYS = ("method", "n_runs", "dev_accuracy", "dev_accuracy_std", "advglue_sst2_accuracy",
               "advglue_sst2_accuracy_std", "attack_success_rate", "attack_success_rate_std")


def row(method: str | None, seed: int | None, status: str = "done", **metrics: float | None) -> dict:
    """A run row shaped like run_row's: the metrics not given are None (and missing, for a finished run)."""
    values = {m: metrics.get(m) for m in METRICS}
    missing = [m for m, v in values.items() if v is None] if status == "done" else []
    return {"run_id": f"{method}-{seed}-{status}", "method": method, "seed": seed, "status": status, **values,
            "missing": missing}


def by_method(rows: list[dict]) -> dict[str, dict]:
    return {r["method"]: r for r in rows}


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


# ---------------------------------------------------------------- comparing groups

def test_clear_gain_is_supported_and_its_interval_matches_welch():
    a, b = [0.90, 0.91, 0.93], [0.80, 0.82, 0.81]
    result = compare(a, b)
    assert result["verdict"] == "supported" and result["ci_low"] > 0
    assert result["diff"] == pytest.approx(statistics.mean(a) - statistics.mean(b))
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert (result["n_a"], result["n_b"]) == (3, 3)


def test_clear_loss_is_not_supported():
    result = compare([0.80, 0.82, 0.81], [0.90, 0.91, 0.93])
    assert result["verdict"] == "not supported" and result["ci_high"] < 0


def test_spread_over_seeds_makes_the_same_gap_inconclusive():
    wide = compare([0.80, 0.90, 0.70], [0.78, 0.86, 0.70])
    narrow = compare([0.801, 0.800, 0.799], [0.781, 0.780, 0.779])
    assert wide["diff"] == pytest.approx(narrow["diff"]) == pytest.approx(0.02)
    assert wide["verdict"] == "inconclusive" and wide["ci_low"] < 0 < wide["ci_high"]
    assert "spread" in wide["reason"]
    assert narrow["verdict"] == "supported" and narrow["ci_low"] > 0


def test_one_seed_per_side_is_inconclusive():
    result = compare([0.9], [0.5])
    assert result["verdict"] == "inconclusive" and "seeds" in result["reason"]
    assert result["diff"] == pytest.approx(0.4) and result["ci_low"] is None and result["ci_high"] is None
    assert compare([0.9, 0.91, 0.92], [0.5])["verdict"] == "inconclusive"
    empty = compare([], [0.5, 0.6])
    assert empty["verdict"] == "inconclusive" and empty["mean_a"] is None and empty["diff"] is None


def test_lower_is_better_direction():
    """Attack success rate: a group clearly below the baseline supports a "lower" claim, one above refutes it."""
    low, high = [0.30, 0.31, 0.32], [0.50, 0.52, 0.51]
    assert compare(low, high, higher_is_better=False)["verdict"] == "supported"
    assert compare(high, low, higher_is_better=False)["verdict"] == "not supported"
    assert compare(low, high)["verdict"] == "not supported"


def test_fixed_baseline_is_a_one_sample_interval():
    a = [0.60, 0.63, 0.61]
    result = compare(a, 1.0, higher_is_better=False)
    assert result["verdict"] == "supported" and result["n_b"] is None and result["mean_b"] == 1.0
    ci = stats.ttest_1samp(a, 1.0).confidence_interval(0.95)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((ci.low - 1.0, ci.high - 1.0))
    assert compare([0.99, 1.01, 1.0], 1.0, higher_is_better=False)["verdict"] == "inconclusive"


def test_zero_spread_groups():
    """Identical groups with no spread: no gain, so not supported; a real gap with no spread is supported."""
    same = compare([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert same["verdict"] == "not supported" and same["ci_low"] == same["ci_high"] == 0.0
    assert compare([0.6, 0.6], [0.5, 0.5])["verdict"] == "supported"


def test_combine_verdicts():
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["supported", "not supported", "inconclusive"]) == "not supported"
    assert combine(["supported", "inconclusive"]) == "inconclusive"
    assert combine([]) == "inconclusive"


# ---------------------------------------------------------------- grouping by method

def test_aggregate_means_spread_failed_missing_and_deleted():
    rows = [row("vanilla", 0, dev_accuracy=0.80, advglue_sst2_accuracy=0.50, attack_success_rate=0.6,
                accuracy_under_attack=0.3),
            row("vanilla", 1, dev_accuracy=0.84, attack_success_rate=0.4, accuracy_under_attack=0.5),
            row("vanilla", 2, dev_accuracy=0.82, advglue_sst2_accuracy=0.54, attack_success_rate=0.5,
                accuracy_under_attack=0.4),
            row("vanilla", 3, "failed"), row("vanilla", 4, "running"),
            row("im-bert", 0, dev_accuracy=0.7),
            row(None, None, "deleted")]
    methods = aggregate(rows)
    assert [m["method"] for m in methods] == ["vanilla", "im-bert", "(deleted runs)"]
    vanilla, im_bert, deleted = methods
    assert (vanilla["n_runs"], vanilla["n_failed"], vanilla["n_unfinished"], vanilla["seeds"]) == (3, 1, 1, [0, 1, 2])
    assert vanilla["dev_accuracy"] == pytest.approx(0.82)
    assert vanilla["dev_accuracy_std"] == pytest.approx(statistics.stdev([0.80, 0.84, 0.82]))
    # the run without AdvGLUE is counted missing, and its None never becomes a zero in the mean
    assert vanilla["advglue_sst2_accuracy"] == pytest.approx(0.52) and vanilla["advglue_sst2_accuracy_n"] == 2
    assert vanilla["advglue_sst2_accuracy_missing"] == 1 and vanilla["dev_accuracy_missing"] == 0
    assert vanilla["advglue_sst2_accuracy_std"] == pytest.approx(statistics.stdev([0.50, 0.54]))
    assert im_bert["dev_accuracy"] == pytest.approx(0.7) and im_bert["dev_accuracy_std"] is None
    assert im_bert["advglue_sst2_accuracy"] is None and im_bert["advglue_sst2_accuracy_missing"] == 1
    assert deleted["n_runs"] == 0 and deleted["n_unfinished"] == 1 and deleted["dev_accuracy"] is None


# ---------------------------------------------------------------- the claims

def claim(claims: list[dict], key: str) -> dict:
    return next(c for c in claims if c["key"] == key)


def test_claims_judged_from_method_values_and_a_recovery_grid():
    values = {"vanilla": {"advglue_sst2_accuracy": [0.50, 0.52, 0.51]},
              "im-bert": {"advglue_sst2_accuracy": [0.60, 0.62, 0.61]},
              "rose-second": {"advglue_sst2_accuracy": [0.53, 0.54, 0.52]},
              "rose-ensemble": {"advglue_sst2_accuracy": [0.58, 0.59, 0.60]}}
    grid = [{"position": "clean", "status": "done", "recovery_ratio": 1.0},
            *({"position": "bottom", "status": "done", "recovery_ratio": r} for r in (0.60, 0.62, 0.61)),
            *({"position": "top", "status": "done", "recovery_ratio": r} for r in (0.90, 0.92, 0.91)),
            {"position": "bottom", "status": "failed", "recovery_ratio": 5.0}]
    claims = judge_all(values, grid)
    assert [c["key"] for c in claims] == ["im-bert", "rose", "match-tuning", "uegr", "healing"]
    assert claim(claims, "im-bert")["verdict"] == "supported"
    rose = claim(claims, "rose")
    assert rose["verdict"] == "inconclusive"
    assert [p["verdict"] for p in rose["parts"]] == ["supported", "inconclusive", "supported"]
    assert "rose-first" in rose["parts"][1]["reason"]
    assert claim(claims, "match-tuning")["verdict"] == "inconclusive"
    healing = claim(claims, "healing")
    assert healing["verdict"] == "supported", healing["parts"]
    assert [p["n_a"] for p in healing["parts"]] == [3, 3, 3]   # the failed grid row is left out
    healed_top = [{**r, "recovery_ratio": 1.0 + 0.01 * i} if r["position"] == "top" else r for i, r in enumerate(grid)]
    healing = claim(judge_all(values, healed_top), "healing")   # top layers heal completely: the claim fails
    assert healing["verdict"] == "not supported"
    assert [p["verdict"] for p in healing["parts"]] == ["supported", "not supported", "supported"]

    without = claim(judge_all(values, None), "healing")
    assert without["verdict"] == "inconclusive"
    assert all("no finished recovery grid" in p["reason"] for p in without["parts"])


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
        attack = find_cached(store, ATTACK.config_for(run.id))
        assert attack is not None and attack.id == item["attack_run"] and attack.results["n"] == 2


def test_report_of_a_suite(suite_store):
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
    assert find_trained(store, spec.train_config("vanilla", 0)).id == first["train_run"]
    assert find_trained(store, spec.train_config("vanilla", 7)) is None
    assert find_trained(store, SuiteSpec(**{**SPEC, "train": {"batch_size": 16, "lr": 1e-4}})
                        .train_config("vanilla", 0)) is None
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


def test_report_with_a_failed_and_a_deleted_run(suite_store, tmp_path, monkeypatch, capsys):
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


def test_a_run_named_twice_counts_once_and_nothing_attacked_has_no_success_rate(suite_store, tmp_path):
    """Naming a run twice must not narrow the spread; an attack that skipped every sentence (the model was wrong on
    all of them) has no success rate, which must read as missing, not as a perfect 0."""
    from engine.benchmark import run_row
    from engine.runs import write_json

    source, suite_id = suite_store
    ids = suite_train_runs(source, source.get(suite_id))
    report = build_report(source, [ids[0], ids[0], ids[2]], ATTACK)
    assert by_method(report["methods"])["vanilla"]["n_runs"] == 2
    assert "tiny random BERT" in report["notes"][0]

    shutil.copytree(source.home, tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    attack = find_cached(store, ATTACK.config_for(ids[0]))
    write_json(attack.dir / "results.json", {**attack.results, "succeeded": 0, "failed": 0, "skipped": 2,
                                             "success_rate": 0.0, "accuracy_under_attack": 0.0})
    row = run_row(store, ids[0], ATTACK)
    assert row["attack_success_rate"] is None and "attack_success_rate" in row["missing"]
    assert row["accuracy_under_attack"] == 0.0
    assert missing_work([row])["attacks"] == [], "the stored attack is not queued again"


def test_an_attack_that_cannot_run_fails_its_item_not_the_suite(suite_store, tmp_path):
    """The machine changed between queueing and running (here: the suite asks for a recipe whose data is not on
    this machine): every model is still trained or reused and reported; each item's attack says why it failed."""
    from engine.runs import write_json

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
    store.delete(find_cached(store, ATTACK.config_for(ids[1])).id)
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
