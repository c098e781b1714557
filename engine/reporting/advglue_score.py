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
from typing import Any

import numpy as np

from engine.data.advglue import TASKS


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
