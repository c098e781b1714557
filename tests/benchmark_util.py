"""Finished train runs written straight into a run store, shaped as training stores them (results.json with
`chance_accuracy` and `learned`, eval.json with per-sentence `correct`), so a report can be tested on numbers
chosen by hand without training anything.

Import it as `benchmark_util` (see apptest_util for why not `tests.benchmark_util`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.store.runs import Run, RunStore, write_json
from engine.training.config import TrainConfig

DEV_CHANCE = 444 / 872        # the SST-2 dev set's majority-class rate
ADVGLUE_N = 148


def correct_list(accuracy: float, n: int, seed: int) -> list[int]:
    """0/1 per sentence with exactly round(accuracy * n) ones, placed by `seed`."""
    ones = round(accuracy * n)
    order = np.random.default_rng(seed).permutation(n)
    out = np.zeros(n, dtype=int)
    out[order[:ones]] = 1
    return out.tolist()


def fake_run(store: RunStore, method: str, seed: int, dev: float, advglue: float | None = None,
             settings: dict[str, Any] | None = None, per_sentence: bool = True, **training: Any) -> Run:
    """A finished train run of the tiny model with these numbers; `training` overrides TrainConfig fields."""
    config = TrainConfig(**{"model": "tiny", "train_size": 32, "epochs": 1, "batch_size": 16, **training,
                            "method": method, "settings": settings or {}, "seed": seed})
    run = store.create(config.to_dict())
    evals: dict[str, Any] = {"sst2-dev": {"accuracy": dev, "n": 872, "chance_accuracy": DEV_CHANCE,
                                          **({"correct": correct_list(dev, 872, seed)} if per_sentence else {})}}
    if advglue is not None:
        evals["advglue-sst2"] = {"accuracy": advglue, "n": ADVGLUE_N, "chance_accuracy": 76 / 148,
                                 **({"correct": correct_list(advglue, ADVGLUE_N, 100 + seed)} if per_sentence
                                    else {})}
    write_json(run.dir / "eval.json", evals)
    write_json(run.dir / "results.json", {"status": "done", "dev_set": "sst2-dev", "dev_accuracy": dev,
                                          "chance_accuracy": DEV_CHANCE, "learned": dev >= DEV_CHANCE + 0.10,
                                          **({"advglue_sst2_accuracy": advglue} if advglue is not None else {})})
    run.set_status("done")
    store.update_index(run)
    return run


def count_every_run(monkeypatch) -> None:
    """Count every run as learned: a tiny random BERT on 32 examples stays near chance, and the tests that call
    this check how numbers are read and pooled, not whether a model learned."""
    import sys

    import engine.reporting.benchmark  # noqa: F401  (imported so its binding is patched too)
    import engine.training.evaluate

    real = engine.training.evaluate.learning_status
    for module in [m for m in list(sys.modules.values()) if getattr(m, "learning_status", None) is real]:
        monkeypatch.setattr(module, "learning_status", lambda run: {
            "chance_accuracy": 0.5, "dev_accuracy": None, "learned": True, "reason": "counted by the test"})
