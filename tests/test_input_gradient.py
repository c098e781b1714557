"""The input-gradient norm the training loop records for every method at each dev evaluation: the mean
per-sentence norm of d CE / d word embeddings, measured without touching any parameter's gradient."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.data.batching import encode, pad_batch
from engine.explain.input_gradient import input_gradient_norm
from engine.methods import make_method
from engine.models.loading import build_classifier, load_tokenizer

TEXTS = ["a gripping, beautifully acted film", "dull", "it never finds its footing, and the jokes fall flat", "fine"]
LABELS = [1, 0, 0, 1]


def test_input_gradient_norm_is_the_mean_per_sentence_embedding_gradient():
    tokenizer = load_tokenizer("tiny")
    model = build_classifier("tiny", 2, seed=0)
    measured = input_gradient_norm(model, make_method("vanilla"), tokenizer, TEXTS, LABELS, 32)
    assert all(p.grad is None for p in model.parameters())
    batch = pad_batch(encode(tokenizer, TEXTS, 32), range(len(TEXTS)), tokenizer.pad_token_id)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model.eval()(inputs_embeds=embeds, attention_mask=mask).logits
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(logits, torch.tensor(LABELS), reduction="sum"), embeds)
    by_hand = (grad * mask.unsqueeze(-1)).flatten(1).norm(dim=1).mean()
    assert measured > 0 and measured == pytest.approx(float(by_hand), rel=1e-5)
