"""Clean accuracy of a model on named evaluation sets, stored with the run so it is computed once."""
from __future__ import annotations

import time

import numpy as np
import torch

from engine.data import DataError, TextDataset, bucketed_batches, encode_dataset, iter_batches, load_dataset, \
    read_csv, split_train_dev
from engine.device import autocast, pick_device
from engine.runs import Run, RunStore, read_json, write_json


@torch.no_grad()
def predict_probs(model, method, tokenizer, texts: list[str], labels: list[int] | None = None,
                  max_length: int = 128, batch_size: int = 128, device: torch.device | None = None) -> np.ndarray:
    """Class probabilities (N, C) in input order; batches sorted by length, padded to their longest."""
    device = device or next(model.parameters()).device
    data = TextDataset("eval", texts, labels or [0] * len(texts))
    encoded = encode_dataset(tokenizer, data, max_length)
    model.eval()
    out = np.zeros((len(texts), 0), dtype=np.float32)
    for batch in iter_batches(encoded, bucketed_batches(encoded.lengths(), batch_size, None),
                              tokenizer.pad_token_id, device):
        with autocast(device):
            probs = torch.softmax(method.logits(model, batch).float(), -1).cpu().numpy()
        if out.shape[1] == 0:
            out = np.zeros((len(texts), probs.shape[1]), dtype=np.float32)
        out[batch["index"].numpy()] = probs
    return out


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
            probs = predict_probs(model, method, tokenizer, data.texts, data.labels,
                                  config.get("max_length", 128), device=device)
            cached[name] = {**score(probs, data.labels), "computed": time.time()}
        write_json(run.dir / "eval.json", cached)
    return {s: cached[s] for s in sets}


def record_eval(run: Run, name: str, result: dict) -> None:
    cached = read_json(run.dir / "eval.json", {})
    cached[name] = {**result, "computed": time.time()}
    write_json(run.dir / "eval.json", cached)
