"""`python -m engine cluster --address auto --json`: what a Ray cluster offers (nodes, CPUs, GPUs, Ray version).

The Benchmark and Recovery pages call it as a subprocess, so the Streamlit process never connects to Ray.
"""
from __future__ import annotations

import argparse

from engine.cli import blaming, emit


def cmd_cluster(args: argparse.Namespace) -> int:
    from engine.execution.cluster import probe
    from engine.execution.executor import ExecutorError

    with blaming("--address", ExecutorError):
        offer = probe(args.address)
    emit(offer, args.json)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cluster", help="what a Ray cluster offers: nodes, CPUs, GPUs, Ray version")
    p.add_argument("--address", default="auto", help="auto, host:6379 or ray://host:10001")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cluster)
