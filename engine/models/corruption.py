"""Corrupting part of a pretrained encoder before fine-tuning (the "Healing Powers of BERT" study).

A corruption spec is a plain dict, stored in `TrainConfig.corruption`, so a run can always rebuild its
corrupted starting point (for weight drift) from its config alone:

    {"layers": [0, 1], "embeddings": False, "kind": "reinit", "init": "kaiming-normal", "seed": 0}

Kinds:
- `reinit`: every LayerNorm weight <- 1 and bias <- 0; every Linear (and, with embeddings, every
  embedding table) weight re-drawn by `init`:
  - `kaiming-normal` (the default): N(0, 2 / fan_in), Kaiming normal with the ReLU gain; Linear biases <- 0;
  - `linear-default`: what `nn.Linear.reset_parameters` draws, Kaiming uniform with a = sqrt(5), i.e.
    U(+-1/sqrt(fan_in)), variance 1 / (3 fan_in), a sixth of the former; Linear biases U(+-1/sqrt(fan_in)).
  The paper's own recipe was not available: LayerNorm weights set to 1 and Kaiming re-initialisation come
  from a secondary summary of it; biases, fan_in and the gain are RobustLab's choices (docs/methods.md).
- `noise`: every weight matrix (Linear weights, embedding tables) gets Gaussian noise whose standard
  deviation is `scale` times that matrix's own root-mean-square, so one scale means the same thing for
  every matrix. LayerNorm parameters and biases are left alone.
- `zero`: exactly round(`fraction` x size) randomly chosen entries of every weight matrix are set to 0.
  LayerNorm parameters and biases are left alone.

Everything random draws from one generator seeded by `seed`, in module order, so the same spec on the
same model gives bit-identical weights. Layers are 0-based (layer 0 is the one next to the embeddings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.limits import MAX_SEED, number_text
from engine.models.architecture import ModelError, encoder_parts
from engine.user_text import quoted

KINDS: dict[str, str] = {
    "reinit": "LayerNorm to 1/0, weight matrices re-initialised, biases reset (RobustLab's reconstruction after "
              "a secondary summary of the Healing Powers paper)",
    "noise": "Gaussian noise on the weight matrices, scale x each matrix's RMS (RobustLab's own variant)",
    "zero": "a fraction of the entries of each weight matrix set to 0 (RobustLab's own variant)",
}
# Where the reinit recipe comes from, said in full where a person chooses it (the page's help, the CLI).
REINIT_SOURCE = ("The Healing Powers paper's own recipe was not available. A secondary summary of it says LayerNorm "
                 "weights are set to 1 and the other weights re-initialised with Kaiming initialisation; the "
                 "LayerNorm and Linear biases, fan_in and the ReLU gain are RobustLab's choices (docs/methods.md).")
INITS: dict[str, str] = {
    "kaiming-normal": "Kaiming normal, N(0, 2/fan_in), biases 0 (RobustLab's reading of \"Kaiming\")",
    "linear-default": "nn.Linear's default, U(±1/√fan_in) for weights and biases: a sixth of the "
                      "Kaiming-normal variance",
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
    fan_in: int | None = None   # a Linear's input width: the bound of its default bias init


def model_layer_count(name: str) -> int:
    """Number of encoder layers of a model name, read from its config (no weights loaded)."""
    from engine.models.loading import resolve, tiny_config

    if name == "tiny":
        return tiny_config(2).num_hidden_layers
    from transformers import AutoConfig

    folder_or_id = resolve(name)
    try:
        return int(AutoConfig.from_pretrained(folder_or_id, trust_remote_code=False).num_hidden_layers)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the number of layers of model {quoted(name)}: {err}") from err


def group_layers(position: str, k: int, num_layers: int) -> list[int]:
    """The layer indices of the bottom k or top k layers of an encoder with `num_layers` layers."""
    if position not in POSITIONS:
        raise CorruptionError(f"position must be one of {', '.join(POSITIONS)} (got {quoted(position)})")
    if not 1 <= k <= num_layers:
        why = "is larger than the number of layers" if k > num_layers else "must be at least 1"
        raise CorruptionError(f"k={k} {why}: the model has {num_layers} layers, so k must be 1..{num_layers}")
    return list(range(k)) if position == "bottom" else list(range(num_layers - k, num_layers))


def check_spec(spec: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """A validated, normalised copy of a spec; raises CorruptionError naming the bad field."""
    kind = spec.get("kind", "reinit")
    if kind not in KINDS:
        raise CorruptionError(f"corruption kind must be one of {', '.join(KINDS)} (got {quoted(kind)})")
    try:
        layers = sorted({int(i) for i in spec.get("layers", [])})
    except (TypeError, ValueError):
        raise CorruptionError(f"layers must be whole layer indices (got {quoted(spec.get('layers'))})") from None
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise CorruptionError(f"layer {bad[0]} does not exist: the model has {num_layers} layers, "
                              f"numbered 0..{num_layers - 1}")
    embeddings = bool(spec.get("embeddings", False))
    if not layers and not embeddings:
        raise CorruptionError("nothing to corrupt: choose at least one layer or the embeddings")
    try:
        seed = int(spec.get("seed", 0))
    except (TypeError, ValueError):
        raise CorruptionError(f"seed must be a whole number (got {quoted(spec.get('seed'))})") from None
    if not 0 <= seed <= MAX_SEED:
        raise CorruptionError(f"seed must be in 0..{MAX_SEED:,} (got {number_text(seed)})")
    out = {"layers": layers, "embeddings": embeddings, "kind": kind, "seed": seed}
    if kind == "reinit":
        init = spec.get("init", "kaiming-normal")
        if init not in INITS:
            raise CorruptionError(f"re-initialisation must be one of {', '.join(INITS)} (got {quoted(init)})")
        out["init"] = init
    if kind == "noise":
        scale = float(spec.get("scale", 0.5))
        if not 0 < scale < math.inf:
            raise CorruptionError(f"noise scale must be > 0 and finite (got {scale:g})")
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
            fan_in = module.in_features if isinstance(module, nn.Linear) else None
            for attr, role in roles.items():
                param = getattr(module, attr, None)
                if isinstance(param, nn.Parameter):
                    out.append(Target(names[id(param)], role, param, fan_in))
    return out


@torch.no_grad()
def _apply(target: Target, spec: dict[str, Any], gen: torch.Generator) -> bool:
    """Corrupt one parameter in place; returns whether the kind touches it at all."""
    p, role, kind = target.param, target.role, spec["kind"]
    matrix = role in ("linear_weight", "embedding")
    if kind == "reinit":
        if role == "layernorm_weight":
            p.fill_(1.0)
        elif role == "layernorm_bias":
            p.zero_()
        else:
            p.copy_(_redrawn(target, spec["init"], gen))
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


def _redrawn(target: Target, init: str, gen: torch.Generator) -> torch.Tensor:
    """A fresh value for a weight matrix or a Linear bias under `init` (float32, drawn from `gen`)."""
    fresh = torch.empty(target.param.shape, dtype=torch.float32)
    if init == "kaiming-normal":
        if target.role == "linear_bias":
            return fresh.zero_()
        return nn.init.kaiming_normal_(fresh, mode="fan_in", nonlinearity="relu", generator=gen)
    if target.role == "linear_bias":           # nn.Linear.reset_parameters: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1 / math.sqrt(target.fan_in)
        return nn.init.uniform_(fresh, -bound, bound, generator=gen)
    return nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=gen)


def corrupt(model: nn.Module, spec: dict[str, Any]) -> str:
    """Corrupt the selected parameters of `model` in place (seeded); returns a one-line description."""
    _, layers = encoder_parts(model)
    spec = check_spec(spec, len(layers))
    gen = torch.Generator().manual_seed(spec["seed"])
    touched = [t for t in targets(model, spec) if _apply(t, spec, gen)]
    where = describe_selection(spec, len(layers))
    values = sum(t.param.numel() for t in touched)
    detail = {"reinit": f" ({spec.get('init')})", "noise": f" (scale {spec.get('scale', 0):g})",
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
