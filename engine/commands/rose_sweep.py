"""`python -m engine rose-sweep --uppers 40,60,80 --lrs 2e-4,5e-5 --seeds 0,1,2`: ROSE's ensemble over a grid of
thresholds (and learning rates), one suite per grid point.

RobustLab's suites train ROSE at its own thresholds (upper 70 / 50 / 80 at the model's rate), not the official
README's SST-2 row; this sweeps the ensemble's `upper` (and `lower`, and the rate) so a report can show which
threshold does what on these runs. Each point is an ordinary suite (method rose-ensemble, the point's settings),
so finished runs are reused and `report --runs` or the Benchmark page ("Runs I choose") compares the points,
one row per setting with its thresholds. Without --detach the suites run here one after another.
"""
from __future__ import annotations

import argparse

from engine.cli import FlagError, ProgressBar, blaming, emit, run_foreground
from engine.commands.suite import SUMMARY_KEYS, add_budget_flags
from engine.user_text import seed_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rose-sweep", help="ROSE's ensemble over a grid of thresholds, one suite per point")
    p.add_argument("--uppers", default="40,60,70,80", help="comma-separated upper percentiles (0-100)")
    p.add_argument("--lowers", default="0", help="comma-separated lower percentiles (0-100; default 0, the README's)")
    p.add_argument("--lrs", default=None, help="comma-separated peak learning rates (default: the model's)")
    add_budget_flags(p)
    p.add_argument("--recipe", default="none", help="attack recipe for each model (default none: AdvGLUE only)")
    p.add_argument("--attack-n", type=int, default=100, help="attack the first N examples")
    p.add_argument("--detach", action="store_true", help="queue the suites and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rose_sweep)


def numbers(text: str, flag: str) -> list[float]:
    """A comma list of finite numbers, each once; a bad one is a FlagError naming the flag."""
    import math

    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise FlagError(f"{flag}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise FlagError(f"{flag}: {part!r} is not a finite number")
        if value in values:
            raise FlagError(f"{flag}: {value:g} given twice")
        values.append(value)
    if not values:
        raise FlagError(f"{flag}: give at least one number")
    return values


def sweep_specs(args: argparse.Namespace) -> list:
    """One checked SuiteSpec per (upper, lower, lr) point; anything refused is refused before a suite is queued
    (a threshold naming its flag)."""
    from engine.methods import make_method
    from engine.methods.base import SettingError
    from engine.suite.job import SuiteSpec, suite_config

    rates = [None] if args.lrs is None else numbers(args.lrs, "--lrs")
    uppers, lowers = numbers(args.uppers, "--uppers"), numbers(args.lowers, "--lowers")
    for flag, values, key in (("--uppers", uppers, "upper"), ("--lowers", lowers, "lower")):
        with blaming(flag, SettingError):
            for value in values:
                make_method("rose-ensemble", {key: value})
    specs = []
    for upper in uppers:
        for lower in lowers:
            for lr in rates:
                spec = SuiteSpec(methods=["rose-ensemble"], seeds=seed_list(args.seeds),
                                 train_size=None if args.train_size == -1 else args.train_size, epochs=args.epochs,
                                 model=args.model, dataset=args.dataset,
                                 recipe=None if args.recipe.lower() == "none" else args.recipe,
                                 attack_n=args.attack_n,
                                 train={"batch_size": args.batch_size, "lr": lr,
                                        "settings": {"upper": upper, "lower": lower}})
                suite_config(spec)     # SuiteError / ConfigError: a clear line, exit 2, nothing queued
                specs.append(spec)
    return specs


def cmd_rose_sweep(args: argparse.Namespace) -> int:
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.suite.job import suite_config

    specs = sweep_specs(args)
    store = RunStore()
    out, code = [], 0
    for spec in specs:
        point = {"upper": spec.train["settings"]["upper"], "lower": spec.train["settings"]["lower"],
                 "lr": spec.train_config("rose-ensemble", spec.seeds[0]).lr}
        if args.detach:
            run = jobs.submit(store, suite_config(spec), kind="suite")
            out.append({**point, "run_id": run.id, "status": "queued"})
            continue
        run = store.create(suite_config(spec), kind="suite")
        code = max(code, run_foreground(store, run, args.json, what="suite", bar=ProgressBar(value_format=None),
                                        shape=lambda r: {k: r.get(k) for k in SUMMARY_KEYS}))
        out.append({**point, **{k: run.results.get(k) for k in SUMMARY_KEYS}})
    runs = [r for point in out for r in point.get("train_runs") or []]
    emit({"points": out, "compare": "python -m engine report --runs " + ",".join(runs) if runs else
          "python -m engine report --runs <the suites' train runs>, once they finish"}, args.json)
    return code
