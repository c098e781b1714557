"""Model inference: the one batched forward pass every prediction goes through.

`batched_logits` is the single implementation of "tokenize, sort by length, pad each batch only to its
longest member, forward through `method.logits`, put the rows back in input order". Two call styles
sit on it:
- `predict_probs(model, method, tokenizer, texts)` for a model being trained or evaluated once (no
  cache; bf16 autocast on a GPU, the precision training runs in);
- `LoadedModel`, a finished run's model shared between threads (attacks, attribution, the Playground):
  one lock around each forward pass, because Captum's layer hooks would otherwise leak into another
  thread's forward pass, and an LRU cache of logits, because an attack asks for the same text many
  times (bypassed for a method whose logits depend on the rest of the batch). It runs in full precision, so
  an attack's scores are exact and repeatable.
"""
from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.data.batching import bucketed_batches, encode, pad_batch
from engine.data.text_dataset import SST2_LABELS, Input
from engine.models.device import autocast
from engine.store.runs import read_json


class Cancelled(Exception):
    """Raised inside a query when the caller asked to stop (a Cancel button, SIGTERM)."""


def label_names_for(run_dir: Path | str) -> list[str]:
    """A trained run's class names in id order, as training stored them (results.json). A run trained before
    they were stored: negative/positive for SST-2 and AdvGLUE-SST2, numbers for anything else (as many as its
    saved model has classes; none when its model's config cannot be read)."""
    run_dir = Path(run_dir)
    stored = read_json(run_dir / "results.json", {}).get("label_names")
    if stored:
        return [str(name) for name in stored]
    dataset = read_json(run_dir / "config.json", {}).get("dataset") or ""
    num_labels = len(read_json(run_dir / "model" / "config.json", {}).get("id2label") or {})
    if dataset.startswith(("sst2", "advglue")) and num_labels in (0, len(SST2_LABELS)):   # 0: no model config
        return list(SST2_LABELS)
    return [str(i) for i in range(num_labels)]


def segment_names_for(run_dir: Path | str) -> tuple[str, str] | None:
    """What a trained run's two texts are called when it reads sentence pairs (e.g. premise, hypothesis), as
    training stored them (results.json); None for a single-sentence model (and for runs trained before pairs)."""
    stored = read_json(Path(run_dir) / "results.json", {}).get("segment_names")
    return (str(stored[0]), str(stored[1])) if stored else None


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of a (N, C) logit array, row by row."""
    return torch.softmax(torch.from_numpy(logits), -1).numpy()


def batched_logits(model: torch.nn.Module, method, tokenizer, texts: list[Input], max_length: int,
                   batch_size: int, mixed_precision: bool = False, lock: threading.RLock | None = None,
                   should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Logits (N, C) as float32 in input order. Batches hold texts of similar length, padded only to their
    longest member. `lock` is held around each forward pass; `should_stop` is checked before each batch
    (raises `Cancelled`). The model is used as it is (put it in eval mode first)."""
    encoded = encode(tokenizer, texts, max_length)
    device = next(model.parameters()).device
    guard = lock if lock is not None else contextlib.nullcontext()
    out = np.zeros((len(texts), 0), dtype=np.float32)
    for chunk in bucketed_batches(encoded.lengths(), batch_size, None):
        if should_stop is not None and should_stop():
            raise Cancelled()
        batch = pad_batch(encoded, chunk, tokenizer.pad_token_id, device)
        with guard, torch.no_grad(), autocast(device, mixed_precision):
            rows = method.logits(model, batch).float().cpu().numpy()
        if out.shape[1] == 0:
            out = np.zeros((len(texts), rows.shape[1]), dtype=np.float32)
        out[chunk] = rows
    return out


def predict_probs(model: torch.nn.Module, method, tokenizer, texts: list[Input], max_length: int = 128,
                  batch_size: int = 128) -> np.ndarray:
    """Class probabilities (N, C) in input order, for a model being trained or evaluated once (no cache)."""
    model.eval()
    return softmax(batched_logits(model, method, tokenizer, texts, max_length, batch_size, mixed_precision=True))


class SerializedTokenizer:
    """A tokenizer shared by threads (two Playground tabs, an attack beside a saliency map): a fast (Rust)
    tokenizer resets its truncation settings on every call and fails a second caller mid-call with "Already
    borrowed", so each call through this holds the model's lock. Attributes read through unchanged."""

    def __init__(self, tokenizer, lock: threading.RLock) -> None:
        self._tokenizer = tokenizer
        self._lock = lock

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self._tokenizer, name)
        if not callable(value):
            return value

        def locked(*args, **kwargs):
            with self._lock:
                return value(*args, **kwargs)

        return locked


class LoadedModel:
    """A trained model for inference from several threads: a lock around each forward pass and an LRU
    cache of logits for texts already seen (an attack asks for the same text many times)."""

    def __init__(self, model: torch.nn.Module, tokenizer, method, max_length: int = 128,
                 label_names: list[str] | None = None, run_id: str | None = None, cache_size: int = 50_000,
                 segment_names: tuple[str, str] | None = None) -> None:
        self.model = model.eval()
        self.lock = threading.RLock()
        self.tokenizer = SerializedTokenizer(tokenizer, self.lock)
        self.method = method
        self.max_length = int(max_length)
        num_labels = int(getattr(getattr(model, "config", None), "num_labels", 0) or 2)
        self.label_names = list(label_names or [str(i) for i in range(num_labels)])
        self.run_id = run_id
        self.segment_names = segment_names   # a sentence-pair model's two segments; None: single sentences
        self._cache: OrderedDict[Input, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.stats = {"texts": 0, "cache_hits": 0, "forward_texts": 0}

    @classmethod
    def from_run(cls, run_dir: Path | str, device: torch.device | str = "cpu") -> LoadedModel:
        """Load a finished run's model; max length from its config, class names as the run stored them."""
        from engine.models.loading import load_trained

        run_dir = Path(run_dir)
        model, tokenizer, method = load_trained(run_dir, device)
        config = read_json(run_dir / "config.json", {})
        return cls(model, tokenizer, method, config.get("max_length", 128),
                   label_names_for(run_dir), run_dir.name, segment_names=segment_names_for(run_dir))

    @property
    def is_pair(self) -> bool:
        return self.segment_names is not None

    def input_problem(self, given: Input) -> str | None:
        """Why `given` does not fit this model (a pair for a single-sentence model, or the reverse), else None."""
        if self.segment_names is not None and not isinstance(given, tuple):
            return (f"this model reads sentence pairs ({' / '.join(self.segment_names)}); give both segments, "
                    f"not one text")
        if self.segment_names is None and isinstance(given, tuple):
            return "this model reads single sentences; give one text, not a pair"
        return None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def logits(self, texts: list[Input], should_stop: Callable[[], bool] | None = None,
               batch_size: int = 64) -> np.ndarray:
        """Logits (N, C) in input order. Cached texts are not recomputed; the rest go through
        `batched_logits` once each. `should_stop` is checked before each batch. A method whose logits depend
        on the rest of the batch (Match-Tuning's in-batch mode) gets every query computed as asked: no cache,
        no merging of repeated texts."""
        if self.method.batch_dependent_logits:
            rows = batched_logits(self.model, self.method, self.tokenizer, list(texts), self.max_length, batch_size,
                                  lock=self.lock, should_stop=should_stop)
            with self._cache_lock:
                self.stats["texts"] += len(texts)
                self.stats["forward_texts"] += len(texts)
            return rows if len(texts) else np.zeros((0, len(self.label_names)), dtype=np.float32)
        out: list[np.ndarray | None] = [None] * len(texts)
        todo: dict[Input, list[int]] = {}
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
            rows = batched_logits(self.model, self.method, self.tokenizer, unique, self.max_length, batch_size,
                                  lock=self.lock, should_stop=should_stop)
            with self._cache_lock:
                self.stats["forward_texts"] += len(unique)
                for text, row in zip(unique, rows):
                    self._cache[text] = row
                    for i in todo[text]:
                        out[i] = row
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, len(self.label_names)), dtype=np.float32)

    def probs(self, texts: list[Input], should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        return softmax(self.logits(texts, should_stop))
