"""The one token-level view: text drawn as HTML spans, each with a background colour and a hover note.

A saliency heat map and an attack diff are the same component fed different spans, so they look alike
and sit in the same place on the page. Text is always escaped; invisible characters (zero-width,
direction marks) that an edit touched are drawn as a visible mark with their code point on hover.
"""
from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass

import streamlit as st

from engine.attacks.diff import diff_chars, diff_tokens
from engine.data.text_dataset import Input
from engine.explain.attribution import Explanation
from engine.user_text import codepoint

POSITIVE = (234, 120, 20)     # orange: pushes toward the explained class
NEGATIVE = (47, 111, 179)     # blue: pushes away from it
ATTENTION = (128, 90, 190)    # purple: attention share (no sign)
ADDED = "#fde68a"             # changed or inserted characters in the new text
REMOVED = "#fecaca"           # replaced or deleted characters in the old text
SEP = "[SEP]"                 # drawn boxed between the two segments of a sentence pair


def one_line(given: Input) -> str:
    """A sentence, or a pair written as `first [SEP] second` (tables, history, headings)."""
    return given if isinstance(given, str) else f"{given[0]} {SEP} {given[1]}"


def segment_title(name: str) -> str:
    """A segment's name as a heading: `premise` -> `Premise`."""
    return name[:1].upper() + name[1:]


@dataclass
class Span:
    """A piece of text with an optional background, hover note and decoration."""
    text: str
    background: str | None = None
    tip: str | None = None
    strike: bool = False
    bold: bool = False
    boxed: bool = False       # outlined: a pair's [SEP] boundary, visible however small its score


def render(spans: list[Span], tip: str | None = None, label: str | None = None) -> None:
    """Draw spans as one block of text (the only place token HTML is written)."""
    st.html(to_html(spans, tip, label))


def to_html(spans: list[Span], tip: str | None = None, label: str | None = None) -> str:
    parts = []
    for span in spans:
        style = []
        if span.background:
            style.append(f"background:{span.background};border-radius:3px;padding:1px 1px")
        if span.strike:
            style.append("text-decoration:line-through")
        if span.bold:
            style.append("font-weight:600")
        if span.boxed:
            style.append("box-shadow:inset 0 0 0 1px #64748b;border-radius:3px;padding:0 3px;font-size:0.85em")
        attrs = f' style="{";".join(style)}"' if style else ""
        if span.tip:
            attrs += f' title="{html.escape(span.tip, quote=True)}"'
        parts.append(f"<span{attrs}>{_visible(span.text, marked=bool(span.background))}</span>"
                     if attrs else _visible(span.text, marked=False))
    head = (f'<div style="font-size:0.8rem;color:#5b6470;margin-bottom:2px">{html.escape(label)}</div>'
            if label else "")
    title = f' title="{html.escape(tip, quote=True)}"' if tip else ""
    return (f'{head}<div class="rl-tokens" dir="auto"{title} style="line-height:2.0;font-size:1.02rem;'
            f'padding:8px 10px;border:1px solid #e3e8ef;border-radius:6px;background:#fff;'
            f'white-space:pre-wrap;overflow-wrap:anywhere">{"".join(parts)}</div>')


def _visible(text: str, marked: bool) -> str:
    """Escape text; inside a highlighted span show invisible characters as a dotted mark."""
    out = []
    for ch in text:
        if marked and unicodedata.category(ch) in ("Cf", "Mn") and not ch.isspace():
            out.append(f'<span style="color:#b45309" title="{codepoint(ch)}">⸱</span>')
        else:
            out.append(html.escape(ch))
    return "".join(out)


# ---------------------------------------------------------------- saliency

def heatmap_spans(attribution: Explanation) -> list[Span]:
    """The original text with each word shaded by its attribution (scaled to the largest in the text). A pair
    is drawn as its first segment, the [SEP] boundary between them (shaded by its own score), then its second
    segment, each segment headed by its name."""
    scores = attribution.scores + ([attribution.boundary_score] if attribution.boundary_score is not None else [])
    peak = max((abs(s) for s in scores), default=0.0) or 1.0
    if attribution.text_b is None:
        return _shaded(attribution, attribution.text, 0, peak)
    first, second = attribution.segment_names
    return [Span(f"{segment_title(first)}: ", bold=True), *_shaded(attribution, attribution.text, 0, peak),
            Span(" "), _score_span(attribution, SEP, attribution.boundary_score or 0.0, peak,
                                   "the boundary between the two segments: the model reads [CLS] first [SEP] "
                                   "second [SEP]", boxed=True),
            Span("\n"), Span(f"{segment_title(second)}: ", bold=True),
            *_shaded(attribution, attribution.text_b, 1, peak)]


def _shaded(attribution: Explanation, text: str, segment: int, peak: float) -> list[Span]:
    """One segment's text, its words shaded by their scores."""
    spans, cursor = [], 0
    for word, score in zip(attribution.words, attribution.scores):
        if word.segment != segment:
            continue
        if word.start > cursor:
            spans.append(Span(text[cursor:word.start]))
        spans.append(_score_span(attribution, word.text, score, peak))
        cursor = word.end
    if cursor < len(text):
        spans.append(Span(text[cursor:]))
    return spans


def _score_span(attribution: Explanation, text: str, score: float, peak: float, what: str = "",
                boxed: bool = False) -> Span:
    strength = min(abs(score) / peak, 1.0)
    if attribution.how == "attention":
        rgb, note = ATTENTION, f"attention share {score:.3f}"
    else:
        rgb = POSITIVE if score >= 0 else NEGATIVE
        note = f"{score:+.4f} toward {attribution.target_name}"
    return Span(text, f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.08 + 0.72 * strength:.2f})",
                f"{what}; {note}" if what else note, boxed=boxed)


def heatmap(attribution: Explanation, label: str | None = None) -> None:
    """A saliency heat map; hovering the block shows what the scores mean (and IG's completeness)."""
    render(heatmap_spans(attribution), tip=attribution.describe(), label=label)


# ---------------------------------------------------------------- diffs

def diff_spans(old: str, new: str, side: str = "new") -> list[Span]:
    """One side of a word diff: on the new side changed characters are yellow, on the old side red.

    Inside a replaced word only the characters that differ are highlighted (typo attacks change one or
    two); a whole-word swap highlights the whole word.
    """
    spans = []
    for op, a, b in diff_tokens(old, new):
        if op == "equal":
            spans.append(Span(b if side == "new" else a))
            continue
        piece = b if side == "new" else a
        if not piece:
            continue
        if op == "replace" and a.strip() and b.strip() and _similar(a, b):
            tip = f"{a.strip()} → {b.strip()}"
            for cop, ca, cb in diff_chars(a, b):
                part = cb if side == "new" else ca
                if not part:
                    continue
                if cop == "equal":
                    spans.append(Span(part, "#f5f5f4", tip))   # the rest of a changed word, lightly marked
                else:
                    spans.append(Span(part, ADDED if side == "new" else REMOVED, _char_tip(ca, cb, tip)))
        else:
            tip = {"replace": f"{a.strip()} → {b.strip()}", "delete": f"deleted: {a.strip()}",
                   "insert": f"inserted: {b.strip()}"}[op]
            spans.append(Span(piece, ADDED if side == "new" else REMOVED, tip, strike=side == "old" and op == "delete"))
    return spans


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.5


def _char_tip(old: str, new: str, word_tip: str) -> str:
    """The word's change, plus the code point of every non-ASCII character put in (homoglyphs, invisibles)."""
    notes = [word_tip] + [f"new {codepoint(ch)}" for ch in dict.fromkeys(new) if not ch.isascii()]
    return "; ".join(notes)


def diff_view(old: str, new: str, label_old: str = "Original", label_new: str = "Adversarial") -> None:
    """Original and changed text one above the other, the edits highlighted on both."""
    render(diff_spans(old, new, "old"), label=label_old)
    render(diff_spans(old, new, "new"), label=label_new)


def pair_diff_view(names: tuple[str, str], attacked: int, fixed: str, old: str, new: str,
                   label_new: str = "adversarial") -> None:
    """A pair attacked on one segment: the segment that stayed fixed, then the attacked one before and after."""
    render([Span(fixed)], label=f"{segment_title(names[1 - attacked])} (kept fixed)")
    diff_view(old, new, f"{segment_title(names[attacked])}, original (attacked)",
              f"{segment_title(names[attacked])}, {label_new}")
