"""Diffs of a text and its perturbed copy: word-level (whitespace kept), characters inside a word, one line."""
from __future__ import annotations

import difflib
import re

_TOKEN = re.compile(r"\s+|\S+")


def diff_tokens(a: str, b: str) -> list[tuple[str, str, str]]:
    """Word-level diff of two texts, whitespace kept: (op, old, new) with op equal/replace/delete/insert.

    Joining every `old` gives `a` back and every `new` gives `b`, so a view can highlight either side.
    """
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    out: list[tuple[str, str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        old, new = "".join(ta[i1:i2]), "".join(tb[j1:j2])
        if op == "replace" and i2 - i1 == j2 - j1:
            for x, y in zip(ta[i1:i2], tb[j1:j2]):
                out.append(("equal" if x == y else "replace", x, y))
        else:
            out.append((op, old, new))
    return out


def diff_chars(old: str, new: str) -> list[tuple[str, str, str]]:
    """Character-level diff inside one replaced word (which letters a typo attack touched)."""
    return [(op, old[i1:i2], new[j1:j2])
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()]


def diff_summary(a: str, b: str) -> str:
    """The changes as one line of text, e.g. `terrible -> terrib1e; movie -> film` (for tables and CSV); `∅` marks
    the empty side of an insertion or deletion. A change of white space alone is not a change of words: empty."""
    parts = []
    for op, old, new in diff_tokens(a, b):
        old, new = old.strip(), new.strip()
        if op == "equal" or not (old or new):
            continue
        parts.append(f"{old or '∅'} -> {new or '∅'}")
    return "; ".join(parts)


def count_changed_words(a: str, b: str) -> int:
    """How many words the diff of `a` and `b` replaces, deletes or inserts (whitespace changes not counted): each
    change counts the words on its longer side, so `a b -> a x y b` changes 2 words."""
    return sum(max(len(old.split()), len(new.split())) for op, old, new in diff_tokens(a, b) if op != "equal")
