"""`python -m engine attack RUN_ID --recipe deepwordbug --dataset sst2-dev --n 50 --json`: a batch attack.
A sentence-pair run is attacked on one segment (`--segment second`, the default, or `first`; the task's
names for them work too, e.g. `--segment premise`), the other kept as it is.

The attack runs as a run of kind "attack" whose parent is the target run, so the Playground and reports
find it later; an identical finished attack is reused unless --force. `attack-recipes` lists the recipes
and says why each unavailable one cannot run here.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from engine.cli import FlagError, ProgressBar, blaming, emit, run_foreground

if TYPE_CHECKING:
    from engine.store.runs import Run


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("attack", help="attack a trained run with a TextAttack recipe over a dataset")
    p.add_argument("run_id", help="the trained run to attack")
    p.add_argument("--recipe", default="deepwordbug", help="see `python -m engine attack-recipes`")
    p.add_argument("--dataset", default=None, help="the run's dev set by default; or sst2-dev, advglue-sst2, "
                   "advglue-rte, ..., csv:PATH, or heldout (the dev split held out of the run's own CSV)")
    p.add_argument("--n", type=int, default=50, help="attack the first N examples")
    p.add_argument("--max-queries", type=int, default=None, help="model queries per example (default 2000)")
    p.add_argument("--max-fraction", type=float, default=None,
                   help="largest share of words an attack may change, in (0, 1] (default 0.3)")
    p.add_argument("--segment", default=None,
                   help="for a sentence-pair run: the segment to attack, first or second (default second: "
                        "the hypothesis in NLI), or its name (e.g. premise); the other stays as it is")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="attack again even if this exact attack is stored")
    p.add_argument("--detach", action="store_true", help="queue as a background job and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_attack)

    p = subparsers.add_parser("attack-recipes", help="the attack recipes, and why any cannot run here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recipes)


def cmd_attack(args: argparse.Namespace) -> int:
    from engine.execution import jobs
    from engine.execution.kinds import find_done
    from engine.store.runs import RunError, RunStore

    store = RunStore()
    target = store.get(args.run_id)
    if target.config.get("kind", "train") != "train" or not target.has_model():
        raise RunError(f"run {args.run_id} has no trained model to attack (kind {target.config.get('kind')}, "
                       f"status {target.status.get('status')})")
    config = checked_attack_config(args, target)
    if not args.force:
        cached = find_done(store, "attack", config)
        if cached is not None:
            emit({**cached.results, "run_id": cached.id, "cached": True}, args.json)
            return 0
    if args.detach:
        run = jobs.submit(store, config, kind="attack", parent=target.id)
        emit({"run_id": run.id, "status": "queued", "path": str(run.dir)}, args.json)
        return 0
    return run_foreground(store, store.create(config, kind="attack", parent=target.id), args.json, what="attack run",
                          bar=ProgressBar(unit="example", value_format="success={:.2f}"),
                          shape=lambda results: {**results, "cached": False})


def checked_attack_config(args: argparse.Namespace, target: Run) -> dict:
    """The attack run's config, with every flag checked before the run exists (FlagError naming the flag):
    the budget, the recipe, the dataset (read once here, as the attack will read it: `heldout` is the run's
    own CSV split), the segment of a pair run (and a dataset of pairs for it, of single sentences for any other
    run), and --n against the dataset's size."""
    from engine.attacks.attacker import DEFAULT_MAX_FRACTION, DEFAULT_MAX_QUERIES, Budget
    from engine.attacks.batch import batch_config
    from engine.attacks.recipes import AttackError, get_recipe
    from engine.attacks.segments import check_shape, chosen_segment
    from engine.data.text_dataset import DataError
    from engine.limits import MAX_SEED, number_text
    from engine.models.inference import label_names_for, segment_names_for
    from engine.training.evaluate import dev_set_name, eval_set

    if not 0 <= args.seed <= MAX_SEED:
        raise FlagError(f"--seed: must be a whole number in 0..{MAX_SEED:,} (got {number_text(args.seed)})")
    queries = DEFAULT_MAX_QUERIES if args.max_queries is None else args.max_queries
    fraction = DEFAULT_MAX_FRACTION if args.max_fraction is None else args.max_fraction
    with blaming("--max-queries", AttackError):
        Budget(queries, DEFAULT_MAX_FRACTION).check()
    with blaming("--max-fraction", AttackError):
        Budget(DEFAULT_MAX_QUERIES, fraction).check()
    with blaming("--recipe", AttackError):
        get_recipe(args.recipe)
    names = segment_names_for(target.dir)
    with blaming("--segment", AttackError):
        segment = chosen_segment(args.segment, names)
    dataset = args.dataset or dev_set_name(target.config)
    with blaming("--dataset", DataError, AttackError):
        data = eval_set(target.config, dataset, label_names_for(target.dir))
        check_shape(dataset, data.is_pair, names)
    if not 1 <= args.n <= len(data):
        raise FlagError(f"--n: attack at least 1 example (got {args.n})" if args.n < 1 else
                        f"--n: {args.n} is more than the {len(data)} examples of {dataset}; give --n {len(data)} "
                        "or less")
    return batch_config(target.id, args.recipe, dataset, args.n, Budget(queries, fraction), args.seed, segment)


def cmd_recipes(args: argparse.Namespace) -> int:
    from engine.attacks.recipes import recipe_table

    emit(recipe_table(), args.json)
    return 0
