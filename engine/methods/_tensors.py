"""Shared helpers for the methods that look inside the encoder: naming weight tensors by layer and
module, setting dropout rates for one pass, and recording per-layer weight drift.

This module defines no METHODS, so the registry imports it but finds nothing to register.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

_LAYER = re.compile(r"\.layer\.(\d+)\.")

# suffix inside one BERT layer -> short label used by the dashboards
MODULE_LABELS: dict[str, str] = {
    "attention.self.query.weight": "Q",
    "attention.self.key.weight": "K",
    "attention.self.value.weight": "V",
    "attention.output.dense.weight": "attn out",
    "attention.output.LayerNorm.weight": "attn LN",
    "intermediate.dense.weight": "intermediate",
    "output.dense.weight": "output",
    "output.LayerNorm.weight": "output LN",
}
MODULE_ORDER: tuple[str, ...] = tuple(MODULE_LABELS.values())


def layer_index(name: str) -> int | None:
    """Encoder layer of a parameter name (`bert.encoder.layer.3.…` -> 3), None outside the layers."""
    found = _LAYER.search(name)
    return int(found.group(1)) if found else None


def module_label(name: str) -> str:
    """Short module label (Q, K, V, …) of a parameter name inside a layer; the raw suffix otherwise."""
    found = _LAYER.search(name)
    suffix = name[found.end():] if found else name
    return MODULE_LABELS.get(suffix, suffix)


def rose_candidates(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """ROSE's tensors: names containing both "layer" and "weight" (case-sensitive, as in the official
    code), so `embeddings.LayerNorm.weight`, biases, pooler and classifier are never masked."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad and "layer" in n and "weight" in n]


def describe_tensors(names: list[str]) -> dict[str, np.ndarray]:
    """Arrays naming each tensor by layer and module, stored next to the per-tensor records."""
    return {"name": np.asarray(names), "layer": np.asarray([layer_index(n) if layer_index(n) is not None else -1
                                                            for n in names]),
            "module": np.asarray([module_label(n) for n in names])}


# ---------------------------------------------------------------- dropout for one pass

@contextmanager
def dropout_rates(model: nn.Module, hidden: float, attention: float) -> Iterator[None]:
    """Temporarily set every dropout rate: attention-probability dropout to `attention`, all other
    dropout (embeddings, hidden states, classifier) to `hidden`.

    HF BERT's SDPA attention reads its rate from the float attribute `dropout_prob`, not from its
    nn.Dropout module, so both are set; the eager path uses `attention.self.dropout`.
    """
    saved: list[tuple[object, str, float]] = []
    try:
        for name, module in model.named_modules():
            if isinstance(getattr(module, "dropout_prob", None), float):
                saved.append((module, "dropout_prob", module.dropout_prob))
                module.dropout_prob = attention
            if isinstance(module, nn.Dropout):
                saved.append((module, "p", module.p))
                module.p = attention if name.endswith("attention.self.dropout") else hidden
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)


# ---------------------------------------------------------------- weight drift

class DriftTracker:
    """Per-layer ||theta_t - theta_0|| over all parameters of each encoder layer.

    The training loop copies theta_0 when training starts and records the drift on the `record_now` steps,
    for every method, so it costs one copy and about 40 norms per run.
    """

    def __init__(self, model: nn.Module) -> None:
        layers: dict[int, list[nn.Parameter]] = {}
        for name, p in model.named_parameters():
            index = layer_index(name)
            if index is not None:
                layers.setdefault(index, []).append(p)
        self.layers = [layers[i] for i in sorted(layers)]
        self.start = [[p.detach().clone() for p in group] for group in self.layers]

    @torch.no_grad()
    def drift(self) -> np.ndarray:
        out = []
        for group, start in zip(self.layers, self.start):
            total = sum(float(torch.sum((p.detach().float() - s.float()) ** 2)) for p, s in zip(group, start))
            out.append(total ** 0.5)
        return np.asarray(out, dtype=np.float32)

    def record(self, ctx) -> None:
        """Append the drift to the run's `drift` artifact on the heavy-recording steps."""
        if ctx.record_now and self.layers:
            ctx.recorder.append("drift", ctx.step, drift=self.drift())
