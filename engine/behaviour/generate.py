"""A test's cases, made the same way every time from the suite and a seed.

Each test draws from its own `random.Random(f"{seed}:{name}")`, so adding or editing one test leaves the cases
of the others as they were. Templates whose slots give few combinations are enumerated and shuffled; larger ones
are sampled. Sentences come from an evaluation set (shuffled, perturbed, skipped where the perturbation does not
apply) or from the test's own list.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass

from engine.behaviour.perturb import PERTURBATIONS
from engine.behaviour.spec import SLOT, BehaviourTest, Template

SentenceSource = Callable[[str], list[tuple[str, str]]]    # an evaluation set's name -> (text, label name)
ATTEMPTS_PER_CASE = 20


class GenerationError(ValueError):
    """A test that made no cases (its perturbation applies to none of its sentences, ...): the message says why."""


@dataclass(frozen=True)
class Case:
    """One case: the text the model is asked about, the label it should get (MFT) or the label of the original
    (INV, DIR), and for INV/DIR the original text."""
    test: str
    index: int
    text: str
    label: str
    original: str | None = None

    def row(self) -> dict:
        return asdict(self)


def case_rng(test: BehaviourTest, seed: int) -> random.Random:
    """One test's random source, seeded by the run seed and the test name: adding a test changes no other's cases."""
    return random.Random(f"{seed}:{test.name}")


def generate_cases(test: BehaviourTest, seed: int, sentences_of: SentenceSource) -> list[Case]:
    """Up to `test.n` distinct cases of one test, the same ones for the same seed."""
    rng = case_rng(test, seed)
    pairs = _from_templates(test, rng) if test.templates else _from_sentences(test, rng, sentences_of)
    if not pairs:
        raise GenerationError(f"test {test.name!r} made no cases: " + (
            f"its perturbation ({test.perturbation['type']}) applies to none of its sentences" if test.perturbation
            else "it has no sentences"))
    return [Case(test.name, i, text, label, original) for i, (original, text, label) in enumerate(pairs)]


def _fill(text: str, values: dict[str, str]) -> str:
    return SLOT.sub(lambda m: values[m.group(1)], text)


def _combinations(template: Template, test: BehaviourTest) -> int:
    slots = set(SLOT.findall(template.text + (template.perturbed or "")))
    return math.prod(len(test.words[s]) for s in slots)


def _render(template: Template, values: dict[str, str], test: BehaviourTest,
            rng: random.Random) -> tuple[str | None, str, str]:
    """(original or None, the text asked about, label) of one filling of a template."""
    text = _fill(template.text, values)
    if test.kind == "MFT":
        return None, text, template.label
    if template.perturbed is not None:
        return text, _fill(template.perturbed, values), template.label
    slot = test.perturbation["slot"]
    other = rng.choice([w for w in test.words[slot] if w != values[slot]])
    return text, _fill(template.text, {**values, slot: other}), template.label


def _from_templates(test: BehaviourTest, rng: random.Random) -> list[tuple[str | None, str, str]]:
    fillings: list[tuple[Template, dict[str, str]]] = []
    if sum(_combinations(t, test) for t in test.templates) <= ATTEMPTS_PER_CASE * test.n:
        for template in test.templates:      # few combinations: all of them, shuffled
            slots = sorted(set(SLOT.findall(template.text + (template.perturbed or ""))))
            for combo in itertools.product(*(test.words[s] for s in slots)):
                fillings.append((template, dict(zip(slots, combo))))
        rng.shuffle(fillings)
    else:                                    # many: sampled, templates taken in turn
        for attempt in range(ATTEMPTS_PER_CASE * test.n):
            template = test.templates[attempt % len(test.templates)]
            slots = sorted(set(SLOT.findall(template.text + (template.perturbed or ""))))
            fillings.append((template, {s: rng.choice(test.words[s]) for s in slots}))
    seen: set[tuple] = set()
    out = []
    for template, values in fillings:
        case = _render(template, values, test, rng)
        if case in seen or case[0] == case[1]:
            continue
        seen.add(case)
        out.append(case)
        if len(out) == test.n:
            break
    return out


def _from_sentences(test: BehaviourTest, rng: random.Random,
                    sentences_of: SentenceSource) -> list[tuple[str | None, str, str]]:
    pool = list(test.sentences) if isinstance(test.sentences, tuple) else sentences_of(test.sentences)
    order = list(range(len(pool)))
    rng.shuffle(order)
    out = []
    for i in order:
        text, label = pool[i]
        if test.kind == "MFT":
            out.append((None, text, label))
        else:
            params = {k: v for k, v in test.perturbation.items() if k != "type"}
            spec = PERTURBATIONS[test.perturbation["type"]]
            params.update({k: test.words[params[k]] for k in spec.word_params if k in params})
            changed = spec.apply(text, rng, **params)
            if changed is None or changed == text:
                continue
            out.append((text, changed, label))
        if len(out) == test.n:
            break
    return out
