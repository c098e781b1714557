"""Executor overhead: the same small suite run with the `local` executor and with the `ray` executor on a
one-node Ray cluster of this machine started for the purpose (1 CPU, so both run one item at a time), and one
JSON line {"local_seconds", "ray_seconds", "ratio"}. The Ray side pays for connecting, shipping the code, starting
a worker that imports torch, and bringing every run back as an archive; the target is a ratio <= 1.3.

Usage: python benchmarks/executor_overhead.py [--model tiny] [--methods vanilla,rose-second] [--seeds 0,1]
       [--train-size 512] [--attack-n 5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(name, "1")


def timed_suite(home: Path, spec, where) -> float:
    """Seconds to run one suite to its end in this process, in its own run store."""
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.suite.job import suite_config

    store = RunStore(home)
    started = time.perf_counter()
    results = jobs.execute(store, store.create(suite_config(spec, where), kind="suite"), lambda: False)
    seconds = time.perf_counter() - started
    assert results["status"] == "done" and results["n_failed"] == 0, results
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--methods", default="vanilla,rose-second")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--train-size", type=int, default=512)
    p.add_argument("--attack-n", type=int, default=5)
    args = p.parse_args()
    from engine.execution.executor import ExecutorSpec
    from engine.execution.local_cluster import LocalRayCluster
    from engine.suite.job import SuiteSpec
    from engine.user_text import name_list, seed_list

    spec = SuiteSpec(methods=name_list(args.methods), seeds=seed_list(args.seeds), model=args.model,
                     train_size=args.train_size, epochs=1, attack_n=args.attack_n, reuse=False,
                     train={"batch_size": 16})
    with tempfile.TemporaryDirectory(prefix="executor-overhead-") as tmp:
        local = timed_suite(Path(tmp) / "local", spec, ExecutorSpec())
        cluster = LocalRayCluster()
        try:
            cluster.start(second=False)
            ray = timed_suite(Path(tmp) / "ray", spec, ExecutorSpec(kind="ray", address=cluster.address))
        finally:
            cluster.stop()
    print(json.dumps({"local_seconds": round(local, 1), "ray_seconds": round(ray, 1), "ratio": round(ray / local, 2),
                      "items": len(spec.items()), "model": args.model, "train_size": args.train_size}))


if __name__ == "__main__":
    main()
