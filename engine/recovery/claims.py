"""The "Healing Powers of BERT" claim judged on one recovery grid, with the seed as the unit of replication.

Runs of the same seed share their training subset, their head initialisation and their clean baseline,
so the (level, seed) runs of a grid are not independent samples: one seed with three levels is one
observation, not three. Each part therefore first reduces a seed to one number and then tests the seeds:

- bottom-layer (and top-layer) corruption recovers less than the clean model: per seed, the mean
  chance-corrected recovery ratio over the levels k; one-sample t of those seed values against 1;
- bottom-layer corruption recovers less than top-layer: per seed, bottom mean minus top mean; paired t;
- more corrupted layers, lower recovery: per seed, the least-squares slope of the recovery ratio over k
  in each position, averaged over bottom and top (one pooled slope per seed: the paper states the trend
  for both positions, and pooling keeps one test instead of two); one-sample t against 0.

A seed counts only when its clean baseline finished and learned (dev accuracy at least 10 points above
chance) and, for a position, when every level of it finished; the row's statements name the seeds left out.

Every ratio is measured at the end of the grid's fine-tuning budget (2,000 examples x 2 epochs at batch 32 is
126 optimiser steps): "recovers less" means "has recovered less after that many steps", so it measures speed of
recovery as well as its end point. Each part's reason and the row's `budget_steps` say the budget; the Corruption
& recovery page offers longer ones (`engine.recovery.grid.BUDGETS`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine import stats
from engine.recovery.metrics import grid_rows
from engine.store.runs import Run, RunError, RunStore

KEY = "healing"
PAPER = "Healing Powers of BERT (Han, Zhang, Simion; arXiv 2024)"
CLAIM = ("Corrupted models do not fully recover, recovery falls as more layers are corrupted, and bottom-layer "
         "corruption hurts more than top-layer.")
PAPER_SAYS = "recovery below the clean model; lower with more corrupted layers; bottom layers worse than top layers"
POSITIONS = ("bottom", "top")
PARTS = {
    "bottom": "bottom-layer corruption: recovery ratio below 1",
    "top": "top-layer corruption: recovery ratio below 1",
    "bottom-top": "recovery ratio: bottom-layer corruption below top-layer",
    "slope": "more corrupted layers, lower recovery: slope of the recovery ratio over k below 0",
}


# ---------------------------------------------------------------- which grid

def find_grid(store: RunStore, grid_id: str | None) -> Run | None:
    """The named recovery grid (RunError when it is unknown or not a grid), or the newest finished one."""
    if grid_id is None:
        rows = store.list(kind="recover", status="done")
        return store.get(rows[0]["id"]) if rows else None
    try:
        grid = store.get(grid_id)
    except RunError:
        raise RunError(f"no recovery grid {grid_id} in {store.home}: list them with "
                       "`python -m engine runs list`") from None
    if grid.config.get("kind") != "recover":
        raise RunError(f"run {grid_id} is a {grid.config.get('kind', 'train')} run, not a recovery grid")
    return grid


def describe_grid(grid: Run, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What was judged: corruption kind, levels, seeds, positions, the training budget and each seed's clean
    dev accuracy."""
    config = grid.config
    kind = config.get("corruption_kind", "reinit")
    corruption = {"reinit": f"reinit ({config.get('init', 'kaiming-normal')} weights)",
                  "noise": f"noise (scale {config.get('scale')})",
                  "zero": f"zero (fraction {config.get('fraction')})"}.get(kind, kind)
    clean = {str(r["seed"]): r["final_accuracy"] for r in rows if r["position"] == "clean"}
    chances = {r["chance_accuracy"] for r in rows if r["chance_accuracy"] is not None}
    recorded = {r["total_steps"] for r in rows if r.get("total_steps")}
    steps = recorded.pop() if len(recorded) == 1 else None
    if steps is None and config.get("train_size") and config.get("batch_size") and config.get("epochs"):
        steps = math.ceil(config["train_size"] / config["batch_size"]) * config["epochs"]
    return {"id": grid.id, "status": grid.status.get("status"), "corruption": corruption,
            "levels": sorted(int(k) for k in config.get("levels", [])), "seeds": list(config.get("seeds", [])),
            "positions": list(config.get("positions", [])), "embeddings": bool(config.get("embeddings")),
            "train_size": config.get("train_size"), "epochs": config.get("epochs"), "lr": config.get("lr"),
            "batch_size": config.get("batch_size"), "model": config.get("model"), "clean_accuracy": clean,
            "steps": steps,
            "chance_accuracy": chances.pop() if len(chances) == 1 else None}


def grid_sentence(grid: dict[str, Any]) -> str:
    """The grid in one sentence, for the report and the page."""
    def listed(values: list) -> str:
        return ", ".join(map(str, values)) or "none"

    size = "all" if grid["train_size"] is None else f"{grid['train_size']:,}"
    return (f"Recovery grid {grid['id']} ({grid['status']}): {grid['corruption']} corruption of "
            f"{' and '.join(grid['positions'])} layers, k = {listed(grid['levels'])}"
            f"{' plus the embeddings' if grid['embeddings'] else ''}; seeds {listed(grid['seeds'])}; budget: "
            f"{grid['model']}, {size} training examples x {grid['epochs']} epoch(s) at learning rate "
            f"{grid['lr']:g}, batch {grid['batch_size']}{steps_text(grid.get('steps'))}.")


def steps_text(steps: int | None) -> str:
    return f" = {steps:,} optimiser steps per run" if steps else ""


def budget_note(steps: int | None) -> str:
    """What a recovery verdict means at this budget, in words."""
    after = f"after {steps:,} fine-tuning steps" if steps else "at the end of the grid's fine-tuning budget"
    return (f"measured {after}: 'does not fully recover' here means 'has not recovered within this budget', so it "
            "measures speed of recovery as well as where recovery ends; a longer budget may recover more")


# ---------------------------------------------------------------- per-seed numbers

def usable_seeds(rows: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
    """Seeds whose clean baseline finished and learned, and a statement for each seed left out."""
    keep, notes = [], []
    for row in rows:
        if row["position"] != "clean":
            continue
        seed = row["seed"]
        if row["status"] != "done":
            notes.append(f"Seed {seed} is left out: its clean baseline {row['status']} (run {row['run_id']}), so "
                         "there is nothing to measure recovery against.")
        elif not row["learned"]:
            chance = "unknown" if row["chance_accuracy"] is None else f"{row['chance_accuracy']:.3f}"
            notes.append(f"Seed {seed} is left out: its clean baseline reached dev {row['final_accuracy']:.3f}, "
                         f"within 10 points of chance ({chance}): it did not learn the task in this budget, so "
                         "its recovery ratios mean nothing.")
        else:
            keep.append(seed)
    return keep, notes


def per_seed_recovery(rows: list[dict[str, Any]], seeds: list[int],
                      levels: list[int]) -> tuple[dict[str, dict[int, list[float]]], list[str]]:
    """{position: {seed: recovery ratio at each level, in level order}} for the seeds with every level of
    that position finished, and a statement per (position, seed) left out for a missing level."""
    ratio = {(r["position"], r["layers"], r["seed"]): r["recovery_ratio"] for r in rows
             if r["status"] == "done" and r["position"] in POSITIONS and r["recovery_ratio"] is not None}
    present = {r["position"] for r in rows if r["position"] in POSITIONS}
    out: dict[str, dict[int, list[float]]] = {p: {} for p in POSITIONS}
    notes = []
    for position in POSITIONS:
        if position not in present:
            continue
        for seed in seeds:
            values = [ratio.get((position, k, seed)) for k in levels]
            if None in values:
                missing = [k for k, v in zip(levels, values) if v is None]
                notes.append(f"Seed {seed} is left out of {position}: k = {', '.join(map(str, missing))} did not "
                             "finish, and a mean over fewer levels would not compare with the other seeds.")
            else:
                out[position][seed] = values
    return out, notes


def slope(levels: list[int], values: list[float]) -> float:
    """Least-squares slope of `values` over `levels`: change in recovery per extra corrupted layer."""
    return float(np.polyfit(np.asarray(levels, dtype=float), np.asarray(values, dtype=float), 1)[0])


def seed_slopes(recovery: dict[str, dict[int, list[float]]], levels: list[int]) -> dict[int, float]:
    """Per seed, the slope over k averaged over the positions it has (seeds with every position measured)."""
    positions = [p for p in POSITIONS if recovery[p]]
    seeds = set.intersection(*(set(recovery[p]) for p in positions)) if positions else set()
    return {s: float(np.mean([slope(levels, recovery[p][s]) for p in positions])) for s in sorted(seeds)}


# ---------------------------------------------------------------- parts and the claim

def _empty_part(key: str, metric: str, group: str, baseline: str | float, reason: str) -> dict[str, Any]:
    return {"text": PARTS[key], "metric": metric, "group": group, "baseline": baseline, "below": True,
            "test": "superiority", "margin": None, "kind": "none", "mean_a": None, "mean_b": None, "n_a": 0,
            "n_b": 0, "diff": None, "ci_low": None, "ci_high": None, "verdict": "inconclusive", "reason": reason,
            "seeds_needed": None, "seeds_over": None, "seeds_text": "", "sd": None}


def _part(key: str, metric: str, group: str, baseline: str | float, iv: stats.Interval, mean_a: float | None,
          mean_b: float | None, unit: str, steps: int | None = None) -> dict[str, Any]:
    """A claim part from its interval ("a below b" is the claim): verdict, reason (with the budget it was
    measured at), and for an open part the seeds that would settle it and what that figure assumes."""
    verdict, reason = stats.verdict(iv, higher_is_better=False)
    plan = stats.seeds_plan(iv, iv.diff, what="difference") if verdict == "inconclusive" and iv.diff else None
    needed = stats.seeds_needed_for(iv) if verdict == "inconclusive" else None
    text = ""
    if plan is not None:
        text = (f"About {plan.seeds} seeds would likely settle it (power 0.8), {plan.assumes}." if plan.seeds
                else plan.why[0].upper() + plan.why[1:] + ".")
    return {**_empty_part(key, metric, group, baseline, ""), "kind": iv.kind, "mean_a": mean_a, "mean_b": mean_b,
            "n_a": iv.n_a, "n_b": iv.n_b, "diff": iv.diff, "ci_low": iv.low, "ci_high": iv.high,
            "verdict": verdict, "reason": f"{reason}; {budget_note(steps)}; the seed is the unit: {unit}; {iv.note}",
            "seeds_needed": needed if needed else (plan.seeds if plan else None),
            "seeds_over": plan.over if plan else None, "seeds_text": text, "sd": iv.sd}


def healing_parts(recovery: dict[str, dict[int, list[float]]], levels: list[int],
                  steps: int | None = None) -> list[dict[str, Any]]:
    """The four parts of the claim from per-seed recovery ratios (see the module docstring), measured after
    `steps` fine-tuning steps."""
    seed_mean = {p: {s: float(np.mean(v)) for s, v in recovery[p].items()} for p in POSITIONS}
    parts = []
    for position in POSITIONS:
        values = list(seed_mean[position].values())
        if not values:
            parts.append(_empty_part(position, "recovery_ratio", position, 1.0,
                                     f"no seed with every {position}-layer level finished"))
            continue
        parts.append(_part(position, "recovery_ratio", position, 1.0, stats.welch(values, 1.0),
                           float(np.mean(values)), 1.0, f"{len(values)} seed(s), each averaged over k", steps))
    paired = sorted(set(seed_mean["bottom"]) & set(seed_mean["top"]))
    if paired:
        bottom = [seed_mean["bottom"][s] for s in paired]
        top = [seed_mean["top"][s] for s in paired]
        parts.append(_part("bottom-top", "recovery_ratio", "bottom", "top",
                           stats.paired_t([b - t for b, t in zip(bottom, top)]), float(np.mean(bottom)),
                           float(np.mean(top)), f"bottom minus top within each of {len(paired)} seed(s)", steps))
    else:
        parts.append(_empty_part("bottom-top", "recovery_ratio", "bottom", "top",
                                 "needs seeds with both every bottom and every top level finished"))
    slopes = seed_slopes(recovery, levels) if len(levels) > 1 else {}
    if len(levels) < 2:
        parts.append(_empty_part("slope", "recovery_slope", "slope per corrupted layer", 0.0,
                                 "the grid has one level k; a slope needs at least two"))
    elif not slopes:
        parts.append(_empty_part("slope", "recovery_slope", "slope per corrupted layer", 0.0,
                                 "no seed with every level finished"))
    else:
        values = list(slopes.values())
        parts.append(_part("slope", "recovery_slope", "slope per corrupted layer", 0.0, stats.welch(values, 0.0),
                           float(np.mean(values)), 0.0,
                           f"one least-squares slope over k per seed and position, averaged over the positions, "
                           f"{len(values)} seed(s)", steps))
    return parts


def combine(verdicts: list[str]) -> str:
    """Supported only if every part is; not supported if any part is not; else inconclusive."""
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    return "not supported" if "not supported" in verdicts else "inconclusive"


def _row(parts: list[dict[str, Any]], statements: list[str], grid: dict[str, Any] | None) -> dict[str, Any]:
    steps = (grid or {}).get("steps")
    return {"key": KEY, "paper": PAPER, "claim": CLAIM, "paper_says": PAPER_SAYS,
            "verdict": combine([p["verdict"] for p in parts]), "parts": parts, "source": "recovery",
            "statements": statements, "grid": grid, "budget_steps": steps,
            "verdict_budget": f"{combine([p['verdict'] for p in parts])} after {steps:,} fine-tuning steps per run"
            if steps else None}


def _refused(reason: str, statements: list[str], grid: dict[str, Any] | None) -> dict[str, Any]:
    """Every part inconclusive with `reason`: the data cannot carry a verdict."""
    parts = [_empty_part("bottom", "recovery_ratio", "bottom", 1.0, reason),
             _empty_part("top", "recovery_ratio", "top", 1.0, reason),
             _empty_part("bottom-top", "recovery_ratio", "bottom", "top", reason),
             _empty_part("slope", "recovery_slope", "slope per corrupted layer", 0.0, reason)]
    return _row(parts, statements, grid)


def judge_grid(grid: Run, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The claim row for one grid from its cell rows (`engine.recovery.metrics.grid_rows`)."""
    described = describe_grid(grid, rows)
    statements = [grid_sentence(described)]
    status = described["status"]
    if status != "done":
        finished = sum(r["status"] == "done" for r in rows)
        statements.append(f"The grid is {status}: judged on the {finished} of {len(grid.config.get('cells', []))} "
                          "runs finished so far.")
    seeds, notes = usable_seeds(rows)
    statements += notes
    if not any(r["position"] == "clean" for r in rows):
        return _refused("no clean baseline has run yet", statements, described)
    if not seeds:
        statements.append("No verdict: no seed has a clean baseline that finished and learned, so no recovery "
                          "ratio of this grid means anything. Give the grid a budget its clean model learns in.")
        return _refused("no clean baseline finished and learned", statements, described)
    levels = described["levels"]
    recovery, notes = per_seed_recovery(rows, seeds, levels)
    statements += notes
    statements.append(f"The seed is the unit: each seed's recovery ratios are averaged over k = "
                      f"{', '.join(map(str, levels))} before testing ({len(seeds)} usable seed(s); at least 3 are "
                      "needed for a verdict).")
    statements.append(f"Budget: {budget_note(described['steps']).capitalize()}.")
    return _row(healing_parts(recovery, levels, described["steps"]), statements, described)


def judge_healing(store: RunStore, grid_id: str | None) -> dict[str, Any]:
    """The Healing Powers claim row judged on grid `grid_id` (None: the newest finished grid, and the row says
    so), with "grid" describing the grid judged. An unknown id or a run that is not a grid raises RunError."""
    grid = find_grid(store, grid_id)
    if grid is None:
        reason = "no finished recovery grid: run one on the Corruption & recovery page"
        return _refused(reason, [f"No verdict: {reason}."], None)
    row = judge_grid(grid, grid_rows(store, grid))
    if grid_id is None:
        row["statements"].insert(0, f"Judged on the newest finished recovery grid, {grid.id} (report --grid ID "
                                    "picks another).")
    return row
