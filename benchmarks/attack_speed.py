"""Attack speed: RobustLab's TextAttack wrapper against TextAttack's stock `HuggingFaceModelWrapper`.

Runs DeepWordBug (TextAttack's own recipe, unchanged) on the first N SST-2 dev sentences (default 20)
against the same fine-tuned model through both wrappers in one process. With `--task rte` it attacks the first
N AdvGLUE-RTE sentence pairs instead, against a pair run, through TextAttack's multi-input text (both
wrappers read the (sentence1, sentence2) tuples; the second segment is attacked, the first kept fixed, as
RobustLab's own attacks do). The two are interleaved per
sentence so that a change in machine load hits both alike, and each sentence is attacked with the same
random seed through both. Prints one JSON line:
{"stock_seconds":..., "robustlab_seconds":..., "ratio":..., "identical_results": true|false, ...}
where identical means the same outcome, the same perturbed text and the same query count for every
sentence. Only attack time is counted (model loading and TextAttack's import are outside the clock).

Usage: python benchmarks/attack_speed.py [--task sst2|rte] [--run RUN_ID] [--n 20] [--recipe deepwordbug]
The run is taken from ROBUSTLAB_HOME (default: the newest finished vanilla MiniLM run of the task there).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


TASK_SETS = {"sst2": "sst2-dev", "rte": "advglue-rte"}   # what each task's attacks run on


def pick_run(store, run_id: str | None, task: str):
    from engine.models.inference import segment_names_for

    if run_id:
        return store.get(run_id)
    for row in store.list(kind="train", status="done"):
        pair = segment_names_for(store.home / row["id"]) is not None
        if row["method"] == "vanilla" and row["model"] == "minilm" and pair == (task != "sst2"):
            return store.get(row["id"])
    sys.exit(f"no finished vanilla MiniLM {task} run in {store.home}; train one with `python -m engine train` "
             f"or pass --run")


def attack_once(attack, given, label: int, seed: int) -> tuple[tuple[str, str, int], float]:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    tick = time.perf_counter()
    result = attack.attack(given, label)
    seconds = time.perf_counter() - tick
    final = result.perturbed_result
    return (type(result).__name__, final.attacked_text.text, int(final.num_queries)), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=sorted(TASK_SETS), default="sst2")
    parser.add_argument("--run", default=None)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--recipe", default="deepwordbug")
    args = parser.parse_args()

    from engine.paths import use_project_nltk_data

    use_project_nltk_data()
    import torch

    from engine.attacks.recipes import RECIPES
    from engine.attacks.segments import keep_other_segment_fixed, pair_text
    from engine.attacks.wrapper import FastModelWrapper, import_textattack
    from engine.data.registry import load_dataset
    from engine.models.inference import LoadedModel
    from engine.models.loading import load_trained
    from engine.store.runs import RunStore

    textattack = import_textattack()
    run = pick_run(RunStore(), args.run, args.task)
    model, tokenizer, method = load_trained(run.dir)
    data = load_dataset(TASK_SETS[args.task])
    texts, labels = data.inputs[:args.n], data.labels[:args.n]
    # Same truncation as the stock wrapper (the tokenizer's maximum, 512), so only padding and batching differ.
    loaded = LoadedModel(model, tokenizer, method, max_length=min(tokenizer.model_max_length, 512))
    stock = RECIPES[args.recipe].build(textattack.models.wrappers.HuggingFaceModelWrapper(model, tokenizer))
    ours = RECIPES[args.recipe].build(FastModelWrapper(loaded))
    if data.is_pair:
        for attack in (stock, ours):
            keep_other_segment_fixed(attack, data.segment_names, 1)
    warm = data.inputs[0]
    with torch.inference_mode():   # warm both paths once (first-call allocations), outside the clock
        stock.goal_function.model([warm])
        loaded.logits([(warm[0], warm[1] + " warm-up") if data.is_pair else warm + " warm-up"])

    stock_seconds = ours_seconds = 0.0
    same, outcomes, mismatches, queries = True, {}, [], 0
    def as_text(given):   # a pair is TextAttack's two-column text, a fresh one per attack
        return pair_text(given, data.segment_names) if data.is_pair else given

    for i, (text, label) in enumerate(zip(texts, labels)):
        a, sa = attack_once(stock, as_text(text), label, seed=i)
        b, sb = attack_once(ours, as_text(text), label, seed=i)
        stock_seconds += sa
        ours_seconds += sb
        outcomes[a[0]] = outcomes.get(a[0], 0) + 1
        queries += a[2]
        if a != b:
            same = False
            mismatches.append({"index": i, "stock": a, "robustlab": b})
    print(json.dumps({"stock_seconds": round(stock_seconds, 2), "robustlab_seconds": round(ours_seconds, 2),
                      "ratio": round(stock_seconds / max(ours_seconds, 1e-9), 2), "identical_results": same,
                      "n": len(texts), "task": args.task, "dataset": TASK_SETS[args.task], "recipe": args.recipe,
                      "run_id": run.id, "outcomes": outcomes,
                      "queries": queries, "mismatches": mismatches[:3],
                      "cache_hits": loaded.stats["cache_hits"], "torch_threads": torch.get_num_threads(),
                      "load_average_1min": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
