"""Method overhead: time per training step of each registered method against vanilla, same batches,
one process, and prints one JSON line of ratios.

Every method gets its own model (same seed) and optimizer and runs the training loop's step exactly
as engine/training/train.py does (loss, backward, clip, before_step, step, zero_grad, after_step), including
the heavy recording on every `--record-every` step, the cadence of a 2,000-example, 2-epoch run.
Methods take turns in rounds (the order rotates), and each ratio is the median over rounds of
(method's mean step time / vanilla's mean step time in the same round), so load from other processes
hits both sides of each ratio alike. On a shared machine use `--threads 1 --clock cpu`: the process's
own CPU time does not count the time other processes hold the cores.

With --record-cost it also times steps with and without the heavy recording (same batch, paired) and
reports the recording's share of step time at the cadence.

Usage: python benchmarks/method_overhead.py [--methods rose-first,uegr] [--model minilm] [--rounds 5]
       [--steps 6] [--batch-size 32] [--threads N] [--clock wall|cpu] [--record-cost]
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

# CPU targets from issue 3 (ratio of step time to vanilla's)
TARGETS = {"rose-second": 1.15, "match-tuning": 1.1, "rose-first": 2.2, "uegr": 5.5}
TARGETS["im-bert"] = 1.1 * (2 + 8)   # issue 26: <= 1.1 x (2 + K) x vanilla, at im-bert's default K = 8


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="", help="comma-separated method names (default: every registered one)")
    p.add_argument("--model", default="minilm")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=6, help="timed steps per method per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per method before the first round")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--record-every", type=int, default=3,
                   help="heavy-recording cadence (126 steps / 40 as in a real run; 0: never, to measure its cost)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--record-cost", action="store_true",
                   help="also time each step with and without heavy recording (same batch) and report the "
                        "recording's share of step time at the --record-every cadence")
    p.add_argument("--device", default="cpu")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time, or this process's CPU time (with --threads 1 it ignores other processes' load)")
    return p.parse_args()


class Trainee:
    """One method with its own model and optimizer, stepping like engine/training/train.py."""

    def __init__(self, name: str, model_name: str, device, clock, lr: float = 5e-5) -> None:
        import torch

        from engine.methods import make_method
        from engine.models.loading import build_classifier
        from engine.training.recorder import Recorder

        torch.manual_seed(0)
        self.name = name
        self.method = make_method(name)
        self.model = self.method.prepare_model(build_classifier(model_name, 2, seed=0)).to(device)
        self.optimizer = self.method.make_optimizer(self.model, lr, 0.01, (0.9, 0.999))
        self.recorder = Recorder(None)
        self.device = device
        self.step_count = 0
        self.clock = clock

    def step(self, batch: dict, record_every: int, total: int, record: bool | None = None) -> float:
        import torch

        from engine.methods import StepContext

        tick = self.clock()
        self.model.train()
        ctx = StepContext(self.step_count + 1, total, 0, self.device, self.recorder,
                          record_now=record if record is not None else
                          record_every > 0 and self.step_count % record_every == 0)
        loss, _ = self.method.training_loss(self.model, batch, ctx)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.method.before_step(self.model, self.optimizer, ctx)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.method.after_step(self.model, ctx)
        loss.item()
        self.step_count += 1
        if self.step_count % 20 == 0:
            self.recorder.flush()           # run=None: drops buffered scalars, as a flush would write them
        return self.clock() - tick


def main() -> int:
    args = parse_args()
    import numpy as np
    import torch

    from engine.data.batching import bucketed_batches, encode_dataset, iter_batches
    from engine.data.registry import load_dataset
    from engine.methods import registry
    from engine.models.device import describe
    from engine.models.loading import load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = [m for m in args.methods.split(",") if m] or list(registry())
    unknown = [m for m in names if m not in registry()]
    if unknown:
        print(f"error: unknown method(s) {', '.join(unknown)}; known: {', '.join(registry())}", file=sys.stderr)
        return 2
    if "vanilla" not in names:
        names.insert(0, "vanilla")

    tokenizer = load_tokenizer(args.model)
    needed = (args.warmup + args.rounds * args.steps) * args.batch_size
    data = load_dataset("sst2").sample(needed, 0)
    encoded = encode_dataset(tokenizer, data, args.max_length)
    batches = list(iter_batches(encoded, bucketed_batches(encoded.lengths(), args.batch_size,
                                                          np.random.default_rng(0)), tokenizer.pad_token_id, device))
    batches = [b for b in batches if len(b["labels"]) == args.batch_size]
    warm, timed = batches[:args.warmup], batches[args.warmup:]
    total = args.warmup + args.rounds * args.steps

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    trainees = [Trainee(name, args.model, device, clock) for name in names]
    for trainee in trainees:
        for batch in warm:
            trainee.step(batch, args.record_every, total)
    per_round: dict[str, list[float]] = {name: [] for name in names}
    with_rec: dict[str, list[float]] = {name: [] for name in names}
    without: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        order = trainees[r % len(trainees):] + trainees[:r % len(trainees)]
        chunk = [timed[(r * args.steps + i) % len(timed)] for i in range(args.steps)]
        for trainee in order:
            seconds = [trainee.step(batch, args.record_every, total) for batch in chunk]
            per_round[trainee.name].append(sum(seconds) / len(seconds))
            if args.record_cost:
                for batch in chunk[:2]:
                    with_rec[trainee.name].append(trainee.step(batch, args.record_every, total, record=True))
                    without[trainee.name].append(trainee.step(batch, args.record_every, total, record=False))

    base = per_round["vanilla"]
    ratios = {name: round(statistics.median(t / v for t, v in zip(times, base)), 3)
              for name, times in per_round.items() if name != "vanilla"}
    out = {"benchmark": "method_overhead", "model": args.model, "device": describe(device),
           "threads": torch.get_num_threads(), "clock": args.clock, "batch_size": args.batch_size,
           "rounds": args.rounds, "steps_per_round": args.steps, "record_every": args.record_every,
           "mean_tokens_per_batch": round(float(np.mean([b["attention_mask"].sum() for b in timed])), 1),
           "seconds_per_step": {name: round(statistics.median(times), 4) for name, times in per_round.items()},
           "ratio_to_vanilla": ratios,
           "targets": {k: v for k, v in TARGETS.items() if k in ratios},
           "within_target": {k: ratios[k] <= v for k, v in TARGETS.items() if k in ratios}}
    if args.record_cost and args.record_every > 0:
        out["recording_overhead"] = {   # extra time of heavy recording, as a share of step time, at the cadence
            name: round(max(0.0, (statistics.median(with_rec[name]) - statistics.median(without[name]))
                            / statistics.median(without[name]) / args.record_every), 4) for name in names}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
