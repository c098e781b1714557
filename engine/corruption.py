"""Corrupting part of a pretrained encoder before fine-tuning (the "Healing Powers of BERT" study).

A corruption spec is a plain dict, stored in `TrainConfig.corruption`, so a run can always rebuild its
corrupted starting point (for weight drift) from its config alone:

    {"layers": [0, 1], "embeddings": False, "kind": "reinit", "scale": 0.5, "fraction": 0.5, "seed": 0}

Kinds:
- `reinit` (the paper's): every LayerNorm weight <- 1 and bias <- 0; every Linear (and, with
  embeddings, every embedding table) weight <- Kaiming normal (fan_in, ReLU gain); every Linear bias <- 0.
- `noise`: every weight matrix (Linear weights, embedding tables) gets Gaussian noise whose standard
  deviation is `scale` times that matrix's own root-mean-square, so one scale means the same thing for
  every matrix. LayerNorm parameters and biases are left alone.
- `zero`: exactly round(`fraction` x size) randomly chosen entries of every weight matrix are set to 0.
  LayerNorm parameters and biases are left alone.

Everything random draws from one generator seeded by `seed`, in module order, so the same spec on the
same model gives bit-identical weights. Layers are 0-based (layer 0 is the one next to the embeddings).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.models import encoder_parts

KINDS: dict[str, str] = {
    "reinit": "LayerNorm to 1/0, linear weights re-initialised with Kaiming, biases to 0 (the paper's)",
    "noise": "Gaussian noise on the weight matrices, scale x each matrix's RMS",
    "zero": "a fraction of the entries of each weight matrix set to 0",
}
POSITIONS: tuple[str, ...] = ("bottom", "top")


class CorruptionError(ValueError):
    """A corruption spec that cannot be applied; the message says what to change."""


@dataclass(frozen=True)
class Target:
    """One parameter a spec touches: its name and what it is (decides how it is corrupted)."""
    name: str
    role: str   # layernorm_weight, layernorm_bias, linear_weight, linear_bias, embedding
    param: nn.Parameter


def model_layer_count(name: str) -> int:
    """Number of encoder layers of a model name, read from its config (no weights loaded)."""
    from engine.models import ModelError, resolve, tiny_config

    if name == "tiny":
        return tiny_config(2).num_hidden_layers
    from transformers import AutoConfig

    try:
        return int(AutoConfig.from_pretrained(resolve(name), trust_remote_code=False).num_hidden_layers)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the number of layers of model {name!r}: {err}") from err


def group_layers(position: str, k: int, num_layers: int) -> list[int]:
    """The layer indices of the bottom k or top k layers of an encoder with `num_layers` layers."""
    if position not in POSITIONS:
        raise CorruptionError(f"position must be one of {', '.join(POSITIONS)} (got {position!r})")
    if not 1 <= k <= num_layers:
        why = "is larger than the number of layers" if k > num_layers else "must be at least 1"
        raise CorruptionError(f"k={k} {why}: the model has {num_layers} layers, so k must be 1..{num_layers}")
    return list(range(k)) if position == "bottom" else list(range(num_layers - k, num_layers))


def check_spec(spec: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """A validated, normalised copy of a spec; raises CorruptionError naming the bad field."""
    kind = spec.get("kind", "reinit")
    if kind not in KINDS:
        raise CorruptionError(f"corruption kind must be one of {', '.join(KINDS)} (got {kind!r})")
    try:
        layers = sorted({int(i) for i in spec.get("layers", [])})
    except (TypeError, ValueError):
        raise CorruptionError(f"layers must be whole layer indices (got {spec.get('layers')!r})") from None
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise CorruptionError(f"layer {bad[0]} does not exist: the model has {num_layers} layers, "
                              f"numbered 0..{num_layers - 1}")
    embeddings = bool(spec.get("embeddings", False))
    if not layers and not embeddings:
        raise CorruptionError("nothing to corrupt: choose at least one layer or the embeddings")
    out = {"layers": layers, "embeddings": embeddings, "kind": kind, "seed": int(spec.get("seed", 0))}
    if kind == "noise":
        scale = float(spec.get("scale", 0.5))
        if not scale > 0:
            raise CorruptionError(f"noise scale must be > 0 (got {scale:g})")
        out["scale"] = scale
    if kind == "zero":
        fraction = float(spec.get("fraction", 0.5))
        if not 0 <= fraction <= 1:
            raise CorruptionError(f"the fraction of weights to zero must be in [0, 1] (got {fraction:g})")
        out["fraction"] = fraction
    return out


def targets(model: nn.Module, spec: dict[str, Any]) -> list[Target]:
    """The parameters a (checked) spec touches, in module order, each with its role."""
    embeddings, layers = encoder_parts(model)
    spec = check_spec(spec, len(layers))
    chosen = ([embeddings] if spec["embeddings"] else []) + [layers[i] for i in spec["layers"]]
    names = {id(p): n for n, p in model.named_parameters()}
    out: list[Target] = []
    for part in chosen:
        for module in part.modules():
            if isinstance(module, nn.LayerNorm):
                roles = {"weight": "layernorm_weight", "bias": "layernorm_bias"}
            elif isinstance(module, nn.Linear):
                roles = {"weight": "linear_weight", "bias": "linear_bias"}
            elif isinstance(module, nn.Embedding):
                roles = {"weight": "embedding"}
            else:
                continue
            for attr, role in roles.items():
                param = getattr(module, attr, None)
                if isinstance(param, nn.Parameter):
                    out.append(Target(names[id(param)], role, param))
    return out


@torch.no_grad()
def _apply(target: Target, spec: dict[str, Any], gen: torch.Generator) -> bool:
    """Corrupt one parameter in place; returns whether the kind touches it at all."""
    p, role, kind = target.param, target.role, spec["kind"]
    matrix = role in ("linear_weight", "embedding")
    if kind == "reinit":
        if role == "layernorm_weight":
            p.fill_(1.0)
        elif role in ("layernorm_bias", "linear_bias"):
            p.zero_()
        else:
            fresh = torch.empty(p.shape, dtype=torch.float32)
            nn.init.kaiming_normal_(fresh, mode="fan_in", nonlinearity="relu", generator=gen)
            p.copy_(fresh)
        return True
    if not matrix:
        return False
    if kind == "noise":
        rms = p.float().pow(2).mean().sqrt()
        p.add_((torch.randn(p.shape, generator=gen) * (spec["scale"] * rms)).to(p.dtype))
        return True
    count = round(spec["fraction"] * p.numel())
    picked = torch.randperm(p.numel(), generator=gen)[:count]
    p.view(-1)[picked.to(p.device)] = 0
    return True


def corrupt(model: nn.Module, spec: dict[str, Any]) -> str:
    """Corrupt the selected parameters of `model` in place (seeded); returns a one-line description."""
    _, layers = encoder_parts(model)
    spec = check_spec(spec, len(layers))
    gen = torch.Generator().manual_seed(spec["seed"])
    touched = [t for t in targets(model, spec) if _apply(t, spec, gen)]
    where = describe_selection(spec, len(layers))
    values = sum(t.param.numel() for t in touched)
    detail = {"reinit": "", "noise": f" (scale {spec.get('scale', 0):g})",
              "zero": f" (fraction {spec.get('fraction', 0):g})"}[spec["kind"]]
    return (f"{spec['kind']}{detail} of {where}: {len(touched)} tensors, {values:,} values, "
            f"seed {spec['seed']}")


def describe_selection(spec: dict[str, Any], num_layers: int) -> str:
    """`layers 0-2 of 6 + embeddings` and the like, for logs and legends."""
    layers = spec.get("layers", [])
    parts = []
    if layers:
        contiguous = layers == list(range(layers[0], layers[-1] + 1))
        text = (f"{layers[0]}-{layers[-1]}" if contiguous and len(layers) > 1
                else ",".join(map(str, layers)))
        parts.append(f"layer{'s' if len(layers) > 1 else ''} {text} of {num_layers}")
    if spec.get("embeddings"):
        parts.append("embeddings")
    return " + ".join(parts) or "nothing"
