"""Playground latency on a warm process: what a person waits for after pressing Enter or Attack.

For each of the first N SST-2 dev sentences (default 20), through the same engine calls the page makes:
  * prediction plus integrated gradients (32 steps) for the predicted class;
  * a live DeepWordBug attack (default budget: 2,000 queries, 30 % of words), including building the
    attack, with a progress callback as the page uses.
"Warm" means the model is loaded, TextAttack and Captum are imported and one sentence outside the
sample has gone through both paths; every sentence measured is new to the model's query cache.
Prints one JSON line: {"predict_ig_median_s":..., "attack_median_s":..., ...}: wall-clock medians and
90th percentiles, plus the process CPU time (all threads) of each, which a busy shared machine inflates
far less than wall-clock time; the 1-minute load average says how busy the machine was.

Usage: python benchmarks/playground_latency.py [--run RUN_ID] [--n 20] [--threads T]
The run is taken from ROBUSTLAB_HOME (default: the finished vanilla MiniLM run with the best dev accuracy).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pick_run(store, run_id: str | None):
    if run_id:
        return store.get(run_id)
    rows = [r for r in store.list(kind="train", status="done") if r["method"] == "vanilla" and r["model"] == "minilm"]
    if not rows:
        sys.exit(f"no finished vanilla MiniLM run in {store.home}; train one with `python -m engine train` "
                 f"or pass --run")
    return store.get(max(rows, key=lambda r: r["dev_accuracy"] or 0.0)["id"])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    from engine.paths import use_project_nltk_data

    use_project_nltk_data()
    import torch

    from engine.attacks.attacker import Attacker, Budget
    from engine.attacks.wrapper import import_textattack
    from engine.data.registry import load_dataset
    from engine.explain.attribution import IG_STEPS, explain
    from engine.models.device import describe, pick_device
    from engine.models.inference import LoadedModel
    from engine.store.runs import RunStore

    if args.threads:
        torch.set_num_threads(args.threads)
    import_textattack()
    run = pick_run(RunStore(), args.run)
    device = pick_device()
    loaded = LoadedModel.from_run(run.dir, device)
    data = load_dataset("sst2-dev")
    warm = data.texts[-1]
    loaded.probs([warm])
    explain(loaded, warm, "ig", steps=IG_STEPS)
    Attacker(loaded, "deepwordbug", Budget()).attack_text(warm)

    predict_ig, attack, statuses, queries = [], [], {}, []
    cpu = {"predict_ig": [], "attack": []}
    for text in data.texts[:args.n]:
        tick, tock = time.perf_counter(), time.process_time()
        probs = loaded.probs([text])[0]
        explain(loaded, text, "ig", target=int(probs.argmax()), steps=IG_STEPS)
        predict_ig.append(time.perf_counter() - tick)
        cpu["predict_ig"].append(time.process_time() - tock)

        seen = []
        tick, tock = time.perf_counter(), time.process_time()
        outcome = Attacker(loaded, "deepwordbug", Budget(), on_progress=seen.append).attack_text(text)
        attack.append(time.perf_counter() - tick)
        cpu["attack"].append(time.process_time() - tock)
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        queries.append(outcome.queries)

    print(json.dumps({"predict_ig_median_s": round(statistics.median(predict_ig), 3),
                      "predict_ig_p90_s": round(quantile(predict_ig, 0.9), 3),
                      "attack_median_s": round(statistics.median(attack), 3),
                      "attack_p90_s": round(quantile(attack, 0.9), 3),
                      "attack_median_queries": statistics.median(queries),
                      "predict_ig_cpu_median_s": round(statistics.median(cpu["predict_ig"]), 3),
                      "attack_cpu_median_s": round(statistics.median(cpu["attack"]), 3), "attack_outcomes": statuses,
                      "ig_steps": IG_STEPS, "n": len(predict_ig), "run_id": run.id, "device": describe(device),
                      "torch_threads": torch.get_num_threads(), "load_average_1min": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
