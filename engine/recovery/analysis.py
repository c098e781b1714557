"""Inside a grid's models: per-layer linear CKA with the clean run of the same seed, before and after
fine-tuning, and per-layer weight drift from the corrupted starting point (artifact `recovery`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.registry import DEV_SET, load_dataset
from engine.data.splits import heldout_set
from engine.store.runs import Run

if TYPE_CHECKING:
    from engine.data.text_dataset import Input

PROBE_SIZE = 128          # dev sentences whose hidden states CKA compares


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same N items (N x D1, N x D2): 1 = same up to rotation/scale."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")


def token_states(model, tokenizer, texts: list[Input], max_length: int = 128,
                 batch_size: int = 32) -> list[np.ndarray]:
    """Token vectors (padding dropped) at the embeddings output and after each layer: L+1 arrays of (T, H);
    a sentence pair's tokens are both segments'."""
    import torch

    from engine.data.batching import encode, iter_batches, model_inputs

    device = next(model.parameters()).device
    encoded = encode(tokenizer, texts, max_length)
    encoded.labels = [0] * len(texts)
    batches = [np.arange(i, min(i + batch_size, len(texts))) for i in range(0, len(texts), batch_size)]
    chunks: list[list[np.ndarray]] = []
    model.eval()
    with torch.no_grad():
        for batch in iter_batches(encoded, batches, tokenizer.pad_token_id, device):
            out = model(**model_inputs(batch),
                        output_hidden_states=True)
            keep = batch["attention_mask"].bool()
            chunks.append([h[keep].float().cpu().numpy() for h in out.hidden_states])
    return [np.concatenate(layer) for layer in zip(*chunks)]


def _group(name: str) -> str:
    if ".embeddings." in f".{name}":
        return "embeddings"
    if ".layer." in name:
        return f"layer {int(name.split('.layer.')[1].split('.')[0])}"
    return "head"


def weight_drift(start, trained) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per group (embeddings, layer 0..L-1, head): ||theta_trained - theta_start|| and that over ||theta_start||."""
    before = dict(start.named_parameters())
    squares: dict[str, list[float]] = {}
    for name, param in trained.named_parameters():
        if name not in before:
            continue
        a = before[name].detach().float().cpu()
        b = param.detach().float().cpu()
        entry = squares.setdefault(_group(name), [0.0, 0.0])
        entry[0] += float((b - a).pow(2).sum())
        entry[1] += float(a.pow(2).sum())
    order = sorted(squares, key=lambda g: (g != "embeddings", g == "head",
                                           int(g.split()[1]) if g.startswith("layer") else 0))
    absolute = np.array([math.sqrt(squares[g][0]) for g in order])
    relative = np.array([math.sqrt(squares[g][0]) / math.sqrt(squares[g][1]) if squares[g][1] > 0 else np.nan
                         for g in order])
    return order, absolute, relative


def starting_point(config: dict[str, Any], num_labels: int):
    """Rebuild a run's model as it was before its first step: pretrained encoder, seeded head, corruption."""
    from engine.models.corruption import corrupt
    from engine.models.loading import build_classifier

    model = build_classifier(config["model"], num_labels, config["seed"])
    if config.get("corruption"):
        corrupt(model, config["corruption"])
    return model


def cka_texts(config: dict[str, Any]) -> list[Input]:
    """A fixed sample of the run's dev set whose hidden states CKA compares (the same for every cell)."""
    dataset = config["dataset"]
    if dataset.startswith("csv:"):
        dev = heldout_set(config)
    else:
        dev = load_dataset(DEV_SET.get(dataset, dataset))
    return dev.sample(PROBE_SIZE, 0).inputs


def analyse_cell(run: Run, clean: Run | None) -> dict[str, np.ndarray]:
    """Per-layer CKA with the clean fine-tuned model (after and before fine-tuning) and weight drift; saved
    as the run's `recovery` artifact. Without a finished clean run of the same seed, drift only."""
    from engine.models.device import pick_device
    from engine.models.loading import load_trained

    device = pick_device(run.config.get("device", "auto"))
    model, tokenizer, _ = load_trained(run.dir, device)
    start = starting_point(run.config, model.config.num_labels).to(device)
    groups, absolute, relative = weight_drift(start, model)
    arrays: dict[str, np.ndarray] = {"drift_groups": np.array(groups), "drift": absolute, "drift_relative": relative}
    if clean is not None:
        texts = cka_texts(run.config)
        length = run.config.get("max_length", 128)
        reference = token_states(load_trained(clean.dir, device)[0], tokenizer, texts, length)
        after = token_states(model, tokenizer, texts, length)
        before = token_states(start, tokenizer, texts, length)
        arrays.update(layer_names=np.array(["embeddings"] + [f"layer {i}" for i in range(len(after) - 1)]),
                      cka=np.array([linear_cka(a, c) for a, c in zip(after, reference)]),
                      cka_start=np.array([linear_cka(b, c) for b, c in zip(before, reference)]),
                      probe_tokens=np.array(len(reference[0])), clean_run=np.array(clean.id))
    run.write_artifact("recovery", arrays)
    return arrays

