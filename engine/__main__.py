"""The command line: `python -m engine COMMAND ...`. Everything a page shows can be produced here.

With --json a command's last stdout line is one JSON object; errors go to stderr with exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.paths import use_project_nltk_data

use_project_nltk_data()


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(json.dumps(data, indent=2, default=str))


def parse_sets(values: list[str]) -> dict[str, str]:
    """`--set key=value` pairs."""
    out = {}
    for item in values:
        if "=" not in item:
            raise ValueError(f"--set takes key=value (got {item!r})")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from engine import jobs
    from engine.runs import RunStore
    from engine.train import TrainConfig, environment, preflight

    config = TrainConfig(dataset=args.dataset, model=args.model, method=args.method, settings=parse_sets(args.set),
                         train_size=None if args.train_size == -1 else args.train_size, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed, max_length=args.max_length,
                         eval_every=args.eval_every, device=args.device)
    preflight(config)
    store = RunStore()
    payload = {**config.to_dict(), "environment": environment()}
    if args.detach:
        run = jobs.submit(store, payload)
        emit({"run_id": run.id, "status": "queued", "path": str(run.dir)}, args.json)
        return 0
    run = store.create(payload)
    print(f"run {run.id} in {run.dir}", file=sys.stderr)
    bar = _progress_bar()
    results = jobs.execute(store, run, jobs.StopFlag().install(), bar)
    bar.close()
    emit(results, args.json)
    return 0 if results.get("status") in ("done", "cancelled") else 1


class _progress_bar:
    """A tqdm bar on stderr, so --json keeps stdout clean."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, step: int, total: int, loss: float) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.evaluate import evaluate_run
    from engine.runs import RunStore

    sets = [s for s in args.sets.split(",") if s]
    results = evaluate_run(RunStore(), args.run_id, sets, force=args.force)
    emit({"run_id": args.run_id, "results": {k: {"accuracy": v["accuracy"], "n": v["n"]}
                                             for k, v in results.items()}}, args.json)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.runs import RunStore

    store = RunStore()
    if args.action == "list":
        rows = store.list()
        if args.json:
            emit(rows, True)
        else:
            for r in rows:
                acc = "" if r["dev_accuracy"] is None else f"dev {r['dev_accuracy']:.4f}"
                print(f"{r['id']:40s} {r['status']:10s} {r['method'] or r['kind']:14s} {acc}")
        return 0
    if not args.run_id:
        raise ValueError(f"`runs {args.action}` needs a RUN_ID")
    if args.action == "show":
        run = store.get(args.run_id)
        emit({"run_id": run.id, "path": str(run.dir), "config": run.config, "status": run.status,
              "results": run.results, "artifacts": run.artifact_names(), "has_model": run.has_model()}, args.json)
    elif args.action == "export":
        out = store.export_zip(args.run_id, args.out or f"{args.run_id}.zip")
        emit({"run_id": args.run_id, "zip": str(out)}, args.json)
    elif args.action == "delete":
        store.delete(args.run_id)
        emit({"run_id": args.run_id, "deleted": True}, args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from engine import jobs
    from engine.runs import RunStore

    emit({"run_id": args.run_id, "status": jobs.cancel(RunStore(), args.run_id)}, args.json)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from engine.methods import registry

    emit({name: {"title": cls.title, "summary": cls.summary_line,
                 "settings": {s.name: {"default": s.default, "range": s.range_text(), "help": s.help}
                              for s in cls.settings_spec}}
          for name, cls in registry().items()}, args.json)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.jobs import worker_main

    return worker_main(args.run_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="RobustLab engine")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="fine-tune a classifier (foreground, with a progress bar)")
    p.add_argument("--dataset", default="sst2", help="sst2, or csv:PATH")
    p.add_argument("--model", default="minilm", help="minilm, tiny, a local folder or a hub id")
    p.add_argument("--method", default="vanilla")
    p.add_argument("--train-size", type=int, default=2000, help="-1 for the whole training set")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=0, help="steps between dev evaluations (0: four per run)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a method setting")
    p.add_argument("--detach", action="store_true", help="queue as a background job and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="accuracy of a trained run on evaluation sets (cached with the run)")
    p.add_argument("run_id")
    p.add_argument("--sets", default="sst2-dev,advglue-sst2")
    p.add_argument("--force", action="store_true", help="recompute even if stored")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("runs", help="list, show, export or delete runs")
    p.add_argument("action", choices=["list", "show", "export", "delete"])
    p.add_argument("run_id", nargs="?")
    p.add_argument("--out", help="zip path for export")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("cancel", help="stop a queued or running run")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("methods", help="the methods and their settings")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_methods)

    from engine.commands import add_all

    add_all(sub)

    p = sub.add_parser("run", help="(internal) the worker process of one run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from engine.data import DataError
    from engine.methods import SettingError
    from engine.models import ModelError
    from engine.runs import RunError
    from engine.train import ConfigError

    try:
        return args.func(args)
    except (DataError, ModelError, RunError, ConfigError, SettingError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
