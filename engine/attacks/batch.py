"""Batch attacks, the `attack` job kind: attack the first n examples of a dataset with one recipe and budget
(a sentence-pair model's pairs on one segment, `first` or `second`, the other kept as it is).

An attack run's config names its target run; a finished attack with the same settings is reused
(`engine.execution.kinds.find_done`). Per-example records go to results.jsonl as they are made, results.csv at the end.
"""
from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.attacks.attacker import Attacker, AttackOutcome, Budget, summarize
from engine.attacks.recipes import AttackError, get_recipe
from engine.attacks.segments import check_shape
from engine.limits import MAX_ATTACK_EXAMPLES, MAX_SEED, number_text
from engine.models.device import pick_device
from engine.models.inference import LoadedModel
from engine.store.runs import RunStore, read_jsonl
from engine.training.evaluate import eval_set


def batch_config(target: str, recipe: str, dataset: str, n: int, budget: Budget, seed: int = 0,
                 segment: str | None = None) -> dict[str, Any]:
    """The config of an attack run (kind "attack", parent = the target run). `segment` is the pair segment
    attacked, `first` or `second` (None for a single-sentence model: `engine.attacks.segments.chosen_segment`)."""
    if not 1 <= n <= MAX_ATTACK_EXAMPLES:
        raise AttackError(f"attack at least 1 example (got n={n})" if n < 1 else
                          f"attack at most {MAX_ATTACK_EXAMPLES:,} examples (got n={number_text(n)})")
    if not 0 <= seed <= MAX_SEED:
        raise AttackError(f"the seed must be a whole number in 0..{MAX_SEED:,} (got {number_text(seed)})")
    budget.check()
    get_recipe(recipe)
    return {"target": target, "recipe": recipe, "dataset": dataset, "n": int(n), "max_queries": budget.max_queries,
            "max_fraction": budget.max_fraction, "seed": seed, "segment": segment, "method": f"attack-{recipe}"}


CONFIG_KEYS = ("target", "recipe", "dataset", "n", "max_queries", "max_fraction", "seed", "segment")


def read_results(run) -> list[dict[str, Any]]:
    """The per-example records of an attack run, in order."""
    return read_jsonl(run.dir / "results.jsonl")


def run_job(run, should_stop: Callable[[], bool], progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """The `attack` job kind: attack the first n examples of a dataset (an evaluation set: a registry name,
    csv:PATH, or `heldout`, the dev split held out of the target's own CSV) with one recipe and budget.

    Each example's record is appended to results.jsonl as soon as it is done; results.csv is written at
    the end (also after a cancel), and the summary becomes results.json.
    """
    config = run.config
    store = RunStore(run.dir.parent)
    target = store.get(config["target"])
    budget = Budget(config.get("max_queries"), config.get("max_fraction"))
    loaded = LoadedModel.from_run(target.dir, pick_device())
    data = eval_set(target.config, config["dataset"], loaded.label_names)   # `heldout`: its CSV's dev split
    check_shape(config["dataset"], data.is_pair, loaded.segment_names)
    n = min(int(config["n"]), len(data))
    inputs = data.inputs
    attacker = Attacker(loaded, config["recipe"], budget, should_stop=should_stop, seed=int(config.get("seed", 0)),
                        segment=config.get("segment"))
    where = "" if attacker.segment is None else f" on their {loaded.segment_names[attacker.segment]}"
    run.log(f"attacking {n} examples of {config['dataset']}{where} with {config['recipe']} against {target.id}; "
            f"budget {budget}")
    run.set_status(total_steps=n, step=0)
    jsonl = run.dir / "results.jsonl"
    outcomes: list[AttackOutcome] = []
    started = time.time()
    for i in range(n):
        if should_stop():
            break
        outcome = attacker.attack_text(inputs[i], data.labels[i], index=i)
        if outcome.status == "cancelled":
            break
        outcomes.append(outcome)
        with open(jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(outcome.row(loaded.label_names), ensure_ascii=False) + "\n")
        so_far = summarize(outcomes)
        run.set_status(step=i + 1, success_rate=so_far["success_rate"], avg_queries=so_far["avg_queries"])
        if progress:
            progress(i + 1, n, so_far["success_rate"])
    cancelled = len(outcomes) < n
    csv_path = run.dir / "results.csv"
    write_csv(csv_path, [o.row(loaded.label_names) for o in outcomes])
    summary = summarize(outcomes)
    run.log(f"{'cancelled' if cancelled else 'done'}: {len(outcomes)}/{n} examples, success rate "
            f"{summary['success_rate']:.3f}, accuracy under attack {summary['accuracy_under_attack']:.3f}")
    return {**summary, "status": "cancelled" if cancelled else "done", "target": target.id,
            "recipe": config["recipe"], "dataset": config["dataset"], "n_requested": n,
            "segment": config.get("segment"),
            "results_path": str(csv_path), "jsonl_path": str(jsonl), "seconds": round(time.time() - started, 2)}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV, written to a temporary name first (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields or ["index"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
