"""The TextAttack model wrapper, where the speed of an attack is.

TextAttack's stock `HuggingFaceModelWrapper` pads every query to 512 tokens; ours goes through
`LoadedModel`, which sorts each batch by length, pads only to its longest member, and never runs the
same text twice (a cache shared by every attack on that model). TextAttack itself is imported only when
an attack is built (importing it takes seconds), so listing recipes stays instant.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from engine.data.text_dataset import Input
from engine.models.heavy_imports import textattack_module
from engine.models.inference import Cancelled, LoadedModel
from engine.paths import use_project_nltk_data

use_project_nltk_data()   # before nltk or TextAttack is imported; the recipes import this module first


class FastModelWrapper:
    """A TextAttack model wrapper over a `LoadedModel`: logits for a list of texts, batched by length,
    padded dynamically, cached. `should_stop` is polled before every batch and raises `Cancelled`. A
    multi-input attack hands it (first, second) tuples, which `LoadedModel` reads as sentence pairs.

    It is registered as a virtual subclass of `textattack.models.wrappers.ModelWrapper` when TextAttack
    is imported, so TextAttack treats it like its own wrappers.
    """

    def __init__(self, loaded: LoadedModel, should_stop: Callable[[], bool] | None = None,
                 batch_size: int = 64) -> None:
        self.loaded = loaded
        self.model = loaded.model          # TextAttack checks model/goal-function compatibility on this
        self.tokenizer = loaded.tokenizer
        self.should_stop = should_stop
        self.batch_size = batch_size
        self.calls = 0

    def __call__(self, text_input_list: list[Input], **_: Any) -> torch.Tensor:
        self.calls += 1
        if self.should_stop is not None and self.should_stop():
            raise Cancelled()
        return torch.from_numpy(self.loaded.logits(list(text_input_list), self.should_stop, self.batch_size))

    def tokenize(self, inputs: list[Input], strip_prefix: bool = False) -> list[list[str]]:
        tokens = [self.tokenizer.convert_ids_to_tokens(
                      self.tokenizer(*((x,) if isinstance(x, str) else x), truncation=True)["input_ids"])
                  for x in inputs]
        return [[t.replace("##", "") for t in seq] for seq in tokens] if strip_prefix else tokens

    def get_grad(self, text_input: str) -> dict:
        raise NotImplementedError("RobustLab's recipes are black-box; gradient-guided search is not wired up")


def import_textattack():
    """Import TextAttack (slow, once, under `engine.models.heavy_imports`' lock) and make our wrapper one of its model
    wrappers."""
    textattack = textattack_module()
    textattack.models.wrappers.ModelWrapper.register(FastModelWrapper)
    return textattack
