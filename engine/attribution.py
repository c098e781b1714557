"""Word-level explanations of one prediction: integrated gradients, gradient x input, attention.

Scores are computed per word piece and summed onto the words the user typed (whitespace-separated
spans of the original text, found through the fast tokenizer's character offsets), so a heat map can
be drawn over the text exactly as it was entered. Integrated gradients also reports its completeness
error: the sum of the attributions against the change in the output between baseline and input.

`LoadedModel` is a trained run's model made safe to share between threads (one lock around every
forward pass, because Captum's layer hooks would otherwise leak into another thread's forward pass)
with a cache of repeated queries; the attack wrapper in `engine.attacks` uses the same object.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.data import SST2_LABELS, pad_batch

METHODS = {"ig": "Integrated gradients", "gxi": "Gradient × input", "attention": "Attention"}
IG_STEPS = 32


class AttributionError(ValueError):
    """An explanation cannot be computed for this input or model; the message says why."""


class Cancelled(Exception):
    """Raised inside a query when the caller asked to stop (a Cancel button, SIGTERM)."""


# ---------------------------------------------------------------- the shared model

class LoadedModel:
    """A trained model for inference from several threads: a lock around each forward pass and an LRU
    cache of logits for texts already seen (an attack asks for the same text many times)."""

    def __init__(self, model: torch.nn.Module, tokenizer, method, max_length: int = 128,
                 label_names: list[str] | None = None, run_id: str | None = None, cache_size: int = 50_000) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.method = method
        self.max_length = int(max_length)
        num_labels = int(getattr(getattr(model, "config", None), "num_labels", 0) or 2)
        self.label_names = list(label_names or [str(i) for i in range(num_labels)])
        self.run_id = run_id
        self.lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.stats = {"texts": 0, "cache_hits": 0, "forward_texts": 0}

    @classmethod
    def from_run(cls, run_dir: Path | str, device: torch.device | str = "cpu") -> "LoadedModel":
        """Load a finished run's model; max length and label names come from its config."""
        from engine.models import load_trained
        from engine.runs import read_json

        run_dir = Path(run_dir)
        model, tokenizer, method = load_trained(run_dir, device)
        config = read_json(run_dir / "config.json", {})
        return cls(model, tokenizer, method, config.get("max_length", 128),
                   label_names_for(config.get("dataset", ""), model.config.num_labels), run_dir.name)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def logits(self, texts: list[str], should_stop: Callable[[], bool] | None = None,
               batch_size: int = 64) -> np.ndarray:
        """Logits (N, C) in input order. Cached texts are not recomputed; the rest run in batches of
        similar length padded only to their longest member. `should_stop` is checked before each batch."""
        out: list[np.ndarray | None] = [None] * len(texts)
        todo: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    out[i] = hit
                else:
                    todo.setdefault(text, []).append(i)
            self.stats["texts"] += len(texts)
            self.stats["cache_hits"] += len(texts) - sum(len(v) for v in todo.values())
        if todo:
            unique = list(todo)
            ids = self.tokenizer(unique, truncation=True, max_length=self.max_length)["input_ids"]
            order = np.argsort([len(x) for x in ids], kind="stable")
            computed: dict[str, np.ndarray] = {}
            for start in range(0, len(order), batch_size):
                if should_stop is not None and should_stop():
                    raise Cancelled()
                chunk = order[start:start + batch_size]
                input_ids, mask = pad_batch([ids[j] for j in chunk], self.tokenizer.pad_token_id)
                with self.lock, torch.inference_mode():
                    logits = self.method.logits(self.model, {"input_ids": input_ids.to(self.device),
                                                             "attention_mask": mask.to(self.device)})
                rows = logits.float().cpu().numpy()
                for j, row in zip(chunk, rows):
                    computed[unique[j]] = row
            with self._cache_lock:
                self.stats["forward_texts"] += len(unique)
                for text, row in computed.items():
                    self._cache[text] = row
                    for i in todo[text]:
                        out[i] = row
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, len(self.label_names)), dtype=np.float32)

    def probs(self, texts: list[str], should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        logits = self.logits(texts, should_stop)
        return torch.softmax(torch.from_numpy(logits), -1).numpy()


def label_names_for(dataset: str, num_labels: int) -> list[str]:
    """Readable class names: SST-2 and AdvGLUE-SST2 are negative/positive; anything else is numbered."""
    if (dataset.startswith("sst2") or dataset.startswith("advglue")) and num_labels == len(SST2_LABELS):
        return list(SST2_LABELS)
    return [str(i) for i in range(num_labels)]


# ---------------------------------------------------------------- input text

@dataclass
class FittedText:
    """The text the model will actually read, and what was done to the input to get it."""
    text: str
    original_chars: int
    truncated: bool = False
    total_tokens: int = 0
    kept_tokens: int = 0
    removed_controls: int = 0

    def notices(self) -> list[str]:
        out = []
        if self.removed_controls:
            out.append(f"Removed {self.removed_controls} control character(s) (invisible codes that are not text).")
        if self.truncated:
            out.append(f"The text is {self.total_tokens:,} word pieces long; the model reads at most "
                       f"{self.kept_tokens:,}, so only the first {len(self.text):,} of {self.original_chars:,} "
                       f"characters are used.")
        return out


_KEEP_CONTROLS = {"\t", "\n", "\r"}


def fit_text(tokenizer, text: str, max_length: int) -> FittedText:
    """Drop control characters (keeping tabs and newlines, and keeping zero-width and direction marks,
    which are real text), then cut the text where the model's `max_length` word pieces end."""
    cleaned = "".join(c for c in text if c in _KEEP_CONTROLS or unicodedata.category(c) != "Cc")
    removed = len(text) - len(cleaned)
    enc = tokenizer(cleaned, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                    verbose=False)
    offsets = enc["offset_mapping"]
    keep = max(1, max_length - tokenizer.num_special_tokens_to_add())
    fitted = FittedText(cleaned, len(text), False, len(offsets), min(len(offsets), keep), removed)
    if len(offsets) > keep:
        fitted.text = cleaned[:offsets[keep - 1][1]].rstrip()
        fitted.truncated = True
    return fitted


@dataclass(frozen=True)
class WordSpan:
    start: int
    end: int
    text: str


def word_spans(text: str) -> list[WordSpan]:
    """The words as the user sees them: maximal runs of non-whitespace characters."""
    return [WordSpan(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]


# ---------------------------------------------------------------- attributions

@dataclass
class Attribution:
    """One explanation of one prediction, word by word over the original text."""
    text: str
    how: str
    target: int
    label_names: list[str]
    probs: list[float]
    words: list[WordSpan]
    scores: list[float]                  # one per word; signed for ig/gxi (positive = supports target)
    tokens: list[str] = field(default_factory=list)
    token_scores: list[float] = field(default_factory=list)
    token_word: list[int] = field(default_factory=list)   # word index of each token, -1 for special tokens
    completeness: dict[str, float] | None = None

    @property
    def target_name(self) -> str:
        return self.label_names[self.target]

    def describe(self) -> str:
        """What the scores mean, and for integrated gradients how complete they are (for a hover)."""
        if self.how == "attention":
            return ("Share of the [CLS] token's attention in the last layer (mean over heads) that lands on "
                    "each word. Attention shows where the model looks, not what changes its decision.")
        name = METHODS[self.how]
        text = (f"{name} for p({self.target_name}). Orange words push toward {self.target_name}, blue words "
                f"push away from it.")
        if self.completeness:
            c = self.completeness
            text += (f" Completeness: the attributions sum to {c['sum']:+.4f}; p({self.target_name}) changes by "
                     f"{c['delta_output']:+.4f} from the all-[PAD] baseline to this text; error "
                     f"{c['error']:+.2e} ({c['relative_error']:.2%}, {IG_STEPS} steps).")
        return text


def word_embedding_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The token embedding table (not positions or segments), also inside a method's wrapper module."""
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        try:
            layer = getter()
            if layer is not None:
                return layer
        except (NotImplementedError, AttributeError):
            pass
    for name, module in model.named_modules():
        if name.endswith("word_embeddings") and isinstance(module, torch.nn.Embedding):
            return module
    raise AttributionError("this model has no word-embedding layer to attribute to")


def explain(loaded: LoadedModel, text: str, how: str = "ig", target: int | None = None,
            steps: int = IG_STEPS) -> Attribution:
    """Attribute the prediction for `text` (already fitted to the model) to its words.

    `target` defaults to the predicted class. Raises AttributionError for empty text or an unknown method.
    """
    if how not in METHODS:
        raise AttributionError(f"unknown attribution method {how!r}; choose one of {', '.join(METHODS)}")
    if not text.strip():
        raise AttributionError("there is no text to explain")
    tok = loaded.tokenizer
    enc = tok(text, truncation=True, max_length=loaded.max_length, return_offsets_mapping=True,
              return_special_tokens_mask=True)
    words = word_spans(text)
    starts = [w.start for w in words]
    token_word = []
    for (begin, end), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        if special or end <= begin:
            token_word.append(-1)
        else:
            token_word.append(int(np.searchsorted(starts, begin, side="right")) - 1)
    input_ids = torch.tensor([enc["input_ids"]], device=loaded.device)
    mask = torch.ones_like(input_ids)
    model, method = loaded.model, loaded.method

    def prob_of(target_class: int) -> Callable[..., torch.Tensor]:
        def forward(ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            if attention_mask.shape[0] != ids.shape[0]:
                attention_mask = attention_mask.expand(ids.shape[0], -1)
            logits = method.logits(model, {"input_ids": ids, "attention_mask": attention_mask})
            return torch.softmax(logits.float(), -1)[:, target_class]
        return forward

    completeness = None
    with loaded.lock:
        with torch.no_grad():
            logits = method.logits(model, {"input_ids": input_ids, "attention_mask": mask})
        probs = torch.softmax(logits.float(), -1)[0]
        target = int(probs.argmax()) if target is None else int(target)
        if not 0 <= target < probs.shape[0]:
            raise AttributionError(f"class {target} does not exist; the model has {probs.shape[0]} classes")
        if how == "attention":
            token_scores = _cls_attention(model, input_ids, mask)
        else:
            from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

            layer = word_embedding_layer(model)
            forward = prob_of(target)
            if how == "ig":
                baseline = input_ids.clone()
                specials = torch.tensor(enc["special_tokens_mask"], device=input_ids.device).bool()
                baseline[0, ~specials] = tok.pad_token_id
                lig = LayerIntegratedGradients(forward, layer)
                attributions, delta = lig.attribute(input_ids, baselines=baseline, additional_forward_args=(mask,),
                                                    n_steps=steps, internal_batch_size=steps,
                                                    return_convergence_delta=True)
                total, error = float(attributions.sum()), float(delta.sum())
                change = total - error   # Captum's delta is sum(attributions) - (f(input) - f(baseline))
                completeness = {"sum": total, "delta_output": change, "error": error,
                                "relative_error": abs(error) / max(abs(change), 1e-6)}
            else:
                attributions = LayerGradientXActivation(forward, layer).attribute(
                    input_ids, additional_forward_args=(mask,))
            token_scores = attributions[0].sum(-1).detach().float().cpu().numpy()
    scores = np.zeros(len(words), dtype=np.float64)
    for t, w in enumerate(token_word):
        if w >= 0:
            scores[w] += float(token_scores[t])
    return Attribution(text, how, target, loaded.label_names, probs.tolist(), words, scores.tolist(),
                       tok.convert_ids_to_tokens(enc["input_ids"]), [float(s) for s in token_scores],
                       token_word, completeness)


def _cls_attention(model: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Attention from [CLS] to every token in the last layer, averaged over heads."""
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = model(input_ids=input_ids, attention_mask=mask, output_attentions=True)
        except TypeError as err:
            raise AttributionError("this model does not report its attention weights") from err
    attentions = getattr(out, "attentions", None)
    if not attentions:
        raise AttributionError("this model does not report its attention weights")
    return attentions[-1][0].mean(0)[0].float().cpu().numpy()
