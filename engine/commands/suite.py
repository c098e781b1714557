"""`python -m engine suite --methods vanilla,rose-ensemble --seeds 0,1,2 --train-size 2000 --epochs 2`.

Queues every (method, seed) as one suite job, then (unless --detach) waits for it with a progress bar.
Finished runs with the same config, and identical finished attacks, are reused unless --no-reuse.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.suite import SUITE_METHODS


def name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def seed_list(text: str) -> list[int]:
    try:
        return [int(part) for part in name_list(text)]
    except ValueError:
        raise ValueError(f"seeds are whole numbers separated by commas, like 0,1,2 (got {text!r})") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("suite", help="train, evaluate and attack several methods over several seeds")
    p.add_argument("--methods", default=",".join(SUITE_METHODS), help="comma-separated method names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--train-size", type=int, default=2000, help="-1 for the whole training set")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model", default="minilm")
    p.add_argument("--dataset", default="sst2")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--recipe", default="deepwordbug", help="attack recipe; `none` for no attacks")
    p.add_argument("--attack-dataset", default="sst2-dev")
    p.add_argument("--attack-n", type=int, default=100, help="attack the first N examples (0: no attacks)")
    p.add_argument("--no-reuse", action="store_true", help="train and attack again even when a run matches")
    p.add_argument("--detach", action="store_true", help="queue the suite and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_suite)


def cmd_suite(args: argparse.Namespace) -> int:
    from engine import jobs
    from engine.runs import RunStore
    from engine.suite import SuiteSpec, submit_suite, suite_config

    spec = SuiteSpec(methods=name_list(args.methods), seeds=seed_list(args.seeds),
                     train_size=None if args.train_size == -1 else args.train_size, epochs=args.epochs,
                     model=args.model, dataset=args.dataset, attack_dataset=args.attack_dataset,
                     recipe=None if args.recipe.lower() == "none" else args.recipe, attack_n=args.attack_n,
                     reuse=not args.no_reuse, train={"batch_size": args.batch_size, "lr": args.lr})
    store = RunStore()
    if args.detach:
        run = submit_suite(store, spec)
        print(json.dumps({"run_id": run.id, "status": "queued", "path": str(run.dir)}))
        return 0
    run = store.create(suite_config(spec), kind="suite")
    print(f"suite {run.id} in {run.dir}", file=sys.stderr)
    from tqdm import tqdm

    bar = tqdm(file=sys.stderr, unit="step", dynamic_ncols=True)

    def progress(step: int, total: int, _value: float) -> None:
        bar.total = total
        bar.update(step - bar.n)

    results = jobs.execute(store, run, jobs.StopFlag().install(), progress)
    bar.close()
    summary = {k: results.get(k) for k in ("run_id", "status", "n_items", "n_trained", "n_failed", "train_runs",
                                           "error")}
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    return 0 if results.get("status") in ("done", "cancelled") else 1
