"""The AdvGLUE score in the report: per-task accuracy, MNLI as the mean of matched and mismatched, the macro average
over the five tasks only when all five have a model, and the missing tasks named."""
from __future__ import annotations

import json

import pytest
from benchmark_util import fake_run

from engine.__main__ import main
from engine.data.advglue import task_accuracy
from engine.reporting.advglue_score import advglue_scores
from engine.store.runs import RunStore, write_json

DEV_SETS = {"sst2": "sst2-dev", "qqp": "qqp-dev", "mnli": "mnli-dev", "qnli": "qnli-dev", "rte": "rte-dev"}


def task_run(store: RunStore, task: str, seed: int, advglue: dict[str, float], method: str = "vanilla"):
    """A finished run of `task` (learned: dev 0.9 against chance 0.5) with these AdvGLUE accuracies stored."""
    run = fake_run(store, method, seed, dev=0.9, dataset=task)
    evals = {DEV_SETS[task]: {"accuracy": 0.9, "n": 100, "chance_accuracy": 0.5},
             **{name: {"accuracy": acc, "n": 80, "chance_accuracy": 0.5} for name, acc in advglue.items()}}
    write_json(run.dir / "eval.json", evals)
    write_json(run.dir / "results.json", {"status": "done", "dev_set": DEV_SETS[task], "dev_accuracy": 0.9,
                                          "chance_accuracy": 0.5, "learned": True})
    return run


def row(task: str, accuracy: float | None, method: str = "vanilla", included: bool = True) -> dict:
    return {"run_id": f"{method}-{task}", "method": method, "model": "tiny", "settings": {}, "task": task,
            "included": included, "advglue_accuracy": accuracy}


def test_mnli_is_the_mean_of_matched_and_mismatched_and_a_missing_part_is_no_score():
    assert task_accuracy("mnli", {"advglue-mnli": {"accuracy": 0.3}, "advglue-mnli-mm": {"accuracy": 0.5}}) == 0.4
    assert task_accuracy("mnli", {"advglue-mnli": {"accuracy": 0.3}}) is None
    assert task_accuracy("rte", {"advglue-rte": {"accuracy": 0.6}}) == 0.6
    assert task_accuracy("csv:/x.csv", {}) is None


def test_the_score_is_the_macro_average_over_five_tasks_and_never_over_fewer():
    full = [row(t, a) for t, a in zip(("sst2", "qqp", "mnli", "qnli", "rte"), (0.5, 0.4, 0.3, 0.6, 0.7))]
    partial = [row("sst2", 0.8, "uegr"), row("rte", 0.6, "uegr"), row("qnli", 0.9, "uegr", included=False)]
    section = advglue_scores([*full, *partial])
    systems = {s["system"]: s for s in section["systems"]}
    assert systems["vanilla"]["score"] == pytest.approx(0.5) and systems["vanilla"]["missing_tasks"] == []
    assert systems["uegr"]["score"] is None
    assert systems["uegr"]["missing_tasks"] == ["qqp", "mnli", "qnli"], "a run that did not learn does not count"
    assert section["tasks_present"] == ["sst2", "qqp", "mnli", "qnli", "rte"]


def test_seeds_of_one_task_are_averaged_and_other_model_settings_are_other_systems():
    rows = [row("rte", 0.6), {**row("rte", 0.8), "run_id": "second"}, {**row("rte", 0.2), "model": "minilm"}]
    systems = {s["system"]: s for s in advglue_scores(rows)["systems"]}
    assert set(systems) == {"vanilla (model=tiny)", "vanilla (model=minilm)"}
    assert systems["vanilla (model=tiny)"]["tasks"]["rte"] == {"accuracy": pytest.approx(0.7), "n": 2,
                                                                "runs": ["vanilla-rte", "second"]}


def test_report_gives_the_advglue_score_and_names_the_missing_tasks(run_home, capsys):
    store = RunStore(run_home)
    ids = [task_run(store, "sst2", 0, {"advglue-sst2": 0.5}).id,
           task_run(store, "rte", 0, {"advglue-rte": 0.6}).id,
           task_run(store, "mnli", 0, {"advglue-mnli": 0.3, "advglue-mnli-mm": 0.4}).id]
    assert main(["report", "--runs", ",".join(ids), "--recipe", "none", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (system,) = report["advglue"]["systems"]
    assert {t: v["accuracy"] for t, v in system["tasks"].items()} == {"sst2": 0.5, "rte": 0.6,
                                                                       "mnli": pytest.approx(0.35)}
    assert system["score"] is None and system["missing_tasks"] == ["qqp", "qnli"]
    assert all(r["missing"] == [] for r in report["runs"]), "a pair run misses no AdvGLUE-SST2 number"
    assert main(["report", "--runs", ",".join(ids), "--recipe", "none", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "## AdvGLUE score" in markdown
    assert "| vanilla | 50.0 (n=1) | missing | 35.0 (n=1) | missing | 60.0 (n=1) | – | qqp, qnli |" in markdown


def test_a_report_of_sst2_runs_only_has_no_advglue_section_in_markdown(run_home, capsys):
    store = RunStore(run_home)
    ids = [task_run(store, "sst2", seed, {"advglue-sst2": 0.5}).id for seed in (0, 1)]
    assert main(["report", "--runs", ",".join(ids), "--recipe", "none", "--format", "markdown"]) == 0
    assert "AdvGLUE score" not in capsys.readouterr().out
