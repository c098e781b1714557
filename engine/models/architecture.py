"""Where a BERT-style classifier keeps its parts: its embeddings, its list of encoder layers, its word-embedding
table. The one place that knows a model's layout, below the methods (which change layers) and everything that loads
or probes a model."""
from __future__ import annotations

from torch import nn


class ModelError(ValueError):
    """A model cannot be found or loaded; the message says why."""


class NotBertError(ModelError):
    """The model is not a BERT-style encoder (embeddings, then a list of encoder layers)."""


def encoder_parts(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """(embeddings module, encoder layer list) of a BERT-style classifier, also after a method changed it.

    The only place that knows where a BERT keeps its parts; the list is the model's own, so replacing
    an entry replaces the layer.
    """
    base = getattr(model, "base_model", model)
    embeddings = getattr(base, "embeddings", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if embeddings is None or not isinstance(layers, nn.ModuleList):
        raise NotBertError(f"{type(model).__name__} is not a BERT-style encoder (it has no embeddings and "
                           f"encoder.layer list); this needs one")
    return embeddings, layers


def word_embeddings(model: nn.Module) -> nn.Embedding:
    """The token embedding table of a BERT-style model (not positions or segments)."""
    table = getattr(encoder_parts(model)[0], "word_embeddings", None)
    if not isinstance(table, nn.Embedding):
        raise NotBertError(f"{type(model).__name__} has no word-embedding table (embeddings.word_embeddings)")
    return table
