"""A finished sentence-pair run of the tiny model, trained on pairs made here: the run the Playground, attack
and page tests open with pairs.

Import it as `pair_run_util`, not `tests.pair_run_util` (see browser_util for why).

The pairs are an RTE-shaped task a tiny model learns in a few epochs: the label is read off the hypothesis
(a word of agreement or of denial), so an attack on the hypothesis can flip it, while the premise is a
neutral sentence the label does not depend on. The run's dataset is `advglue-rte` (the pair set in the data
folder), so it is an RTE run to every page: its segments are sentence1/sentence2 and its own set is
AdvGLUE-RTE.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

SUBJECTS = ["the cat", "a farmer", "the old man", "my neighbour", "the committee", "a small dog", "the teacher",
            "the river", "a tourist", "the company"]
VERBS = ["walked to", "looked at", "talked about", "painted", "bought", "visited", "cleaned", "waited near"]
OBJECTS = ["the market", "a red house", "the bridge", "the garden", "an empty station", "the library",
           "a wooden boat", "the hill"]
AGREE = ["yes", "true", "indeed", "certainly", "right", "correct"]          # label 0: entailment
DENY = ["false", "never", "wrong", "untrue", "nonsense", "denied"]      # label 1: not_entailment


def pair_data(n: int, seed: int):
    """n generated (premise, hypothesis) pairs with RTE's classes, balanced."""
    from engine.data.text_dataset import PAIR_TASKS, TextDataset

    rng = random.Random(seed)
    firsts, seconds, labels = [], [], []
    for i in range(n):
        label = i % 2
        cue = rng.choice(AGREE if label == 0 else DENY)
        firsts.append(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} .")
        seconds.append(f"{cue} , {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} .")
        labels.append(label)
    task = PAIR_TASKS["rte"]
    return TextDataset("advglue-rte", firsts, labels, list(task.label_names), seconds, task.fields)


def train_pair_run(home: Path, model: str = "tiny", n: int = 384, epochs: int = 10, lr: float = 5e-3):
    """Train `model` on n generated pairs into a new run of the store at `home` (a job executed in this
    process); returns (store, run)."""
    import engine.training.train
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    store = RunStore(home)
    config = TrainConfig(model=model, dataset="advglue-rte", train_size=n, epochs=epochs, batch_size=32,
                         dev_size=64, eval_every=0, lr=lr, seed=0)
    run = store.create(config.to_dict())
    splits = engine.training.train.Splits(pair_data(n, 0), pair_data(64, 1), "advglue-rte", {}, n, [])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.training.train, "load_splits", lambda _config: splits)
        execute(store, run, lambda: False)
    assert run.status["status"] == "done", run.log_text()
    return store, run


def copy_run(source, home: Path):
    """A copy of a finished run in a store of its own at `home`, for a test that adds runs (attacks) to it;
    returns (store, run)."""
    import shutil

    from engine.store.runs import RunStore

    store = RunStore(home)
    run = store.create(source.config)
    for name in ("model", "results.json", "status.json", "metrics.jsonl", "eval.json"):
        if (source.dir / name).is_dir():
            shutil.copytree(source.dir / name, run.dir / name)
        elif (source.dir / name).exists():
            shutil.copy(source.dir / name, run.dir / name)
    store.update_index(run)
    return store, run
