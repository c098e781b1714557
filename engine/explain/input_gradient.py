"""How strongly a model's loss reacts to a small change of its input: the norm of the gradient of each
sentence's cross-entropy with respect to its word embeddings.

The training loop measures it at every dev evaluation, for every method alike, on the same fixed dev
sentences (eval mode, float32), so a method's page can overlay another run's curve: UEGR's forward stage
is claimed to act as gradient regularisation, which shows as a lower curve than vanilla's.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from engine.data.batching import encode, pad_batch
from engine.data.text_dataset import Input
from engine.models.architecture import word_embeddings

PROBE_SIZE = 64   # dev sentences measured at each evaluation: the first ones of the (seeded) dev sample


def input_gradient_norm(model: nn.Module, method, tokenizer, texts: list[Input], labels: list[int],
                        max_length: int) -> float:
    """Mean over the sentences of ||d CE_i / d e_i||_F, e_i the word embeddings of sentence i (padding
    excluded), read where the model's embedding table hands them on, so any method's `logits` is measured
    the same way. Touches no parameter's .grad and no random state (eval mode: no dropout)."""
    if not texts:
        return math.nan
    device = next(model.parameters()).device
    encoded = encode(tokenizer, texts, max_length)
    batch = {**pad_batch(encoded, range(len(texts)), tokenizer.pad_token_id, device),
             "labels": torch.as_tensor(labels, device=device)}
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
        output = output if output.requires_grad else output.detach().requires_grad_(True)
        captured.append(output)
        return output

    model.eval()
    handle = word_embeddings(model).register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = method.logits(model, batch)
            loss = nn.functional.cross_entropy(logits.float(), batch["labels"], reduction="sum")
            if not captured:
                return math.nan
            (grad,) = torch.autograd.grad(loss, captured[-1])
    finally:
        handle.remove()
    grad = grad.float() * batch["attention_mask"].unsqueeze(-1)
    return float(grad.flatten(1).norm(dim=1).mean())
