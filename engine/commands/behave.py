"""`python -m engine behave RUN_ID [--suite sentiment|FILE] [--seed N] [--json]`: behavioural tests on a run.

With `--runs ID,ID` it tests several runs and compares them: per test and per capability, each run's failure
rate and each method's mean ± std over its runs. A finished behaviour run with the same suite content and seed is
reused unless --force. With --json the last line is one JSON object.
"""
from __future__ import annotations

import argparse
from typing import Any

from engine.cli import FlagError, ProgressBar, blaming, emit, run_foreground
from engine.user_text import name_list

TEST_KEYS = ("name", "capability", "kind", "n_cases", "n_counted", "n_failed", "failure_rate", "interval", "rule",
             "n_counted_correct_originals", "failure_rate_correct_originals", "constant", "no_better_than_constant",
             "former_failure_rate", "missing")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("behave", help="behavioural tests (MFT/INV/DIR) of trained runs, CheckList-style")
    p.add_argument("run_id", nargs="?", help="the trained run to test")
    p.add_argument("--runs", help="comma-separated trained runs to test and compare (instead of RUN_ID)")
    p.add_argument("--suite", default="sentiment", help="a built-in suite (sentiment) or a suite JSON file")
    p.add_argument("--seed", type=int, default=0, help="the seed the cases are drawn with")
    p.add_argument("--force", action="store_true", help="run again even if this exact result is stored")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_behave)


def _targets(args: argparse.Namespace) -> list[str]:
    if (args.run_id is None) == (args.runs is None):
        raise FlagError("--runs: give one RUN_ID or --runs ID,ID, not both or neither")
    if args.runs is None:
        return [args.run_id]
    with blaming("--runs", ValueError):
        ids = name_list(args.runs)
        if not ids:
            raise ValueError("name at least one run")
    return list(dict.fromkeys(ids))


def _checked(args: argparse.Namespace, store) -> list[dict[str, Any]]:
    """Each target's behaviour config, with the suite read and its cases made for each model before any run
    exists (a refused suite is a FlagError naming --suite)."""
    from engine.behaviour.runner import behaviour_config, run_cases
    from engine.behaviour.spec import BehaviourSuiteError, load_behaviour_suite
    from engine.limits import MAX_SEED, number_text
    from engine.store.runs import RunError

    if not 0 <= args.seed <= MAX_SEED:
        raise FlagError(f"--seed: must be a whole number in 0..{MAX_SEED:,} (got {number_text(args.seed)})")
    with blaming("--suite", BehaviourSuiteError):
        suite = load_behaviour_suite(args.suite)
    configs = []
    for run_id in _targets(args):
        with blaming("--runs" if args.runs else "run_id", RunError):
            target = store.get(run_id)
            if target.config.get("kind", "train") != "train" or not target.has_model():
                raise RunError(f"run {run_id} has no trained model to test (kind {target.config.get('kind')}, "
                               f"status {target.status.get('status')})")
        with blaming("--suite", BehaviourSuiteError):
            run_cases(suite, args.seed, target)
        configs.append(behaviour_config(target.id, suite, args.seed))
    return configs


def _shape(results: dict[str, Any], target: str, cached: bool, learning: dict[str, Any]) -> dict[str, Any]:
    """The printed result; `learned` and `learning` say whether the model learned at all, since a model that answers
    one class passes every INV test."""
    return {"run_id": target, "learned": learning["learned"], "learning": learning["reason"],
            "behaviour_run": results.get("run_id"), "suite": results.get("suite"),
            "status": results.get("status"), "cached": cached, "seed": results.get("seed"),
            "seconds": results.get("seconds"), "tests": [{k: t.get(k) for k in TEST_KEYS if k in t}
                                                         for t in results.get("tests", [])],
            **({"error": results["error"]} if results.get("error") else {})}


def cmd_behave(args: argparse.Namespace) -> int:
    from engine.behaviour.runner import current_results
    from engine.execution.kinds import find_done
    from engine.store.runs import RunStore
    from engine.training.evaluate import learning_status

    store = RunStore()
    configs = _checked(args, store)
    if args.runs is None:
        config = configs[0]
        learning = learning_status(store.get(config["target"]))
        cached = None if args.force else find_done(store, "behaviour", config)
        if cached is not None:
            emit(_shape({**current_results(cached), "run_id": cached.id}, config["target"], True, learning),
                 args.json)
            return 0
        run = store.create(config, kind="behaviour", parent=config["target"])
        return run_foreground(store, run, args.json, what="behaviour run",
                              bar=ProgressBar(unit="text", value_format=None),
                              shape=lambda results: _shape(results, config["target"], False, learning))
    return _compare(store, configs, args)


def _compare(store, configs: list[dict[str, Any]], args: argparse.Namespace) -> int:
    """Test each run (or reuse its stored result), then print the comparison."""
    import sys

    from engine.behaviour.compare import compare_runs, not_learned
    from engine.behaviour.runner import current_results
    from engine.execution import jobs
    from engine.execution.kinds import find_done

    results, methods = {}, {}
    for config in configs:
        run = None if args.force else find_done(store, "behaviour", config)
        if run is None:
            run = store.create(config, kind="behaviour", parent=config["target"])
            print(f"behaviour run {run.id} on {config['target']}", file=sys.stderr)
            bar = ProgressBar(unit="text", value_format=None)
            try:
                outcome = jobs.execute(store, run, jobs.StopFlag().install(), bar)
            finally:
                bar.close()
            if outcome.get("status") != "done":
                emit({"run_id": config["target"], "behaviour_run": run.id, "status": outcome.get("status"),
                      "error": outcome.get("error")}, args.json)
                return 0 if outcome.get("status") == "cancelled" else 1
        results[config["target"]] = current_results(run)
        methods[config["target"]] = store.get(config["target"]).config.get("method", "?")
    emit(compare_runs(results, methods, not_learned(store, list(results))), args.json)
    return 0
