"""Perturbations an INV or DIR test applies to a sentence: each takes the text, a seeded `random.Random` and its
parameters, and returns the perturbed text, or None when it does not apply to this sentence (no contraction to
toggle, no listed word to replace), so generation moves on to the next sentence.

`swap` is the one perturbation of templates only: the perturbed case is the same template with one slot filled
by another word of the same list (a protected group, a name), which `generate` does itself.
"""
from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

WORD = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class Perturbation:
    """One perturbation: its function, the parameters it takes (name -> type), which of them name a word list,
    and whether it works on templates only."""
    apply: Callable[..., str | None] | None
    summary: str
    params: dict[str, type] = field(default_factory=dict)
    word_params: tuple[str, ...] = ()
    templates_only: bool = False
    required: tuple[str, ...] = ()


def _pick_words(text: str, rng: random.Random, count: int) -> list[re.Match] | None:
    words = list(WORD.finditer(text))
    if not words:
        return None
    return sorted(rng.sample(words, min(count, len(words))), key=lambda m: m.start(), reverse=True)


def typo(text: str, rng: random.Random, count: int = 1) -> str | None:
    """Swap two neighbouring letters inside `count` words of three letters or more."""
    for match in _pick_words(text, rng, count) or []:
        word = match.group()
        at = rng.randrange(len(word) - 1)
        if word[at] == word[at + 1]:
            continue
        word = word[:at] + word[at + 1] + word[at] + word[at + 2:]
        text = text[:match.start()] + word + text[match.end():]
    return text


def char_noise(text: str, rng: random.Random, count: int = 2) -> str | None:
    """Delete, insert or replace one letter inside each of `count` words (DeepWordBug-like character noise)."""
    for match in _pick_words(text, rng, count) or []:
        word = match.group()
        at = rng.randrange(len(word))
        op = rng.choice(("delete", "insert", "replace"))
        letter = rng.choice(string.ascii_lowercase)
        word = (word[:at] + word[at + 1:] if op == "delete" else
                word[:at] + letter + word[at:] if op == "insert" else word[:at] + letter + word[at + 1:])
        text = text[:match.start()] + word + text[match.end():]
    return text


# written both ways: SST-2 is tokenised ("is n't", "it 's"), user text is not ("isn't", "it's")
CONTRACTED = re.compile(r"\b(ca|wo|[a-z]+) ?n't\b|\b(it|that|there|he|she|what) ?'s\b|\b(i) ?'m\b|"
                        r"\b(you|we|they) ?'re\b", re.IGNORECASE)
EXPANDABLE = re.compile(r"\b(is|are|was|were|do|does|did|has|have|could|would|should) not\b|\b(it|that|there) is\b|"
                        r"\b(i) am\b|\b(you|we|they) are\b", re.IGNORECASE)
IRREGULAR = {"ca": "can", "wo": "will"}


def _expand(match: re.Match) -> str:
    neg, is_, am, are = match.groups()
    if neg:
        return f"{IRREGULAR.get(neg.lower(), neg)} not"
    if is_:
        return f"{is_} is"
    return f"{am} am" if am else f"{are} are"


def _contract(match: re.Match) -> str:
    neg, is_, am, are = match.groups()
    if neg:
        return f"{neg}n't"
    if is_:
        return f"{is_}'s"
    return f"{am}'m" if am else f"{are}'re"


def contractions(text: str, rng: random.Random) -> str | None:
    """Expand every contraction ("isn't" -> "is not"), or, in a sentence with none, contract what can be."""
    if CONTRACTED.search(text):
        return CONTRACTED.sub(_expand, text)
    changed = EXPANDABLE.sub(_contract, text)
    return changed if changed != text else None


def punctuation(text: str, rng: random.Random) -> str | None:
    """Strip the closing punctuation mark, or add a full stop to a sentence that has none."""
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?":
        return stripped.rstrip(".!? ")
    return stripped + " ." if " ." in text or " ," in text else stripped + "."


def _keep_case(old: str, new: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def replace(text: str, rng: random.Random, words: tuple[str, ...] = ()) -> str | None:
    """Replace one word (or phrase) of the list found in the text by another of the list (names, places)."""
    found = [m for w in words for m in re.finditer(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]
    if not found:
        return None
    match = rng.choice(sorted(found, key=lambda m: (m.start(), m.end())))
    others = [w for w in words if w.lower() != match.group().lower()]
    if not others:
        return None
    return text[:match.start()] + _keep_case(match.group(), rng.choice(others)) + text[match.end():]


def add(text: str, rng: random.Random, words: tuple[str, ...] = (), where: str = "end") -> str | None:
    """Add one item of the list (a URL, a handle, a neutral clause) at the start or the end of the text."""
    item = rng.choice(words)
    return f"{item} {text}" if where == "start" else f"{text.rstrip()} {item}"


PERTURBATIONS: dict[str, Perturbation] = {
    "typo": Perturbation(typo, "swap two neighbouring letters in `count` words", {"count": int}),
    "char_noise": Perturbation(char_noise, "delete, insert or replace a letter in `count` words", {"count": int}),
    "contractions": Perturbation(contractions, "expand contractions, or contract where there are none"),
    "punctuation": Perturbation(punctuation, "strip the closing punctuation, or add a full stop"),
    "replace": Perturbation(replace, "replace a word of the list `words` found in the text by another of it",
                            {"words": str}, ("words",), required=("words",)),
    "add": Perturbation(add, "add an item of the list `words` at the start or the end (`where`)",
                        {"words": str, "where": str}, ("words",), required=("words",)),
    "swap": Perturbation(None, "templates only: fill the slot `slot` with another word of its list",
                         {"slot": str}, templates_only=True, required=("slot",)),
}
WHERE = ("start", "end")
