"""The one shape every dataset takes: texts (or sentence pairs), integer labels 0..C-1 and the class
names in id order, whatever its source; and the errors that say why a dataset cannot be had."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Input = str | tuple[str, str]     # one example: a sentence, or a sentence pair (first segment, second segment)

class DataError(ValueError):
    """A dataset is missing or malformed; the message says what to do."""


class LabelOrderDataError(DataError):
    """A label order given for a dataset does not fit it (the command line blames --label-order)."""


class FieldDataError(DataError):
    """A CSV cannot be read the way one TrainConfig field asks (a column choice, a declared task): `field` names
    it, so the command line blames its flag."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class TextDataset:
    name: str
    texts: list[str]
    labels: list[int]
    label_names: list[str] = field(default_factory=list)
    texts_b: list[str] | None = None          # the second segments of a sentence-pair task, else None
    segment_names: tuple[str, str] = ("sentence1", "sentence2")   # what a pair task calls its two segments

    def __post_init__(self) -> None:
        if not self.label_names:
            self.label_names = [str(i) for i in range(max(self.labels, default=-1) + 1)]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return self.texts_b is not None

    @property
    def inputs(self) -> list[Input]:
        """What the model reads, example by example: the sentences, or (first, second) pairs."""
        return list(zip(self.texts, self.texts_b)) if self.texts_b is not None else list(self.texts)

    def subset(self, indices: np.ndarray | list[int]) -> TextDataset:
        return TextDataset(self.name, [self.texts[i] for i in indices], [self.labels[i] for i in indices],
                           list(self.label_names),
                           None if self.texts_b is None else [self.texts_b[i] for i in indices], self.segment_names)

    def sample(self, n: int | None, seed: int) -> TextDataset:
        """A seeded random subset of n examples (all of them if n is None or too large)."""
        if n is None or n >= len(self):
            return self
        order = np.random.default_rng(seed).permutation(len(self))[:n]
        return self.subset(np.sort(order))


SST2_LABELS = ["negative", "positive"]


@dataclass(frozen=True)
class PairTask:
    """A GLUE sentence-pair task: its two text fields (GLUE's and AdvGLUE's names) and its classes in id
    order (the GLUE / Hugging Face `glue` convention)."""
    fields: tuple[str, str]
    label_names: tuple[str, ...]


PAIR_TASKS = {
    "rte": PairTask(("sentence1", "sentence2"), ("entailment", "not_entailment")),
    "qnli": PairTask(("question", "sentence"), ("entailment", "not_entailment")),
    "qqp": PairTask(("question1", "question2"), ("not_duplicate", "duplicate")),
    "mnli": PairTask(("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
}
