"""Which rows a run trains and is scored on: a stratified dev split held out of a CSV, the data a run's
config names, and the task it learns."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.data.csv_reading import read_csv
from engine.data.registry import TASKS, load_dataset
from engine.data.text_dataset import DataError, TextDataset


def split_train_dev(data: TextDataset, dev_fraction: float, seed: int) -> tuple[TextDataset, TextDataset]:
    """Hold out a stratified dev split (at least one example per class) from a dataset with no dev set."""
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels)
    dev_idx: list[int] = []
    for c in range(data.num_labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        dev_idx.extend(members[:_held_out(len(members), dev_fraction)].tolist())
    dev_set = set(dev_idx)
    train_idx = [i for i in range(len(data)) if i not in dev_set]
    if not dev_idx or not train_idx:
        raise DataError("the CSV is too small to hold out a dev split; give at least two rows per class")
    return data.subset(sorted(train_idx)), data.subset(sorted(dev_idx))


def run_dataset(config: Mapping[str, Any]) -> TextDataset:
    """The data a run's config names: a CSV read with the run's columns, its task's classes or its label order."""
    dataset = config["dataset"]
    if not dataset.startswith("csv:"):
        return load_dataset(dataset, config.get("label_order"))
    return read_csv(dataset[4:], label_order=config.get("label_order"),
                    **{key: config.get(key) for key in CSV_FIELDS})


CSV_FIELDS = ("text_column", "text_column_b", "label_column", "task")   # TrainConfig's fields read_csv takes


def task_of(config: Mapping[str, Any]) -> str:
    """The task a run learns: its training set's (sst2, rte, ...), the GLUE task a CSV run declares, else the
    CSV itself (a task of its own)."""
    dataset = config.get("dataset") or ""
    return config.get("task") or TASKS.get(dataset, dataset)


def absent_classes(data: TextDataset) -> list[str]:
    """The classes of a dataset that no example has."""
    seen = set(data.labels)
    return [name for i, name in enumerate(data.label_names) if i not in seen]


def heldout_set(config: Mapping[str, Any]) -> TextDataset:
    """The dev split held out of a CSV run's data: the rows it was scored on."""
    return split_train_dev(run_dataset(config), config.get("dev_fraction", 0.1), config["seed"])[1]


def _held_out(members: int, dev_fraction: float) -> int:
    """How many of a class's `members` examples the dev split takes: its share, at least one, none of a single."""
    return max(1, int(round(members * dev_fraction))) if members > 1 else 0


def held_out_count(class_sizes: Sequence[int], dev_fraction: float) -> int:
    """How many rows `split_train_dev` holds out of a dataset whose classes have these sizes, before reading it."""
    return sum(_held_out(n, dev_fraction) for n in class_sizes)


def split_sizes_text(rows: int, held_out: int, asked: int | None) -> str:
    """What a run on a CSV trains on, in words, for the Train page and the CLI to say before it starts."""
    pool = rows - held_out
    if asked is not None and asked < pool:
        return (f"the run trains on a random {asked:,} of the {pool:,} training examples of this CSV "
                f"({rows:,} rows, {held_out:,} held out as the dev set)")
    unused = "" if asked is None or asked == pool else f" (fewer than the {asked:,} asked for)"
    return (f"the run trains on all {pool:,} training examples of this CSV: its {rows:,} rows, {held_out:,} "
            f"held out as the dev set{unused}")
