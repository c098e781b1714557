"""The command line: `python -m engine COMMAND ...`. Everything a page shows can be produced here.

With --json a command's last stdout line is one JSON object; errors go to stderr with exit code 2.
"""
from __future__ import annotations

import argparse
import os
import sys

from engine.cli import Parser, check_names, emit, error_line, run_foreground, too_long_name
from engine.paths import use_project_nltk_data
from engine.training.flags import add_train_flags, checked_train_config

use_project_nltk_data()


def cmd_train(args: argparse.Namespace) -> int:
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.training.train import environment

    config, notes = checked_train_config(args)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    store = RunStore()
    payload = {**config.to_dict(), "environment": environment()}
    if args.detach:
        run = jobs.submit(store, payload)
        emit({"run_id": run.id, "status": "queued", "path": str(run.dir)}, args.json)
        return 0
    return run_foreground(store, store.create(payload), args.json)


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.cli import blaming
    from engine.data.text_dataset import DataError
    from engine.store.runs import RunStore
    from engine.training.evaluate import evaluate_run, own_sets

    store = RunStore()
    sets = [s for s in args.sets.split(",") if s] if args.sets else own_sets(store.get(args.run_id).config)
    with blaming("--sets", DataError):   # an unknown set, or one of another shape (pairs for a sentence model)
        results = evaluate_run(store, args.run_id, sets, force=args.force)
    emit({"run_id": args.run_id, "results": {k: {"accuracy": v["accuracy"], "n": v["n"]}
                                             for k, v in results.items()}}, args.json)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.store.runs import RunStore

    store = RunStore()
    if args.action == "list":
        rows = store.list()
        if args.json:
            emit(rows, True)
        else:
            for r in rows:
                acc = "" if r["dev_accuracy"] is None else f"dev {r['dev_accuracy']:.4f}"
                what = f"damaged: {r['damage']}" if r["damage"] else acc
                print(f"{r['id']:40s} {r['status']:10s} {r['method'] or r['kind']:14s} {what}")
        return 0
    if args.action == "reindex":
        emit(store.reindex(), args.json)
        return 0
    if not args.run_id:
        raise ValueError(f"`runs {args.action}` needs a RUN_ID")
    if args.action == "show":
        from engine.models.inference import label_names_for
        from engine.training.evaluate import learning_status

        run = store.get(args.run_id)
        damage = run.damage   # what is derived from a damaged run's files is left out: they cannot be trusted
        emit({"run_id": run.id, "path": str(run.dir), "damage": damage, "config": run.config, "status": run.status,
              "results": run.results, "learning": None if damage else learning_status(run),
              "artifacts": run.artifact_names(), "has_model": run.has_model(),
              "label_names": None if damage else label_names_for(run.dir)}, args.json)
    elif args.action == "export":
        out = store.export_zip(args.run_id, args.out or f"{args.run_id}.zip")
        emit({"run_id": args.run_id, "zip": str(out)}, args.json)
    elif args.action == "delete":
        store.delete(args.run_id)
        emit({"run_id": args.run_id, "deleted": True}, args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from engine.execution import jobs
    from engine.store.runs import RunStore

    emit({"run_id": args.run_id, "status": jobs.cancel(RunStore(), args.run_id)}, args.json)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from engine.methods import registry

    emit({name: {"title": cls.title, "summary": cls.summary_line,
                 "settings": {s.name: {"default": s.default, "range": s.range_text(), "help": s.help}
                              for s in cls.settings_spec},
                 "presets": {p.name: {"source": p.source, "settings": dict(p.settings), "training": dict(p.training)}
                             for p in cls.presets}}
          for name, cls in registry().items()}, args.json)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.execution.jobs import worker_main

    return worker_main(args.run_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m engine", description="RobustLab engine")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="fine-tune a classifier (foreground, with a progress bar)",
                       description="Every TrainConfig field is a flag; method settings are --set KEY=VALUE.")
    add_train_flags(p)
    p.add_argument("--detach", action="store_true", help="queue as a background job and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="accuracy of a trained run on evaluation sets (cached with the run)")
    p.add_argument("run_id")
    p.add_argument("--sets", help="comma-separated set names (default: the run's own: its dev set, then its "
                                  "AdvGLUE sets)")
    p.add_argument("--force", action="store_true", help="recompute even if stored")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("runs", help="list, show, export or delete runs; reindex rebuilds the index from the folders",
                       description="A run whose files cannot be read is listed as damaged, with the reason; it can "
                                   "still be shown, exported and deleted. reindex rebuilds runs/index.sqlite (a "
                                   "cache) from the run folders.")
    p.add_argument("action", choices=["list", "show", "export", "delete", "reindex"])
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
    from engine.data.text_dataset import DataError
    from engine.methods import SettingError
    from engine.models.architecture import ModelError
    from engine.store.runs import RunError
    from engine.training.config import ConfigError

    try:
        check_names(args)
        return args.func(args)
    except (DataError, ModelError, RunError, ConfigError, SettingError, ValueError) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    except OSError as err:
        if not too_long_name(err):
            raise
        print(error_line(f"a name is too long for the file system ({err.filename!r:.80})"), file=sys.stderr)
        return 2


def exit_code_now(code: int) -> None:
    """Exit with `code`; at once (no exit hooks) when a Ray connect was given up on, since Ray's own exit hook
    would wait for the thread still stuck in it."""
    cluster = sys.modules.get("engine.execution.cluster")
    if cluster is not None and cluster.abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_code_now(main())
