"""What each claim compares with, said plainly: IM-BERT at h = 1 has no EX-BERT control apart from vanilla; a Healing
verdict names the fine-tuning budget it was read after, and the grid form offers longer ones; a ROSE row names its
thresholds and whose they are, and `rose-sweep` trains the ensemble over a grid of them."""
from __future__ import annotations

import json

import pytest
from apptest_util import no_exception, page
from recovery_util import fake_grid
from test_benchmark import IM_BERT, claim, im_bert_rows, judge, part, seeds_rows
from test_healing import BOTTOM, TOP, accuracy_of

from engine.__main__ import main
from engine.recovery.claims import judge_healing
from engine.recovery.grid import BUDGETS, budget_steps
from engine.reporting.benchmark import aggregate, group_runs
from engine.reporting.export import methods_table
from engine.store.runs import RunStore
from engine.suite.job import SuiteSpec

# ---------------------------------------------------------------- IM-BERT's explicit control

def test_im_bert_at_h_1_says_it_has_no_explicit_control_apart_from_vanilla():
    vanilla, im_bert, ex_default = im_bert_rows()
    claims = judge(vanilla + im_bert + ex_default)
    twin = part(claims, "AdvGLUE-SST2: im-bert above ex-bert")
    assert twin["repeats"] == "AdvGLUE-SST2: im-bert above vanilla"
    assert twin["reason"].startswith("at h = 1 with the residual field there is no explicit control apart from "
                                     "vanilla")
    assert part(claims, "dev accuracy: im-bert no more than 1 point below ex-bert")["repeats"]
    assert any(s.startswith("No separate EX-BERT control") and "one piece of evidence, not two" in s
               for s in claim(claims, "im-bert")["statements"])
    assert part(claims, "AdvGLUE-SST2: im-bert above vanilla")["repeats"] is None
    # an IM-BERT at h = 0.5 beside EX-BERT's default h = 0.5: a control that differs from vanilla, nothing repeated
    half = seeds_rows("im-bert", "advglue_accuracy", [0.50, 0.51, 0.52], dev_accuracy=0.85,
                      settings={**IM_BERT, "h": 0.5})
    claims = judge(vanilla + half + ex_default)
    real = part(claims, "AdvGLUE-SST2: im-bert above ex-bert")
    assert real["baseline_row"] == "ex-bert" and real["repeats"] is None
    assert real["mean_b"] == pytest.approx(0.46)
    assert not any("No separate" in s for s in claim(claims, "im-bert")["statements"])


# ---------------------------------------------------------------- Healing: the budget

@pytest.fixture
def store(run_home) -> RunStore:
    return RunStore(run_home)


def test_a_healing_verdict_names_the_steps_it_was_read_after(store):
    row = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2]).id)
    assert row["budget_steps"] == 126 == budget_steps(2000, 2, 32)
    assert row["verdict_budget"] == "supported after 126 fine-tuning steps per run"
    assert all("measured after 126 fine-tuning steps" in p["reason"] and "speed of recovery" in p["reason"]
               for p in row["parts"])
    assert "= 126 optimiser steps per run" in row["statements"][0]
    longer = judge_healing(store, fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2],
                                            epochs=8).id)
    assert longer["budget_steps"] == 504 and "after 504 fine-tuning steps" in longer["parts"][0]["reason"]


def test_the_grid_form_offers_longer_budgets_and_says_their_steps(run_home):
    assert BUDGETS["default"] == (2000, 2) and budget_steps(*BUDGETS["16x longer"], 32) == 2000
    at = no_exception(page("recovery.py").run())
    assert any("takes 126 optimiser steps" in c.value for c in at.caption)
    at.radio(key="rec-budget").set_value("4x longer").run()
    no_exception(at)
    assert at.number_input(key="rec-epochs-4x-longer").value == 8
    assert any("takes 504 optimiser steps" in c.value for c in at.caption)
    at.radio(key="rec-model").set_value("tiny").run()
    at.text_input(key="rec-levels").set_value("1").run()
    assert not no_exception(at).error and not at.button(key="rec-queue").disabled


# ---------------------------------------------------------------- ROSE: thresholds on the row, and the sweep

def test_a_rose_row_states_its_thresholds_and_whose_they_are():
    ours = seeds_rows("rose-ensemble", "dev_accuracy", [0.80, 0.81, 0.82],
                      settings={"upper": 80.0, "lower": 0.0, "gamma": 0.5, "kl_dropout": 0.1, "warmup_steps": -1})
    official = seeds_rows("rose-first", "dev_accuracy", [0.80, 0.81, 0.82], lr=2e-5,
                          settings={"upper": 60.0, "lower": 0.0, "kl_dropout": 0.1, "warmup_steps": -1})
    vanilla = seeds_rows("vanilla", "dev_accuracy", [0.80, 0.81, 0.82])
    rows = ours + official + vanilla
    table = {r["method"]: r["thresholds"] for r in methods_table({"methods": aggregate(group_runs(rows), rows)})}
    assert table["rose-ensemble"].startswith("upper 80 at lr 0.0002, gamma 0.5: RobustLab's thresholds, not the "
                                             "official SST-2 row (RoBERTa-base: lr 5e-05, upper 40")
    assert table["rose-first"] == "upper 60 at lr 2e-05: the official README's SST-2 row (RoBERTa-base)"
    assert table["vanilla"] == ""


def test_rose_sweep_trains_the_ensemble_over_a_threshold_grid(run_home, capsys):
    assert main(["rose-sweep", "--uppers", "60,80", "--seeds", "0", "--model", "tiny", "--train-size", "32",
                 "--epochs", "1", "--batch-size", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(p["upper"], p["lower"], p["status"]) for p in summary["points"]] == [(60.0, 0.0, "done"),
                                                                                  (80.0, 0.0, "done")]
    store = RunStore(run_home)
    suites = {SuiteSpec.from_dict(store.get(r["id"]).config).train["settings"]["upper"]: r["id"]
              for r in store.list(kind="suite")}
    assert set(suites) == {60.0, 80.0}
    trained = [store.get(p["train_runs"][0]).config for p in summary["points"]]
    assert [(c["method"], c["settings"]["upper"]) for c in trained] == [("rose-ensemble", 60.0),
                                                                       ("rose-ensemble", 80.0)]
    assert summary["compare"] == "python -m engine report --runs " + ",".join(
        r for p in summary["points"] for r in p["train_runs"])


def test_rose_sweep_refuses_a_bad_grid_before_queueing_anything(run_home, capsys):
    assert main(["rose-sweep", "--uppers", "60,abc", "--model", "tiny", "--detach"]) == 2
    assert "--uppers: 'abc' is not a number" in capsys.readouterr().err
    assert main(["rose-sweep", "--uppers", "150", "--model", "tiny", "--detach"]) == 2
    assert "--uppers:" in capsys.readouterr().err
    assert RunStore(run_home).list() == []


def test_im_bert_at_h_1_without_any_ex_bert_runs_still_names_its_control():
    vanilla = seeds_rows("vanilla", "advglue_accuracy", [0.40, 0.41, 0.42], dev_accuracy=0.85)
    im_bert = seeds_rows("im-bert", "advglue_accuracy", [0.50, 0.51, 0.52], dev_accuracy=0.85,
                         settings=IM_BERT)
    twin = part(judge(vanilla + im_bert), "AdvGLUE-SST2: im-bert above ex-bert")
    assert twin["baseline_row"] == "vanilla" and twin["repeats"] == "AdvGLUE-SST2: im-bert above vanilla"
    assert "no explicit control apart from vanilla" in twin["reason"]
