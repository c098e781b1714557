"""`python -m engine recover`: run a corruption-then-recovery grid and print its metrics table.

Example: python -m engine recover --positions bottom,top --layers 1,2,3 --seeds 0 --json
"""
from __future__ import annotations

import argparse

from engine.cli import add_executor_flags, emit, executor_spec, run_foreground
from engine.training.config import default_lr_text
from engine.user_text import int_list, name_list


def cmd_recover(args: argparse.Namespace) -> int:
    from engine.execution import jobs
    from engine.recovery.grid import GridSpec, grid_config
    from engine.store.runs import RunStore

    spec = GridSpec(dataset=args.dataset, model=args.model,
                    positions=name_list(args.positions),
                    levels=int_list(args.layers, "--layers"),
                    custom_layers=int_list(args.custom_layers, "--custom-layers"),
                    embeddings=args.embeddings, corruption_kind=args.kind, init=args.init, scale=args.scale,
                    fraction=args.fraction,
                    seeds=int_list(args.seeds, "--seeds"),
                    train_size=None if args.train_size == -1 else args.train_size, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every,
                    dev_size=None if args.dev_size == -1 else args.dev_size, max_length=args.max_length,
                    device=args.device)
    config = grid_config(spec, executor_spec(args))   # raises GridError / ConfigError / CorruptionError with the reason
    store = RunStore()
    if args.detach:
        run = jobs.submit(store, config, kind="recover")
        emit({"grid_id": run.id, "status": "queued", "runs": len(config["cells"]), "path": str(run.dir)}, args.json)
        return 0
    run = store.create(config, kind="recover")
    return run_foreground(store, run, args.json, what=f"recovery grid of {len(config['cells'])} runs",
                          shape=lambda results: {"grid_id": run.id, **results})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("recover", help="corrupt layers, fine-tune, and measure recovery (a grid of runs)")
    p.add_argument("--dataset", default="sst2")
    p.add_argument("--model", default="minilm", help="minilm, tiny, a local folder or a hub id")
    p.add_argument("--positions", default="bottom,top", help="comma list of bottom, top, custom, embeddings")
    p.add_argument("--layers", default="1,2,3", help="levels k for bottom/top: how many layers to corrupt")
    p.add_argument("--custom-layers", default="", help="layer indices (0-based) for the custom position")
    p.add_argument("--embeddings", action="store_true", help="also corrupt the embeddings in every cell")
    p.add_argument("--kind", default="reinit", choices=["reinit", "noise", "zero"],
                   help="reinit: LayerNorm to 1/0, weights re-initialised (RobustLab's reconstruction after a "
                        "secondary summary of the Healing Powers paper); noise and zero: RobustLab's own variants")
    p.add_argument("--init", default="kaiming-normal", choices=["kaiming-normal", "linear-default"],
                   help="reinit only: kaiming-normal, N(0, 2/fan_in) with biases 0; linear-default, nn.Linear's own "
                        "init, U(+-1/sqrt(fan_in)) for weights and biases (a sixth of the variance)")
    p.add_argument("--scale", type=float, default=0.5, help="noise std as a multiple of each matrix's RMS")
    p.add_argument("--fraction", type=float, default=0.5, help="share of each weight matrix zeroed")
    p.add_argument("--seeds", default="0", help="comma list of seeds")
    p.add_argument("--train-size", type=int, default=2000, help="-1 for the whole training set")
    p.add_argument("--epochs", type=int, default=2,
                   help="2,000 x 2 at the default rate: MiniLM's clean baseline reaches about 0.84 dev accuracy")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default: the model's, {default_lr_text()})")
    p.add_argument("--eval-every", type=int, default=8, help="steps between dev evaluations (curve points)")
    p.add_argument("--dev-size", type=int, default=400, help="dev examples per evaluation; -1 for all")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--device", default="auto")
    add_executor_flags(p)
    p.add_argument("--detach", action="store_true", help="queue the grid as a background job and return at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recover)
