"""What a model folder must be before anything loads it: a config transformers knows without running the folder's
own code, safetensors weights, and a size this machine can train.

Read from `config.json` and the folder's file names alone, so a refusal comes before a run exists and says what
is wrong; loading would otherwise fail later with transformers' message about something else (or after
allocating most of the memory). `minilm` and `tiny` are RobustLab's own and are not judged.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.models.architecture import ModelError
from engine.models.loading import resolve
from engine.user_text import quoted

PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")
# bytes a parameter takes while training with AdamW in fp32: the weight, its gradient and the optimiser's two moments
TRAINING_BYTES_PER_PARAMETER = 16


def check_model_folder(name: str, memory_bytes: int | None = None) -> None:
    """Refuse a local model folder that needs remote code, has only pickle weights, or is too large to train in
    `memory_bytes` (default: this machine's RAM); ModelError saying which. A hub id is judged by the loader."""
    if name in ("minilm", "tiny"):
        return
    folder = Path(resolve(name))
    if not folder.is_dir():
        return
    config = _config(folder)
    if config is None:
        return   # the loader says the folder holds no model
    remote = remote_code_reason(config)
    if remote:
        raise ModelError(f"the model in {folder} needs remote code ({remote}), which RobustLab never runs; use a "
                         f"model whose architecture transformers ships")
    if not any(folder.glob("*.safetensors")) and not (folder / "model.safetensors.index.json").exists():
        pickled = [file for file in PICKLE_WEIGHTS if (folder / file).exists()]
        if pickled:
            raise ModelError(f"the model in {folder} has only pickle weights ({', '.join(pickled)}); convert it to "
                             f"safetensors (RobustLab never unpickles a file, which can run code)")
        raise ModelError(f"the model in {folder} has no weights (model.safetensors)")
    parameters = estimated_parameters(config)
    memory = memory_bytes if memory_bytes is not None else _ram_bytes()
    needed = parameters * TRAINING_BYTES_PER_PARAMETER
    if needed > memory:
        raise ModelError(f"the model in {folder} has about {parameters / 1e9:,.1f} billion parameters by its "
                         f"config.json; training it needs about {needed / 2**30:,.0f} GiB "
                         f"({TRAINING_BYTES_PER_PARAMETER} bytes a parameter: weight, gradient and AdamW's two "
                         f"moments), more than the {memory / 2**30:,.0f} GiB of memory here")


def _config(folder: Path) -> dict[str, Any] | None:
    file = folder / "config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{file} is not a JSON config ({type(err).__name__})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{file} is not a JSON object")
    return config


def remote_code_reason(config: dict[str, Any]) -> str | None:
    """What in a config asks for code from the model's own repository (`auto_map`, a model type or architecture
    transformers does not ship), or None."""
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if config.get("auto_map"):
        return "its config.json has auto_map"
    model_type = config.get("model_type")
    if model_type is not None and model_type not in CONFIG_MAPPING_NAMES:
        return f"model type {quoted(str(model_type))} is not one transformers ships"
    custom = [a for a in config.get("architectures") or [] if not isinstance(a, str) or not hasattr(transformers, a)]
    if custom:
        return f"architecture {quoted(str(custom[0]))} is not one transformers ships"
    return None


def _count(config: dict[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelError(f"config.json's {key} must be a whole number >= 0 (got {quoted(value)})")
    return value


def estimated_parameters(config: dict[str, Any]) -> int:
    """A BERT-style encoder's parameter count from its config: the embedding tables
    (vocab + positions + token types) x hidden, plus per layer 4 hidden^2 (query, key, value, output) and
    2 hidden x intermediate (the feed-forward block), 12 hidden^2 at the usual intermediate of 4 hidden.
    Biases and LayerNorms (a few hidden per layer) are left out: under 1 % of the total."""
    hidden = _count(config, "hidden_size", 768)
    layers = _count(config, "num_hidden_layers", 12)
    intermediate = _count(config, "intermediate_size", 4 * hidden)
    tables = (_count(config, "vocab_size", 30522) + _count(config, "max_position_embeddings", 512)
              + _count(config, "type_vocab_size", 2))
    return tables * hidden + layers * (4 * hidden * hidden + 2 * hidden * intermediate)


def device_memory(device) -> int | None:
    """The memory a model trains in on `device` (a torch.device): a GPU's own; None (this machine's RAM) for the
    CPU and Apple's MPS, which share it."""
    import torch

    if getattr(device, "type", None) == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return None


def _ram_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().total)
