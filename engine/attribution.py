"""Word-level explanations of one prediction: integrated gradients, gradient x input, attention.

Scores are computed per word piece and summed onto the words the user typed (whitespace-separated
spans of the original text, found through the fast tokenizer's character offsets), so a heat map can
be drawn over the text exactly as it was entered. Integrated gradients also reports its completeness
error: the sum of the attributions against the change in the output between baseline and input.

Explanations run on an `engine.inference.LoadedModel` and hold its lock while Captum's hooks are on the
model, so no other thread's forward pass goes through them.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.inference import LoadedModel
from engine.models import NotBertError, word_embeddings
from engine.user_text import quoted

EXPLAINERS = {"ig": "Integrated gradients", "gxi": "Gradient × input", "attention": "Attention"}
IG_STEPS = 32


class AttributionError(ValueError):
    """An explanation cannot be computed for this input or model; the message says why."""


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
    long_words: list[int] = field(default_factory=list)   # lengths of words read whole as the unknown token

    def notices(self) -> list[str]:
        out = []
        if self.removed_controls:
            out.append(f"Removed {self.removed_controls} control character(s) (invisible codes that are not text).")
        for chars in self.long_words:
            out.append(f"A word of {chars:,} characters was read as one unknown token [UNK]: the tokenizer does not "
                       f"split a word longer than {LONG_WORD_CHARS} characters, so the model sees none of it.")
        if self.truncated:
            out.append(f"The text is {self.total_tokens:,} word pieces long; the model reads at most "
                       f"{self.kept_tokens:,}, so only the first {len(self.text):,} of {self.original_chars:,} "
                       f"characters are used.")
        return out


_KEEP_CONTROLS = {"\t", "\n", "\r"}
LONG_WORD_CHARS = 100   # BERT's WordPiece reads a longer word as one [UNK] (max_input_chars_per_word)


def fit_text(tokenizer, text: str, max_length: int) -> FittedText:
    """Drop control characters (keeping tabs and newlines, and keeping zero-width and direction marks,
    which are real text), then cut the text where the model's `max_length` word pieces end; note the words
    too long for the tokenizer, which become one [UNK] each."""
    cleaned = "".join(c for c in text if c in _KEEP_CONTROLS or unicodedata.category(c) != "Cc")
    removed = len(text) - len(cleaned)
    enc = tokenizer(cleaned, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                    verbose=False)
    offsets = enc["offset_mapping"]
    keep = max(1, max_length - tokenizer.num_special_tokens_to_add())
    fitted = FittedText(cleaned, len(text), False, len(offsets), min(len(offsets), keep), removed,
                        [end - start for token, (start, end) in zip(enc["input_ids"][:keep], offsets[:keep])
                         if token == tokenizer.unk_token_id and end - start > LONG_WORD_CHARS])
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
        name = EXPLAINERS[self.how]
        text = (f"{name} for p({self.target_name}). Orange words push toward {self.target_name}, blue words "
                f"push away from it.")
        if self.completeness:
            c = self.completeness
            text += (f" Completeness: the attributions sum to {c['sum']:+.4f}; p({self.target_name}) changes by "
                     f"{c['delta_output']:+.4f} from the all-[PAD] baseline to this text; error "
                     f"{c['error']:+.2e} ({c['relative_error']:.2%}, {IG_STEPS} steps).")
        return text


def explain(loaded: LoadedModel, text: str, how: str = "ig", target: int | None = None,
            steps: int = IG_STEPS) -> Attribution:
    """Attribute the prediction for `text` (already fitted to the model) to its words.

    `target` defaults to the predicted class. Raises AttributionError for empty text or an unknown method.
    """
    if how not in EXPLAINERS:
        raise AttributionError(f"unknown attribution method {quoted(how)}; choose one of {', '.join(EXPLAINERS)}")
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
    probs = loaded.probs([text])[0]
    target = int(probs.argmax()) if target is None else int(target)
    if not 0 <= target < probs.shape[0]:
        raise AttributionError(f"class {target} does not exist; the model has {probs.shape[0]} classes")
    with loaded.lock:
        if how == "attention":
            token_scores = _cls_attention(model, input_ids, mask)
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
