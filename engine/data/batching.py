"""Tokenising and batching: length-bucketed batches padded only to their longest sentence; that, not the
model, is where most CPU time goes on short SST-2 sentences."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.data.text_dataset import Input, TextDataset

# ---------------------------------------------------------------- tokenising and batching

@dataclass
class Encoded:
    """Token ids of a dataset, unpadded, with their labels; for pairs also the segment ids where the
    tokenizer gives them (BERT's token_type_ids: 0 for the first segment, 1 for the second)."""
    ids: list[list[int]]
    labels: list[int]
    token_types: list[list[int]] | None = None

    def lengths(self) -> np.ndarray:
        """Tokens per example (a pair's both segments and special tokens): what length-bucketing sorts by."""
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def encode(tokenizer, inputs: Sequence[Input], max_length: int) -> Encoded:
    """Tokenize sentences, or pairs with the tokenizer's pair encoding (the longer segment is truncated
    first). Labels are left empty for the caller to fill."""
    if not inputs:
        return Encoded([], [])
    if isinstance(inputs[0], tuple):
        if not all(isinstance(x, tuple) and len(x) == 2 for x in inputs):
            raise ValueError("inputs mix sentences and sentence pairs")
        out = tokenizer([a for a, _ in inputs], [b for _, b in inputs], truncation=True, max_length=max_length,
                        add_special_tokens=True)
        return Encoded(out["input_ids"], [], out.get("token_type_ids"))
    out = tokenizer(list(inputs), truncation=True, max_length=max_length, add_special_tokens=True)
    return Encoded(out["input_ids"], [])


def encode_dataset(tokenizer, data: TextDataset, max_length: int) -> Encoded:
    encoded = encode(tokenizer, data.inputs, max_length)
    encoded.labels = list(data.labels)
    return encoded


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                     pool: int = 50) -> list[np.ndarray]:
    """Index batches of similar length: shuffle, sort inside pools of `pool` batches, shuffle the batches.

    With rng None (evaluation) the batches are simply sorted by length.
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    chunk = batch_size * pool
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(encoded: Encoded, rows: Sequence[int], pad_id: int,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The model inputs of some rows, padded to their longest: input_ids, attention_mask, and
    token_type_ids when the rows are pairs with segment ids."""
    ids = [encoded.ids[i] for i in rows]
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    batch = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
    if encoded.token_types is not None:
        types = torch.zeros((len(ids), width), dtype=torch.long)
        for row, i in enumerate(rows):
            types[row, :len(encoded.token_types[i])] = torch.tensor(encoded.token_types[i], dtype=torch.long)
        batch["token_type_ids"] = types.to(device)
    return batch


def model_inputs(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments a model's forward takes from a batch (segment ids only when it has them)."""
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {k: batch[k] for k in keys if k in batch}


def iter_batches(encoded: Encoded, batches: list[np.ndarray], pad_id: int,
                 device: torch.device | str = "cpu") -> Iterator[dict[str, torch.Tensor]]:
    for idx in batches:
        batch = pad_batch(encoded, idx, pad_id, device)
        batch["labels"] = torch.tensor([encoded.labels[i] for i in idx], dtype=torch.long, device=device)
        batch["index"] = torch.as_tensor(idx)
        yield batch
