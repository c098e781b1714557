"""Attacking one segment of a sentence pair and keeping the other fixed, through TextAttack's multi-input
support: the pair becomes an `AttackedText` of two named columns, and pre-transformation constraints let the
search touch only the chosen column's words (`InputColumnModification`) and cap the changes at a share of
that segment's words, not of the pair's (`segment_modification_rate`).

A segment is chosen as `first` or `second`, or by the task's own name for it (`premise`, `hypothesis`).
The second segment is the default: in NLI it is the hypothesis, the sentence an attack on a premise/hypothesis
pair usually edits (TextFooler's own recipe keeps the premise fixed).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from engine.attacks.recipes import AttackError
from engine.user_text import quoted

SEGMENT_CHOICES = ("first", "second")
DEFAULT_SEGMENT = "second"


def segment_index(choice: str, names: tuple[str, str]) -> int:
    """0 or 1 for `first`/`second` or one of the segments' names; AttackError naming the choices otherwise."""
    for index, options in enumerate(zip(SEGMENT_CHOICES, names)):
        if choice in options:
            return index
    raise AttackError(f"segment {quoted(choice)} does not exist; choose first or second "
                      f"({names[0]} or {names[1]})")


def chosen_segment(choice: str | None, names: tuple[str, str] | None) -> str | None:
    """The segment to attack as `first` or `second` (the second when none is chosen) for a pair model whose
    segments are `names`; None for a single-sentence model (None), which has no segment to choose."""
    if names is None:
        if choice is not None:
            raise AttackError(f"segment {quoted(choice)}: this model reads single sentences, so there is no "
                              f"segment to choose")
        return None
    return SEGMENT_CHOICES[segment_index(choice or DEFAULT_SEGMENT, names)]


def check_shape(dataset: str, is_pair: bool, names: tuple[str, str] | None) -> None:
    """AttackError when a dataset's examples are not the kind the model reads (pairs or single sentences)."""
    if is_pair and names is None:
        raise AttackError(f"{dataset} holds sentence pairs, but this model reads single sentences")
    if not is_pair and names is not None:
        raise AttackError(f"{dataset} holds single sentences, but this model reads sentence pairs "
                          f"({names[0]} / {names[1]})")


def pair_text(pair: tuple[str, str], names: tuple[str, str]) -> Any:
    """The pair as TextAttack's multi-input text: one column per segment, named as the task names them."""
    from textattack.shared import AttackedText

    return AttackedText(OrderedDict(zip(names, pair)))


def segments_of(attacked_text: Any) -> tuple[str, str]:
    """The two segments of a multi-input `AttackedText`, in order."""
    return tuple(attacked_text.tokenizer_input)


def keep_other_segment_fixed(attack: Any, names: tuple[str, str], segment: int) -> None:
    """Let `attack` edit only segment `segment` of pairs named `names`: any column rule the recipe brought
    (TextFooler's keeps the premise) is replaced by one that protects the other segment."""
    from textattack.constraints.pre_transformation import InputColumnModification

    attack.pre_transformation_constraints[:] = [c for c in attack.pre_transformation_constraints
                                                if not isinstance(c, InputColumnModification)]
    attack.pre_transformation_constraints.append(InputColumnModification(list(names), {names[1 - segment]}))


def segment_modification_rate(max_rate: float, segment: int) -> Any:
    """TextAttack's MaxModificationRate counted over one segment's words (at least one word may change)."""
    from textattack.constraints.pre_transformation import MaxModificationRate

    class SegmentModificationRate(MaxModificationRate):
        def _get_modifiable_indices(self, current_text: Any) -> set[int]:
            words = len(current_text.words_per_input[segment])
            if len(current_text.attack_attrs["modified_indices"]) >= max(math.ceil(words * self.max_rate),
                                                                         self.min_threshold):
                return set()
            return set(range(len(current_text.words)))

    return SegmentModificationRate(max_rate, min_threshold=1)
