"""AdvGLUE's sets per task and its official scoring of one run: a task's accuracy is its set's, MNLI the mean of
its matched and mismatched parts (Wang et al., NeurIPS 2021). Every run of every task stores and shows its AdvGLUE
accuracy through `results_accuracy`, old results (only per-set keys) included."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.data.registry import load_dataset
from engine.data.splits import task_of
from engine.data.text_dataset import DataError
from engine.stats import chance_accuracy

TASKS = ("sst2", "qqp", "mnli", "qnli", "rte")     # the official order of AdvGLUE's tables
TASK_SETS = {"sst2": ("advglue-sst2",), "qqp": ("advglue-qqp",), "mnli": ("advglue-mnli", "advglue-mnli-mm"),
             "qnli": ("advglue-qnli",), "rte": ("advglue-rte",)}


def set_key(name: str) -> str:
    """The results.json key training writes for robustness set `name` (advglue-mnli-mm: advglue_mnli_mm_accuracy)."""
    return f"{name.replace('-', '_')}_accuracy"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def official_accuracy(task: str | None, accuracies: Mapping[str, Any]) -> float | None:
    """A task's AdvGLUE accuracy from its sets' accuracies (set name -> accuracy) by the official scoring: the
    task's one set, MNLI the mean of matched and mismatched; None when the task is not AdvGLUE's or a set's
    accuracy is missing (or not a number)."""
    values = [accuracies.get(name) for name in TASK_SETS.get(task or "", ())]
    if not values or not all(_number(v) for v in values):
        return None
    return float(np.mean(values))


def task_accuracy(task: str | None, evals: dict[str, dict]) -> float | None:
    """A run's AdvGLUE accuracy on its task from its stored evaluations (eval.json): the task's set, MNLI the mean
    of matched and mismatched; None when the task is not AdvGLUE's or a set's evaluation is missing."""
    sets = TASK_SETS.get(task or "", ())
    return official_accuracy(task, {name: evals.get(name, {}).get("accuracy") for name in sets})


def results_accuracy(results: Mapping[str, Any], task: str | None) -> float | None:
    """A run's AdvGLUE accuracy (`advglue_accuracy`: its own task's, by the official scoring) from its results.json.
    A results.json written before that field existed has only the per-set keys (an SST-2 run's
    `advglue_sst2_accuracy`, an MNLI run's two parts): the same number is scored from them, so old stores read
    alike. None for a run without an AdvGLUE set, or a field that is not a number."""
    if "advglue_accuracy" in results:
        value = results["advglue_accuracy"]
        return float(value) if _number(value) else None
    return official_accuracy(task, {name: results.get(set_key(name)) for name in TASK_SETS.get(task or "", ())})


def advglue_label(task: str | None) -> str:
    """The AdvGLUE set a task's accuracy is on, as a page names it: AdvGLUE-RTE, AdvGLUE-MNLI (matched and
    mismatched averaged), plain AdvGLUE when the task is unknown or mixed."""
    return f"AdvGLUE-{task.upper()}" if task in TASK_SETS else "AdvGLUE"


def run_advglue(config: Mapping[str, Any], results: Mapping[str, Any]) -> tuple[str, float | None]:
    """A run's AdvGLUE set name and accuracy (its own task's: `results_accuracy`), as a page shows them."""
    task = task_of(config)
    return advglue_label(task), results_accuracy(results, task)


def advglue_chance(task: str | None) -> float | None:
    """Where a constant prediction sits on a task's AdvGLUE accuracy: the majority-class rate of its set (MNLI:
    the mean over its two parts, as the official score averages them); None for a task without AdvGLUE sets."""
    try:
        return official_accuracy(task, {name: chance_accuracy(load_dataset(name).labels)
                                        for name in TASK_SETS.get(task or "", ())})
    except DataError:   # a set not in the data folder: no line rather than a wrong one
        return None
