"""Behaviour suite speed: the built-in sentiment suite on one trained run, end to end.

Loads the run's model, makes every case (templates and SST-2 dev perturbations), predicts each distinct text once
through `LoadedModel` (the batched, length-sorted, cached path the attacks use) and scores every test, all inside
the clock, in this process and without writing to the run store. Prints one JSON line:
{"run_id":..., "seconds":..., "n_cases":..., "n_texts":..., "cases_per_second":..., "threads":..., ...}

Usage: python benchmarks/behaviour_speed.py [--run RUN_ID] [--suite sentiment|FILE] [--seed 0]
The run is taken from ROBUSTLAB_HOME (default: the newest finished vanilla MiniLM run there).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pick_run(store, run_id: str | None):
    if run_id:
        return store.get(run_id)
    for row in store.list(kind="train", status="done"):
        if row["method"] == "vanilla" and row["model"] == "minilm":
            return store.get(row["id"])
    sys.exit(f"no finished vanilla MiniLM run in {store.home}; train one with `python -m engine train` "
             f"or pass --run")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None)
    parser.add_argument("--suite", default="sentiment")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from engine.behaviour.runner import evaluate_suite
    from engine.behaviour.spec import load_behaviour_suite
    from engine.models.device import pick_device
    from engine.models.inference import LoadedModel
    from engine.store.runs import RunStore

    store = RunStore()
    run = pick_run(store, args.run)
    suite = load_behaviour_suite(args.suite)
    tick = time.perf_counter()
    loaded = LoadedModel.from_run(run.dir, pick_device())
    loaded_at = time.perf_counter()
    summaries, rows = evaluate_suite(loaded, suite, args.seed, run.config)
    seconds = time.perf_counter() - tick
    print(json.dumps({"run_id": run.id, "model": run.config.get("model"), "suite": suite.name,
                      "n_tests": len(summaries), "n_cases": len(rows), "n_texts": loaded.stats["forward_texts"],
                      "seconds": round(seconds, 2), "load_seconds": round(loaded_at - tick, 2),
                      "cases_per_second": round(len(rows) / seconds, 1), "threads": torch.get_num_threads(),
                      "device": str(loaded.device)}))


if __name__ == "__main__":
    main()
