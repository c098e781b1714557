"""Word-level explanations of one prediction: integrated gradients, gradient x input, attention.

Scores are computed per word piece and summed onto the words the user typed (whitespace-separated
spans of the original text, found through the fast tokenizer's character offsets), so a heat map can
be drawn over the text exactly as it was entered. A sentence-pair model's input is explained over both
segments, read with their segment ids; the [SEP] between them keeps a score of its own, so a view can show
the boundary. Integrated gradients also reports its completeness
error: the sum of the attributions against the change in the output between baseline and input.

Explanations run on an `engine.models.inference.LoadedModel` and hold its lock while Captum's hooks are on the
model, so no other thread's forward pass goes through them.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.data.text_dataset import Input
from engine.models.architecture import NotBertError, word_embeddings
from engine.models.inference import LoadedModel
from engine.user_text import quoted

EXPLAINERS = {"ig": "Integrated gradients", "gxi": "Gradient × input", "attention": "Attention"}
IG_STEPS = 32


class AttributionError(ValueError):
    """An explanation cannot be computed for this input or model; the message says why."""


# ---------------------------------------------------------------- input text

@dataclass
class FittedText:
    """The text the model will actually read (for a pair model, both segments), and what was done to the
    input to get it."""
    text: str
    original_chars: int
    truncated: bool = False
    total_tokens: int = 0
    kept_tokens: int = 0
    removed_controls: int = 0
    long_words: list[int] = field(default_factory=list)   # lengths of words read whole as the unknown token
    text_b: str | None = None                             # a pair's second segment, as the model reads it
    original_chars_b: int = 0

    @property
    def input(self) -> Input:
        """What the model reads: the sentence, or the (first, second) pair."""
        return self.text if self.text_b is None else (self.text, self.text_b)

    def notices(self) -> list[str]:
        out = []
        if self.removed_controls:
            out.append(f"Removed {self.removed_controls} control character(s) (invisible codes that are not text).")
        for chars in self.long_words:
            out.append(f"A word of {chars:,} characters was read as one unknown token [UNK]: the tokenizer does not "
                       f"split a word longer than {LONG_WORD_CHARS} characters, so the model sees none of it.")
        if self.truncated and self.text_b is not None:
            out.append(f"The pair is {self.total_tokens:,} word pieces long; the model reads at most "
                       f"{self.kept_tokens:,}, so the longer segment is cut first: it uses the first "
                       f"{len(self.text):,} of {self.original_chars:,} characters of the first segment and "
                       f"{len(self.text_b):,} of {self.original_chars_b:,} of the second.")
        elif self.truncated:
            out.append(f"The text is {self.total_tokens:,} word pieces long; the model reads at most "
                       f"{self.kept_tokens:,}, so only the first {len(self.text):,} of {self.original_chars:,} "
                       f"characters are used.")
        return out


_KEEP_CONTROLS = {"\t", "\n", "\r"}
LONG_WORD_CHARS = 100   # BERT's WordPiece reads a longer word as one [UNK] (max_input_chars_per_word)


def _pieces(tokenizer, text: str) -> tuple[str, int, list[tuple[int, int]], list[int]]:
    """(text without control characters, how many were dropped, its word-piece offsets, their ids). Tabs,
    newlines, zero-width and direction marks are kept: they are real text."""
    cleaned = "".join(c for c in text if c in _KEEP_CONTROLS or unicodedata.category(c) != "Cc")
    enc = tokenizer(cleaned, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                    verbose=False)
    return cleaned, len(text) - len(cleaned), enc["offset_mapping"], enc["input_ids"]


def _long_words(tokenizer, ids: list[int], offsets: list[tuple[int, int]], keep: int) -> list[int]:
    """The lengths of the words among the first `keep` pieces that were read whole as one [UNK]."""
    return [end - start for token, (start, end) in zip(ids[:keep], offsets[:keep])
            if token == tokenizer.unk_token_id and end - start > LONG_WORD_CHARS]


def _cut(text: str, offsets: list[tuple[int, int]], keep: int) -> str:
    """The text up to where its first `keep` word pieces end."""
    if len(offsets) <= keep:
        return text
    return text[:offsets[keep - 1][1]].rstrip() if keep else ""


def fit_text(tokenizer, text: str, max_length: int) -> FittedText:
    """Drop control characters, then cut the text where the model's `max_length` word pieces end; note the
    words too long for the tokenizer, which become one [UNK] each."""
    cleaned, removed, offsets, ids = _pieces(tokenizer, text)
    keep = max(1, max_length - tokenizer.num_special_tokens_to_add())
    return FittedText(_cut(cleaned, offsets, keep), len(text), len(offsets) > keep, len(offsets),
                      min(len(offsets), keep), removed, _long_words(tokenizer, ids, offsets, keep))


def fit_pair(tokenizer, first: str, second: str, max_length: int) -> FittedText:
    """`fit_text` for a sentence pair: the two segments share the model's `max_length` word pieces and the
    longer one is cut first, a piece at a time (the tokenizer's own `longest_first` truncation), so the
    fitted pair is what the model reads."""
    cleaned_a, removed_a, offsets_a, ids_a = _pieces(tokenizer, first)
    cleaned_b, removed_b, offsets_b, ids_b = _pieces(tokenizer, second)
    budget = max(2, max_length - tokenizer.num_special_tokens_to_add(pair=True))
    keep_a, keep_b = len(offsets_a), len(offsets_b)
    while keep_a + keep_b > budget:
        if keep_a > keep_b:
            keep_a -= 1
        else:
            keep_b -= 1
    total = len(offsets_a) + len(offsets_b)
    long_words = _long_words(tokenizer, ids_a, offsets_a, keep_a) + _long_words(tokenizer, ids_b, offsets_b, keep_b)
    return FittedText(_cut(cleaned_a, offsets_a, keep_a), len(first), total > budget, total, keep_a + keep_b,
                      removed_a + removed_b, long_words, _cut(cleaned_b, offsets_b, keep_b), len(second))


def fit_input(tokenizer, given: Input, max_length: int) -> FittedText:
    """`fit_text` for a sentence, `fit_pair` for a (first, second) pair."""
    if isinstance(given, tuple):
        return fit_pair(tokenizer, given[0], given[1], max_length)
    return fit_text(tokenizer, given, max_length)


@dataclass(frozen=True)
class WordSpan:
    start: int           # character offsets in its segment's text
    end: int
    text: str
    segment: int = 0     # 0: the sentence, or a pair's first segment; 1: a pair's second segment


def word_spans(text: str, segment: int = 0) -> list[WordSpan]:
    """The words as the user sees them: maximal runs of non-whitespace characters."""
    return [WordSpan(m.start(), m.end(), m.group(), segment) for m in re.finditer(r"\S+", text)]


# ---------------------------------------------------------------- attributions

@dataclass
class Explanation:
    """One explanation of one prediction, word by word over the original text (a pair's words: the first
    segment's, then the second's)."""
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
    text_b: str | None = None                        # a pair's second segment
    segment_names: tuple[str, str] | None = None     # a pair model's names for its two segments
    boundary_score: float | None = None              # the score of the [SEP] between a pair's two segments

    @property
    def input(self) -> Input:
        return self.text if self.text_b is None else (self.text, self.text_b)

    @property
    def target_name(self) -> str:
        return self.label_names[self.target]

    def describe(self) -> str:
        """What the scores mean, and for integrated gradients how complete they are (for a hover)."""
        if self.how == "attention":
            return ("Share of the [CLS] token's attention in the last layer (mean over heads) that lands on "
                    "each word. Attention shows where the model looks, not what changes its decision.")
        name = EXPLAINERS[self.how]
        text = (f"{name} for p({self.target_name}). Orange words push toward {self.target_name}, blue words "
                f"push away from it.")
        if self.completeness:
            c = self.completeness
            text += (f" Completeness: the attributions sum to {c['sum']:+.4f}; p({self.target_name}) changes by "
                     f"{c['delta_output']:+.4f} from the all-[PAD] baseline to this text; error "
                     f"{c['error']:+.2e} ({c['relative_error']:.2%}, {IG_STEPS} steps).")
        return text


def explain(loaded: LoadedModel, given: Input, how: str = "ig", target: int | None = None,
            steps: int = IG_STEPS) -> Explanation:
    """Attribute the prediction for `given` (a sentence, or a (first, second) pair for a pair model; already
    fitted to the model) to its words. A pair is read with its segment ids, and the [SEP] between its segments
    gets its own score (`boundary_score`).

    `target` defaults to the predicted class. Raises AttributionError for empty text, input of the wrong shape
    for the model, or an unknown method.
    """
    if how not in EXPLAINERS:
        raise AttributionError(f"unknown attribution method {quoted(how)}; choose one of {', '.join(EXPLAINERS)}")
    problem = loaded.input_problem(given)
    if problem:
        raise AttributionError(problem)
    first, second = given if isinstance(given, tuple) else (given, None)
    if not first.strip() and not (second or "").strip():
        raise AttributionError("there is no text to explain")
    if second is not None and not (first.strip() and second.strip()):
        empty = loaded.segment_names[0 if not first.strip() else 1]
        raise AttributionError(f"the {empty} is empty: a pair model reads both segments")
    tok = loaded.tokenizer
    enc = tok(first, second, truncation=True, max_length=loaded.max_length, return_offsets_mapping=True,
              return_special_tokens_mask=True)
    segment_of = enc.sequence_ids()      # 0 or 1 per token, None for [CLS], [SEP], ...
    words = word_spans(first) + (word_spans(second, 1) if second is not None else [])
    starts = [[w.start for w in words if w.segment == s] for s in (0, 1)]
    token_word = []
    for (begin, end), segment in zip(enc["offset_mapping"], segment_of):
        if segment is None or end <= begin:
            token_word.append(-1)
        else:
            offset = 0 if segment == 0 else len(starts[0])
            token_word.append(offset + int(np.searchsorted(starts[segment], begin, side="right")) - 1)
    input_ids = torch.tensor([enc["input_ids"]], device=loaded.device)
    mask = torch.ones_like(input_ids)
    types = torch.tensor([enc["token_type_ids"]], device=loaded.device) if "token_type_ids" in enc else None
    model, method = loaded.model, loaded.method

    def prob_of(target_class: int) -> Callable[..., torch.Tensor]:
        def forward(ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            batch = {"input_ids": ids, "attention_mask": attention_mask.expand(ids.shape[0], -1)}
            if token_type_ids is not None:
                batch["token_type_ids"] = token_type_ids.expand(ids.shape[0], -1)
            logits = method.logits(model, batch)
            return torch.softmax(logits.float(), -1)[:, target_class]
        return forward

    completeness = None
    probs = loaded.probs([given])[0]
    target = int(probs.argmax()) if target is None else int(target)
    if not 0 <= target < probs.shape[0]:
        raise AttributionError(f"class {target} does not exist; the model has {probs.shape[0]} classes")
    extra = (mask,) if types is None else (mask, types)
    with loaded.lock:
        if how == "attention":
            token_scores = _cls_attention(model, input_ids, mask, types)
        else:
            from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

            try:
                layer = word_embeddings(model)
            except NotBertError as err:
                raise AttributionError(str(err)) from err
            forward = prob_of(target)
            if how == "ig":
                baseline = input_ids.clone()
                specials = torch.tensor(enc["special_tokens_mask"], device=input_ids.device).bool()
                baseline[0, ~specials] = tok.pad_token_id
                lig = LayerIntegratedGradients(forward, layer)
                attributions, delta = lig.attribute(input_ids, baselines=baseline, additional_forward_args=extra,
                                                    n_steps=steps, internal_batch_size=steps,
                                                    return_convergence_delta=True)
                total, error = float(attributions.sum()), float(delta.sum())
                change = total - error   # Captum's delta is sum(attributions) - (f(input) - f(baseline))
                completeness = {"sum": total, "delta_output": change, "error": error,
                                "relative_error": abs(error) / max(abs(change), 1e-6)}
            else:
                attributions = LayerGradientXActivation(forward, layer).attribute(
                    input_ids, additional_forward_args=extra)
            token_scores = attributions[0].sum(-1).detach().float().cpu().numpy()
    scores = np.zeros(len(words), dtype=np.float64)
    for t, w in enumerate(token_word):
        if w >= 0:
            scores[w] += float(token_scores[t])
    boundary = None
    if second is not None:   # the [SEP] closing the first segment: the first special token after it
        last_first = max(t for t, s in enumerate(segment_of) if s == 0)
        boundary = float(token_scores[last_first + 1])
    return Explanation(first, how, target, loaded.label_names, probs.tolist(), words, scores.tolist(),
                       tok.convert_ids_to_tokens(enc["input_ids"]), [float(s) for s in token_scores],
                       token_word, completeness, second, loaded.segment_names, boundary)


def _cls_attention(model: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor,
                   types: torch.Tensor | None) -> np.ndarray:
    """Attention from [CLS] to every token in the last layer, averaged over heads."""
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            segments = {} if types is None else {"token_type_ids": types}
            out = model(input_ids=input_ids, attention_mask=mask, **segments, output_attentions=True)
        except TypeError as err:
            raise AttributionError("this model does not report its attention weights") from err
    attentions = getattr(out, "attentions", None)
    if not attentions:
        raise AttributionError("this model does not report its attention weights")
    return attentions[-1][0].mean(0)[0].float().cpu().numpy()
