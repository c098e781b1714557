"""The AdvGLUE score as the benchmark's official scoring defines it, from the runs a report covers.

AdvGLUE (Wang et al., NeurIPS 2021) scores a system by its accuracy on each task's adversarial dev set, MNLI being
the mean of its matched and mismatched parts, and by the macro average over its five tasks: SST-2, QQP, MNLI,
QNLI and RTE. A system here is one method with one set of method settings and one model, fine-tuned once per
task (each task's runs are its own train runs, whatever their other training options). Each task's accuracy is the
mean over that task's counted runs (finished, not known to have failed to learn: engine.reporting.benchmark's rule). The
score is given only when all five tasks have one; otherwise it is None and the missing tasks are named: an
average over fewer tasks is not the AdvGLUE score.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

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
    from engine.data.splits import task_of

    task = task_of(config)
    return advglue_label(task), results_accuracy(results, task)


def advglue_chance(task: str | None) -> float | None:
    """Where a constant prediction sits on a task's AdvGLUE accuracy: the majority-class rate of its set (MNLI:
    the mean over its two parts, as the official score averages them); None for a task without AdvGLUE sets."""
    from engine.data.registry import load_dataset
    from engine.data.text_dataset import DataError
    from engine.training.evaluate import chance_accuracy

    try:
        return official_accuracy(task, {name: chance_accuracy(load_dataset(name).labels)
                                        for name in TASK_SETS.get(task or "", ())})
    except DataError:   # a set not in the data folder: no line rather than a wrong one
        return None


def _system(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["method"], row.get("model") or "", json.dumps(row["settings"], sort_keys=True)


def advglue_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{tasks, tasks_present, systems}: per system (method, model, method settings) each task's accuracy (mean over
    its counted runs, their number and ids), the score (macro average over TASKS, None unless all are present) and
    the missing tasks. `rows`: engine.reporting.benchmark's run rows, with `task` and `advglue_accuracy`."""
    counted = [r for r in rows if r["included"] and r.get("advglue_accuracy") is not None]
    systems: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in counted:
        systems.setdefault(_system(row), []).append(row)
    described = [{"model": key[1], **json.loads(key[2])} for key in systems]
    varying = [k for k in sorted({k for d in described for k in d})
               if len({json.dumps(d.get(k), sort_keys=True) for d in described}) > 1]
    out = []
    for (method, model, settings), runs in systems.items():
        values = {"model": model, **json.loads(settings)}
        differs = ", ".join(f"{k}={values.get(k)}" for k in varying)
        tasks: dict[str, dict[str, Any]] = {}
        for task in TASKS:
            mine = [r for r in runs if r["task"] == task]
            if mine:
                tasks[task] = {"accuracy": float(np.mean([r["advglue_accuracy"] for r in mine])),
                               "n": len(mine), "runs": [r["run_id"] for r in mine]}
        missing = [t for t in TASKS if t not in tasks]
        out.append({"system": f"{method} ({differs})" if differs else method, "method": method, "model": model,
                    "settings": json.loads(settings), "tasks": tasks, "missing_tasks": missing,
                    "score": None if missing else float(np.mean([tasks[t]["accuracy"] for t in TASKS]))})
    present = sorted({r["task"] for r in counted}, key=TASKS.index)
    return {"tasks": list(TASKS), "tasks_present": present, "systems": sorted(out, key=lambda s: s["system"])}


def score_table(section: dict[str, Any]) -> list[dict[str, Any]]:
    """The systems as display records: each task's accuracy in points (with its runs), the score, what is missing."""
    def cell(task: dict[str, Any] | None) -> str:
        return "missing" if task is None else f"{100 * task['accuracy']:.1f} (n={task['n']})"

    return [{"system": s["system"], **{t: cell(s["tasks"].get(t)) for t in section["tasks"]},
             "AdvGLUE score": "–" if s["score"] is None else f"{100 * s['score']:.1f}",
             "missing tasks": ", ".join(s["missing_tasks"]) or "none"} for s in section["systems"]]
