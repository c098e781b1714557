"""Recovery metrics of each cell run, read from its dev-accuracy curve, and their means over seeds.

A cell's numbers compare it with the clean baseline of the same seed: the chance-corrected recovery ratio
(acc - chance) / (clean - chance), where chance is the majority-class rate of the dev set, so a model that
learned nothing reads 0 rather than "66 % recovered"; the area under its curve; and the first step at 95 %
of clean accuracy. Raw accuracies stay in every row beside the ratio.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.data.advglue import results_accuracy
from engine.data.splits import task_of
from engine.store.runs import Run, RunStore
from engine.training.evaluate import (
    dev_chance,  # lazily: it loads torch, needed only for runs without a stored chance
)

TARGET_SHARE = 0.95       # "steps to 95 %": the first evaluation at >= 95 % of clean accuracy
LEARNED_MARGIN = 0.10     # a clean baseline learned when its dev accuracy is at least this far above chance


def chance_corrected_ratio(accuracy: float | None, clean: float | None, chance: float | None) -> float | None:
    """(accuracy - chance) / (clean - chance): 1 = as good as the clean model, 0 = no better than always
    answering the majority class. None when a number is missing or the clean model is not above chance
    (then there is nothing to recover and the ratio would divide by zero or flip sign)."""
    if accuracy is None or clean is None or chance is None or clean <= chance:
        return None
    return (accuracy - chance) / (clean - chance)


def dev_curve(run: Run) -> tuple[list[int], list[float]]:
    """Dev accuracy at each evaluation recorded while the run trained (step-sorted)."""
    points = {int(r["step"]): float(r["value"]) for r in run.metrics()
              if r.get("split") == "dev" and r.get("name") == "accuracy"}
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def area_under_curve(steps: list[int], values: list[float]) -> float | None:
    """Trapezoid area under accuracy-vs-step, divided by the steps it spans: the mean accuracy along the run."""
    if not steps:
        return None
    if len(steps) == 1:
        return float(values[0])
    return float(np.trapezoid(values, steps) / (steps[-1] - steps[0]))


def steps_to_reach(steps: list[int], values: list[float], target: float | None) -> int | None:
    """The first evaluated step whose accuracy is at least `target`; None if it never gets there."""
    if target is None:
        return None
    return next((s for s, v in zip(steps, values) if v >= target), None)


def _row(child: Run, clean_final: dict[int, dict]) -> dict[str, Any]:
    config, results, status = child.config, child.results, child.status
    cell = config.get("recovery", {})
    steps, values = dev_curve(child)
    done = status.get("status") == "done"
    final = results.get("dev_accuracy") if done else None
    chance = dev_chance(child) if done else None
    seed = config.get("seed")
    base = clean_final.get(seed, {})
    clean_acc = base.get("dev_accuracy")
    target = TARGET_SHARE * clean_acc if clean_acc is not None else None
    learned = final >= chance + LEARNED_MARGIN if final is not None and chance is not None else None
    return {"run_id": child.id, "label": cell.get("label"), "position": cell.get("position"),
            "layers": cell.get("k"), "layer_set": cell.get("layers"), "embeddings": cell.get("embeddings"),
            "kind": (config.get("corruption") or {}).get("kind", "none"), "seed": seed,
            "status": status.get("status"), "steps": status.get("step"), "total_steps": status.get("total_steps"),
            "final_accuracy": final, "clean_accuracy": clean_acc, "chance_accuracy": chance, "learned": learned,
            "recovery_ratio": chance_corrected_ratio(final, clean_acc, chance),
            "auc": area_under_curve(steps, values) if done else None,
            "steps_to_95": steps_to_reach(steps, values, target) if done else None,
            # the grid's task's AdvGLUE accuracy (an old results.json's advglue_sst2_accuracy reads as SST-2's)
            "advglue_accuracy": results_accuracy(results, task_of(config)) if done else None,
            "clean_advglue_accuracy": results_accuracy(base, task_of(config)),
            "index": cell.get("index")}


def children(store: RunStore, grid: Run) -> list[Run]:
    """The grid's cell runs in the order they ran."""
    runs = [store.get(r["id"]) for r in store.list(parent=grid.id)]
    return sorted(runs, key=lambda r: r.config.get("recovery", {}).get("index", 0))


def grid_rows(store: RunStore, grid: Run) -> list[dict[str, Any]]:
    """One row per cell run that exists so far (clean baselines included), with its recovery metrics."""
    runs = children(store, grid)
    clean_final = {r.config.get("seed"): r.results for r in runs
                   if r.config.get("recovery", {}).get("position") == "clean" and r.status.get("status") == "done"}
    return [_row(r, clean_final) for r in runs]


def clean_baselines(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The clean baseline of each seed: run id, dev accuracy (with its chance level and whether it learned)
    and AdvGLUE accuracy."""
    return {str(r["seed"]): {"run_id": r["run_id"], "final_accuracy": r["final_accuracy"],
                             "chance_accuracy": r["chance_accuracy"], "learned": r["learned"],
                             "advglue_accuracy": r["advglue_accuracy"], "status": r["status"]}
            for r in rows if r["position"] == "clean"}


SUMMARY_METRICS = ("final_accuracy", "recovery_ratio", "auc", "steps_to_95", "advglue_accuracy")


def summarise_by_label(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation over seeds of each metric, per cell label (finished runs only).

    `steps_to_95` is averaged over the seeds that reached 95 %; `reached_95` counts them.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["status"] == "done":
            groups.setdefault(row["label"], []).append(row)
    out = []
    for label, members in groups.items():
        first = members[0]
        entry: dict[str, Any] = {"label": label, "position": first["position"], "layers": first["layers"],
                                 "embeddings": first["embeddings"], "seeds": len(members)}
        for metric in SUMMARY_METRICS:
            values = [m[metric] for m in members if m[metric] is not None]
            entry[f"{metric}_mean"] = float(np.mean(values)) if values else None
            entry[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        entry["reached_95"] = sum(m["steps_to_95"] is not None for m in members)
        out.append(entry)
    return out

