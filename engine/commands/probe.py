"""`python -m engine probe RUN_ID`: ODE stability probes of a trained run (growth, Jacobians, residuals).

Computed once and kept in the run's artifacts/probe.npz; `--force` recomputes.
"""
from __future__ import annotations

import argparse

from engine.cli import emit


def cmd_probe(args: argparse.Namespace) -> int:
    from engine.probe.ode import probe_run
    from engine.store.runs import RunStore

    emit(probe_run(RunStore(), args.run_id, n=args.n, seed=args.seed, scale=args.scale,
                   steps=args.steps, jacobian_n=args.jacobian_n, force=args.force), args.json)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("probe", help="ODE stability probes of a trained run: perturbation growth per "
                                            "layer, Jacobian top singular values, implicit-solver residuals")
    p.add_argument("run_id")
    p.add_argument("--n", type=int, default=16, help="probe sentences (a seeded AdvGLUE-SST2 sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1e-2, help="||delta|| as a fraction of ||x_0|| per sentence")
    p.add_argument("--steps", type=int, default=6, help="Lanczos steps for each layer's top singular value")
    p.add_argument("--jacobian-n", type=int, default=8, help="probe sentences the layer Jacobians are measured on "
                                                              "(the costliest probe)")
    p.add_argument("--force", action="store_true", help="recompute even if stored")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)
