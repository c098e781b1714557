"""Clean accuracy of a model on named evaluation sets, stored with the run so it is computed once."""
from __future__ import annotations

import time

import numpy as np

from engine.data import DataError, TextDataset, load_dataset, read_csv, split_train_dev
from engine.device import pick_device
from engine.inference import predict_probs
from engine.runs import Run, RunStore, read_json, write_json


def score(probs: np.ndarray, labels: list[int]) -> dict[str, float]:
    y = np.asarray(labels)
    picked = probs[np.arange(len(y)), y].clip(1e-12, 1.0)
    return {"accuracy": float((probs.argmax(1) == y).mean()), "loss": float(-np.log(picked).mean()), "n": len(y)}


def eval_set(config: dict, name: str, num_labels: int) -> TextDataset:
    """An evaluation set by name: a registry name, `heldout` (the split held out of a CSV), or csv:PATH."""
    if name == "heldout":
        if not config["dataset"].startswith("csv:"):
            raise DataError("`heldout` exists only for runs trained on an uploaded CSV")
        return split_train_dev(load_dataset(config["dataset"]), config.get("dev_fraction", 0.1), config["seed"])[1]
    if name.startswith("csv:"):
        return read_csv(name[4:], num_labels=num_labels)
    data = load_dataset(name)
    if data.num_labels > num_labels:
        raise DataError(f"{name} has {data.num_labels} classes but the model was trained for {num_labels}")
    return data


def evaluate_run(store: RunStore, run_id: str, sets: list[str], force: bool = False) -> dict[str, dict]:
    """Accuracy of a finished run on each set; cached in the run's eval.json, computed only when missing."""
    from engine.models import load_trained

    run = store.get(run_id)
    cached = read_json(run.dir / "eval.json", {})
    missing = [s for s in sets if force or s not in cached]
    if missing:
        device = pick_device()
        model, tokenizer, method = load_trained(run.dir, device)
        config = run.config
        for name in missing:
            data = eval_set(config, name, model.config.num_labels)
            probs = predict_probs(model, method, tokenizer, data.texts, config.get("max_length", 128))
            cached[name] = {**score(probs, data.labels), "computed": time.time()}
        write_json(run.dir / "eval.json", cached)
    return {s: cached[s] for s in sets}


def record_eval(run: Run, name: str, result: dict) -> None:
    cached = read_json(run.dir / "eval.json", {})
    cached[name] = {**result, "computed": time.time()}
    write_json(run.dir / "eval.json", cached)
