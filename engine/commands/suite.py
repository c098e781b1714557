"""`python -m engine suite --methods vanilla,rose-ensemble --seeds 0,1,2 --train-size 2000 --epochs 2`.

`--executor ray --address auto` runs each item as a task on a Ray cluster. Queues every (method, seed) as one
suite job, then (unless --detach) waits for it with a progress bar.
Finished runs with the same config, and identical finished attacks, are reused unless --no-reuse.
"""
from __future__ import annotations

import argparse

from engine.cli import ProgressBar, add_executor_flags, blaming, emit, executor_spec, run_foreground
from engine.training.config import default_lr_text
from engine.user_text import name_list, seed_list

SUMMARY_KEYS = ("run_id", "status", "n_items", "n_trained", "n_failed", "train_runs", "error")


def add_budget_flags(p: argparse.ArgumentParser) -> None:
    """The seeds, data and training budget every suite-making command takes (`suite`, `rose-sweep`)."""
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--train-size", type=int, default=2000, help="-1 for the whole training set")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model", default="minilm")
    p.add_argument("--dataset", default="sst2")
    p.add_argument("--batch-size", type=int, default=32)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("suite", help="train, evaluate and attack several methods over several seeds")
    p.add_argument("--methods", help="comma-separated method names (default: every registered method, "
                                     "see `python -m engine methods`)")
    add_budget_flags(p)
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default: the model's, {default_lr_text()})")
    p.add_argument("--recipe", default="deepwordbug", help="attack recipe; `none` for no attacks")
    p.add_argument("--attack-dataset", default=None, help="the set attacked (default: the dataset's dev set)")
    p.add_argument("--attack-n", type=int, default=100, help="attack the first N examples (0: no attacks)")
    p.add_argument("--behaviour", default=None, metavar="SUITE",
                   help="also run a behaviour suite on each trained model (sentiment, or a suite JSON file)")
    p.add_argument("--no-reuse", action="store_true", help="train and attack again even when a run matches")
    add_executor_flags(p)
    p.add_argument("--detach", action="store_true", help="queue the suite and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_suite)


def cmd_suite(args: argparse.Namespace) -> int:
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.suite.job import SuiteSpec, default_methods, suite_config

    methods = default_methods() if args.methods is None else name_list(args.methods)
    spec = SuiteSpec(methods=methods, seeds=seed_list(args.seeds),
                     train_size=None if args.train_size == -1 else args.train_size, epochs=args.epochs,
                     model=args.model, dataset=args.dataset, attack_dataset=args.attack_dataset,
                     recipe=None if args.recipe.lower() == "none" else args.recipe, attack_n=args.attack_n,
                     reuse=not args.no_reuse, behaviour=args.behaviour,
                     train={"batch_size": args.batch_size, "lr": args.lr})
    if args.behaviour:
        from engine.behaviour.spec import BehaviourSuiteError, load_behaviour_suite

        with blaming("--behaviour", BehaviourSuiteError):
            load_behaviour_suite(args.behaviour)
    config = suite_config(spec, executor_spec(args))
    store = RunStore()
    if args.detach:
        run = jobs.submit(store, config, kind="suite")
        emit({"run_id": run.id, "status": "queued", "path": str(run.dir)}, args.json)
        return 0
    return run_foreground(store, store.create(config, kind="suite"), args.json, what="suite",
                          bar=ProgressBar(value_format=None),
                          shape=lambda results: {k: results.get(k) for k in SUMMARY_KEYS})
