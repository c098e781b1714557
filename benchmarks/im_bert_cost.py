"""IM-BERT's cost against vanilla's beyond one training step: evaluation of N dev sentences, and a whole
small training run (training, its dev evaluations, the final evaluations), and prints one JSON line of ratios.

The training step alone is `benchmarks/method_overhead.py --methods im-bert`. Both models here are built the
same way (MiniLM, seed 0); evaluation goes through `engine.models.inference.predict_probs`, the call a run's
evaluations make, and the whole run through `engine.training.train.train` with no run folder. The two methods take
turns in rounds (the order alternates) and each ratio is the median over rounds of (IM-BERT's time / vanilla's
in the same round), so load from other processes hits both sides of a ratio alike. On a shared machine use
`--threads 1 --clock cpu`: this process's own CPU time does not count the time other processes hold the cores.

Targets (issue 26): evaluation <= (2 + K) x vanilla's; a whole default run <= 12 x vanilla's. The whole run
here is small (--run-train-size, --run-epochs, --run-dev-size); its final evaluation is always the whole dev
set and AdvGLUE-SST2, as in a default run, so its evaluation share is larger than a default run's.

Usage: python benchmarks/im_bert_cost.py [--sentences 256] [--rounds 5] [--runs 2] [--run-train-size 500]
       [--run-epochs 1] [--run-dev-size 64] [--set tol=0.02] [--threads N] [--clock wall|cpu] [--skip-run]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WHOLE_RUN_TARGET = 12.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=256, help="dev sentences evaluated per round")
    p.add_argument("--rounds", type=int, default=5, help="evaluation rounds")
    p.add_argument("--runs", type=int, default=2, help="whole-run rounds (each trains both methods once)")
    p.add_argument("--run-train-size", type=int, default=500)
    p.add_argument("--run-epochs", type=int, default=1)
    p.add_argument("--run-dev-size", type=int, default=64, help="dev sentences of the evaluations during training")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an IM-BERT setting")
    p.add_argument("--skip-run", action="store_true", help="evaluation only")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    return p.parse_args()


def layer_call_counter(model) -> list[int]:
    """[rows]: sentences passed through the converted layers' inner BertLayer, summed over calls."""
    from engine.methods.im_bert import connections

    rows = [0]
    for _, conn in connections(model):
        conn.inner.register_forward_hook(lambda _m, args, _o: rows.__setitem__(0, rows[0] + args[0].shape[0]))
    return rows


def evaluation(args: argparse.Namespace, settings: dict, clock) -> dict:
    from engine.data.registry import load_dataset
    from engine.methods import make_method
    from engine.methods.im_bert import connections
    from engine.models.inference import predict_probs
    from engine.models.loading import build_classifier, load_tokenizer

    tokenizer = load_tokenizer("minilm")
    texts = load_dataset("sst2-dev").texts[:args.sentences]
    models = {}
    for name, method in (("vanilla", make_method("vanilla")), ("im-bert", make_method("im-bert", settings))):
        models[name] = (method.prepare_model(build_classifier("minilm", 2, 0)).eval(), method)
    rows = layer_call_counter(models["im-bert"][0])
    n_layers = len(connections(models["im-bert"][0]))
    seconds: dict[str, list[float]] = {"vanilla": [], "im-bert": []}
    for r in range(args.rounds):
        for name in (("vanilla", "im-bert") if r % 2 == 0 else ("im-bert", "vanilla")):
            model, method = models[name]
            rows[0] = 0
            tick = clock()
            predict_probs(model, method, tokenizer, texts)
            seconds[name].append(clock() - tick)
    k = models["im-bert"][1].settings["K"]
    ratio = statistics.median(i / v for i, v in zip(seconds["im-bert"], seconds["vanilla"]))
    return {"sentences": len(texts), "rounds": args.rounds,
            "seconds": {n: round(statistics.median(s), 3) for n, s in seconds.items()},
            "ratio": round(ratio, 3), "target": 2 + k, "within_target": ratio <= 2 + k,
            "layer_calls_per_sentence_and_layer": round(rows[0] / len(texts) / n_layers, 2),
            "layer_calls_bound": 2 + k}


def whole_run(args: argparse.Namespace, settings: dict, clock) -> dict:
    from engine.training.config import TrainConfig
    from engine.training.train import train

    seconds: dict[str, list[float]] = {"vanilla": [], "im-bert": []}
    accuracy: dict[str, list[float]] = {"vanilla": [], "im-bert": []}
    for r in range(args.runs):
        for name in (("vanilla", "im-bert") if r % 2 == 0 else ("im-bert", "vanilla")):
            config = TrainConfig(method=name, settings=settings if name == "im-bert" else {},
                                 train_size=args.run_train_size, epochs=args.run_epochs, dev_size=args.run_dev_size)
            tick = clock()
            results = train(config)
            seconds[name].append(clock() - tick)
            accuracy[name].append(results["dev_accuracy"])
    ratio = statistics.median(i / v for i, v in zip(seconds["im-bert"], seconds["vanilla"]))
    return {"train_size": args.run_train_size, "epochs": args.run_epochs, "dev_size": args.run_dev_size,
            "rounds": args.runs, "seconds": {n: round(statistics.median(s), 2) for n, s in seconds.items()},
            "dev_accuracy": accuracy, "ratio": round(ratio, 3), "target": WHOLE_RUN_TARGET,
            "within_target": ratio <= WHOLE_RUN_TARGET}


def main() -> int:
    args = parse_args()
    import torch

    from engine.models.device import describe

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = dict(item.split("=", 1) for item in args.set)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    out = {"benchmark": "im_bert_cost", "device": describe(torch.device("cpu")), "threads": torch.get_num_threads(),
           "clock": args.clock, "settings": settings, "evaluation": evaluation(args, settings, clock)}
    if not args.skip_run:
        out["whole_run"] = whole_run(args, settings, clock)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
