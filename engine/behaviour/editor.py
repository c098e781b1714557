"""A test written in a form (the Behaviour page's editor) as a suite: one line per template or sentence
(`label: text`, a pair as `label: text => perturbed text`) and one line per word list (`slot: word, word`).

The suite it makes is checked like a file (`spec.behaviour_suite_from_data`), so the same messages come back; a line
that cannot be read is named by its number in its box.
"""
from __future__ import annotations

from typing import Any

from engine.behaviour.spec import BehaviourSuite, BehaviourSuiteError, behaviour_suite_from_data
from engine.user_text import quoted

SOURCES = ("templates", "sentences", "dataset")
PAIR = "=>"


def _lines(text: str) -> list[tuple[int, str]]:
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def word_lists(text: str, problems: list[str]) -> dict[str, list[str]]:
    """`slot: word, word` per line -> {slot: [word, ...]}."""
    lists: dict[str, list[str]] = {}
    for number, line in _lines(text):
        slot, sep, words = line.partition(":")
        if not sep:
            problems.append(f"word lists, line {number}: write it as name: word, word (got {quoted(line)})")
            continue
        lists[slot.strip()] = [w.strip() for w in words.split(",") if w.strip()]
    return lists


def labelled_lines(text: str, box: str, problems: list[str]) -> list[tuple[str, str, str | None]]:
    """`label: text` or `label: text => perturbed` per line -> (label, text, perturbed or None)."""
    out = []
    for number, line in _lines(text):
        label, sep, rest = line.partition(":")
        if not sep or not label.strip() or not rest.strip():
            problems.append(f"{box}, line {number}: write it as label: text (got {quoted(line)})")
            continue
        body, pair, perturbed = rest.partition(PAIR)
        out.append((label.strip(), body.strip(), perturbed.strip() if pair else None))
    if not out and not any(box in p for p in problems):
        problems.append(f"{box}: write at least one line, label: text")
    return out


def editor_suite(name: str, kind: str, capability: str, description: str, source: str, lines: str, words: str,
                 dataset: str = "sst2-dev", perturbation: dict[str, Any] | None = None,
                 direction: str | None = None, tolerance: float = 0.1, n: int = 100,
                 neutral_passes: bool = False) -> BehaviourSuite:
    """The one-test suite a form describes; `BehaviourSuiteError` lists every problem (box lines, then the test's)."""
    problems: list[str] = []
    lists = word_lists(words, problems)
    test: dict[str, Any] = {"name": name, "kind": kind, "capability": capability, "description": description,
                            "n": n}
    if source == "templates":
        rows = labelled_lines(lines, "templates", problems)
        test["templates"] = [{"template": text, "label": label, **({"perturbed": pert} if pert else {})}
                             for label, text, pert in rows]
    elif source == "sentences":
        rows = labelled_lines(lines, "sentences", problems)
        test["sentences"] = [{"text": text, "label": label} for label, text, _ in rows]
    else:
        test["sentences"] = dataset
    if perturbation:
        test["perturbation"] = perturbation
    if kind == "DIR":
        test.update(direction=direction, tolerance=tolerance)
    elif kind == "INV":
        test["tolerance"] = tolerance
    elif neutral_passes:
        test["neutral_passes"] = True
    if problems:
        raise BehaviourSuiteError(problems)
    return behaviour_suite_from_data({"name": name or "my-test", "words": lists, "tests": [test]})
