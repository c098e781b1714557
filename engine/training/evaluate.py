"""Clean accuracy of a model on named evaluation sets, stored with the run so it is computed once, and
whether a run learned at all (its dev accuracy against the chance level of its dev set)."""
from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.csv_reading import read_csv
from engine.data.registry import DEV_SET, ROBUSTNESS_SETS, TASKS, load_dataset
from engine.data.splits import CSV_FIELDS, heldout_set, task_of
from engine.data.text_dataset import DataError, TextDataset
from engine.models.device import pick_device
from engine.models.inference import label_names_for, predict_probs, segment_names_for
from engine.stats import chance_accuracy
from engine.store.runs import Run, RunStore, read_json, write_json

LEARNED_MARGIN = 0.10   # a run learned when its dev accuracy is at least this far above chance
_TOLERANCE = 1e-9       # so exactly LEARNED_MARGIN above chance counts, whatever the float rounding


def has_learned(dev_accuracy: float, chance: float) -> bool:
    """Dev accuracy at least LEARNED_MARGIN above chance."""
    return dev_accuracy >= chance + LEARNED_MARGIN - _TOLERANCE


def score(probs: np.ndarray, labels: list[int]) -> dict[str, Any]:
    """Accuracy, mean cross-entropy, size, the set's chance level and, per example in the set's order,
    whether the prediction was right (so two runs' results pair up sentence by sentence)."""
    y = np.asarray(labels)
    picked = probs[np.arange(len(y)), y].clip(1e-12, 1.0)
    correct = probs.argmax(1) == y
    return {"accuracy": float(correct.mean()), "loss": float(-np.log(picked).mean()), "n": len(y),
            "chance_accuracy": chance_accuracy(labels), "correct": correct.astype(int).tolist()}


def eval_set(config: dict, name: str, label_names: list[str], roots: Sequence[Path] | None = None) -> TextDataset:
    """An evaluation set by name: a registry name, `heldout` (the split held out of a CSV), or csv:PATH (its
    labels read as the classes `label_names` of the model, in id order; inside `roots` when a page names it)."""
    if name == "heldout":
        if not config["dataset"].startswith("csv:"):
            raise DataError("`heldout` exists only for runs trained on an uploaded CSV")
        return heldout_set(config)
    if name.startswith("csv:"):
        return read_csv(name[4:], known_labels=label_names, roots=roots)
    data = load_dataset(name)
    if data.num_labels > len(label_names):
        raise DataError(f"{name} has {data.num_labels} classes but the model was trained for {len(label_names)}")
    return data


def check_shape(data: TextDataset, segments: tuple[str, str] | None) -> None:
    """Refuse a set of sentence pairs for a single-sentence model, and single sentences for a pair model: its
    accuracy there would say nothing (`segments`: what the model's two texts are called, None for one text)."""
    if data.is_pair and segments is None:
        raise DataError(f"{data.name} holds sentence pairs ({' / '.join(data.segment_names)}), but this model "
                        f"reads single sentences")
    if segments is not None and not data.is_pair:
        raise DataError(f"{data.name} holds single sentences, but this model reads sentence pairs "
                        f"({' / '.join(segments)})")


def evaluate_run(store: RunStore, run_id: str, sets: list[str], force: bool = False,
                 need_correct: bool = False) -> dict[str, dict]:
    """Accuracy of a finished run on each set; cached in the run's eval.json, computed only when missing
    (with `need_correct`, also when an entry stored before per-example correctness lacks `correct`)."""
    from engine.models.loading import load_trained

    run = store.get(run_id)
    cached = read_json(run.dir / "eval.json", {})
    missing = [s for s in sets if force or s not in cached or (need_correct and "correct" not in cached[s])]
    if missing:
        device = pick_device()
        model, tokenizer, method = load_trained(run.dir, device)
        config = run.config
        for name in missing:
            data = eval_set(config, name, label_names_for(run.dir))
            check_shape(data, segment_names_for(run.dir))
            probs = predict_probs(model, method, tokenizer, data.inputs, config.get("max_length", 128))
            cached[name] = {**score(probs, data.labels), "computed": time.time()}
        write_json(run.dir / "eval.json", cached)
    return {s: cached[s] for s in sets}


def record_eval(run: Run, name: str, result: dict) -> None:
    """Store one set's `score` in the run's eval.json (the training loop's final evaluations)."""
    cached = read_json(run.dir / "eval.json", {})
    cached[name] = {**result, "computed": time.time()}
    write_json(run.dir / "eval.json", cached)


# ---------------------------------------------------------------- did the run learn?

def dev_set_name(config: dict) -> str:
    """The set a train run's final dev accuracy is scored on: `heldout` for an uploaded CSV."""
    dataset = config.get("dataset") or ""
    return "heldout" if dataset.startswith("csv:") else DEV_SET.get(dataset, dataset)


def own_sets(config: dict) -> list[str]:
    """The sets of a train run's own task, to explore and attack it on: its dev set first (`heldout` for an
    uploaded CSV), then the robustness sets of its task (`task_of`: a CSV run's declared GLUE task included)."""
    return list(dict.fromkeys([dev_set_name(config), *ROBUSTNESS_SETS.get(task_of(config), [])]))


def same_task(config: dict, name: str) -> bool:
    """Whether set `name` holds the task the run was trained on. Accuracy or an attack on another task's
    sentences (movie reviews for a news model) says nothing about the model."""
    return name == "heldout" or TASKS.get(name, name) == task_of(config)


def dev_chance(run: Run) -> float | None:
    """The majority-class rate of the dev set the run's final accuracy was scored on: stored by training, else
    counted from the dev set's labels; None when the dev set cannot be read."""
    stored = run.results.get("chance_accuracy")
    if stored is not None:
        return float(stored)
    try:
        return counted_dev_chance(run)
    except (DataError, OSError, KeyError):
        return None


def counted_dev_chance(run: Run) -> float:
    """The majority-class rate counted from the labels of the run's dev set (for runs that did not store it)."""
    config = run.config
    reading = {key: config.get(key) for key in ("dataset", "label_order", *CSV_FIELDS)}
    reading.update(dev_fraction=config.get("dev_fraction", 0.1), seed=config.get("seed", 0))
    return _dev_chance(json.dumps(reading, sort_keys=True), run.results.get("dev_set") or dev_set_name(config))


@functools.lru_cache(maxsize=32)
def _dev_chance(reading: str, dev_name: str) -> float:
    """`reading`: the config keys that decide a run's data, as JSON (hashable, for the cache)."""
    if dev_name == "heldout":
        return chance_accuracy(heldout_set(json.loads(reading)).labels)
    return chance_accuracy(load_dataset(dev_name).labels)


def learning_status(run: Run) -> dict[str, Any]:
    """Whether a finished train run learned: {chance_accuracy, dev_accuracy, learned, reason}.

    `learned` is None when it cannot be told (no final dev accuracy, or the dev set cannot be read). Runs
    trained before results.json stored `chance_accuracy` get it from their dev set's labels.
    """
    results = run.results
    dev, chance = results.get("dev_accuracy"), results.get("chance_accuracy")
    if dev is None:
        return {"chance_accuracy": chance, "dev_accuracy": None, "learned": None,
                "reason": "no final dev accuracy (not a finished training run)"}
    if chance is None:
        try:
            chance = counted_dev_chance(run)
        except (DataError, OSError, KeyError) as err:
            return {"chance_accuracy": None, "dev_accuracy": dev, "learned": None,
                    "reason": f"chance level unknown: the dev set cannot be read ({err})"}
    learned = has_learned(dev, chance)
    points = 100 * (dev - chance)
    reason = (f"dev {dev:.3f} is {points:.1f} points above chance {chance:.3f}" if learned else
              f"dev {dev:.3f} is within {100 * LEARNED_MARGIN:.0f} points of chance {chance:.3f}" if points >= 0 else
              f"dev {dev:.3f} is below chance {chance:.3f}")
    return {"chance_accuracy": chance, "dev_accuracy": dev, "learned": learned, "reason": reason}
