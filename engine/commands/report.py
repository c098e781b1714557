"""`python -m engine report --json`: the benchmark of a suite (the newest one unless --suite or --runs):
methods with mean and spread over seeds, and the seed papers' claims with a verdict each.

It reads stored evaluations and attacks only; --fill computes what is missing first
(engine.reporting.benchmark.fill_missing: evaluations in this process, attacks as jobs run here in turn).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="compare methods over seeds and judge the papers' claims")
    p.add_argument("--suite", help="suite run id (default: the newest suite)")
    p.add_argument("--runs", help="comma-separated train run ids instead of a suite")
    p.add_argument("--recipe", help="attack recipe to read (default: the suite's, else deepwordbug)")
    p.add_argument("--attack-dataset", help="default: the suite's, else sst2-dev")
    p.add_argument("--attack-n", type=int, help="default: the suite's, else 100")
    p.add_argument("--grid", help="recovery grid run id for the Healing Powers claim (default: the newest finished)")
    p.add_argument("--fill", action="store_true", help="compute missing evaluations and attacks first")
    p.add_argument("--format", choices=["json", "markdown", "csv"], default="json")
    p.add_argument("--out", help="write the report here instead of stdout")
    p.add_argument("--json", action="store_true", help="one JSON line (the same as --format json)")
    p.set_defaults(func=cmd_report)


def report_inputs(store, args: argparse.Namespace):
    """The run ids and attack spec a report covers: named runs, a named suite, or the newest suite."""
    from engine.reporting.benchmark import AttackSpec
    from engine.store.runs import RunError
    from engine.suite.job import SuiteSpec, list_suites, suite_train_runs

    suite_config: dict = {}
    if args.runs:
        run_ids = [r.strip() for r in args.runs.split(",") if r.strip()]
        if not run_ids:
            raise RunError("--runs names no runs")
    else:
        suite_id = args.suite or next((row["id"] for row in list_suites(store)), None)
        if suite_id is None:
            raise RunError(f"no suite in {store.home} yet: run `python -m engine suite --methods ... --seeds ...`, "
                           "or name runs with --runs")
        suite = store.get(suite_id)
        if suite.config.get("kind") != "suite":
            raise RunError(f"run {suite_id} is a {suite.config.get('kind')} run, not a suite")
        suite_config = suite.config
        run_ids = suite_train_runs(store, suite)
        print(f"suite {suite_id} ({suite.status.get('status')}): {len(run_ids)} runs", file=sys.stderr)
    default = AttackSpec()   # a suite's own attack, unless it had none
    if suite_config:
        spec = SuiteSpec.from_dict(suite_config)
        default = AttackSpec(spec.recipe, spec.attack_dataset, spec.attack_n) if spec.attacks() else AttackSpec("none")
    recipe = args.recipe or default.recipe
    if recipe == "none":
        return run_ids, None
    return run_ids, AttackSpec(recipe, args.attack_dataset or default.dataset,
                               default.n if args.attack_n is None else args.attack_n)


def cmd_report(args: argparse.Namespace) -> int:
    from engine.recovery.claims import find_grid
    from engine.reporting.benchmark import build_report, fill_missing, missing_work, run_rows
    from engine.reporting.export import claims_table, methods_table, to_csv, to_markdown
    from engine.store.runs import RunStore

    store = RunStore()
    if args.grid:
        find_grid(store, args.grid)   # an unknown --grid exits 2 before anything is computed
    run_ids, attack = report_inputs(store, args)
    if args.fill:
        fill_missing(store, missing_work(run_rows(store, run_ids, attack)), attack, background=False,
                     say=lambda line: print(line, file=sys.stderr))
    report = build_report(store, run_ids, attack, args.grid)
    if args.json or args.format == "json":
        text = json.dumps(report, default=str)
    elif args.format == "markdown":
        text = to_markdown(report)
    else:
        text = to_csv(methods_table(report)) + "\n" + to_csv(claims_table(report))
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"report written to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0
