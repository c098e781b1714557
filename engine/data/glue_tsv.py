"""GLUE's sentence-pair TSV files as GLUE distributes them (RTE, QNLI, QQP, MNLI), read by column name.

GLUE writes tab-separated files with a header line and no quoting: RTE `index sentence1 sentence2 label`, QNLI
`index question sentence label` (labels entailment / not_entailment), QQP `id qid1 qid2 question1 question2
is_duplicate` (0 / 1), MNLI `index promptID pairID genre ... sentence1 sentence2 label1 ... gold_label`
(entailment / neutral / contradiction). A label is a class name of the task or its integer id in GLUE's order.
A row with another number of fields than the header is refused by line: a file cut short or edited by hand.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.user_text import quoted

SHOWN_LINES = 10


class GlueFileError(ValueError):
    """A GLUE TSV file cannot be read as its task's pairs; the message names the file, lines and values."""


@dataclass(frozen=True)
class GlueColumns:
    """Where a task's GLUE files keep the two texts and the label."""
    texts: tuple[str, str]
    label: str

    def header_text(self) -> str:
        return ", ".join((*self.texts, self.label))


GLUE_COLUMNS = {
    "rte": GlueColumns(("sentence1", "sentence2"), "label"),
    "qnli": GlueColumns(("question", "sentence"), "label"),
    "qqp": GlueColumns(("question1", "question2"), "is_duplicate"),
    "mnli": GlueColumns(("sentence1", "sentence2"), "gold_label"),
}


def read_glue_pairs(path: Path, columns: GlueColumns,
                    label_names: Sequence[str]) -> tuple[list[str], list[str], list[int]]:
    """(first texts, second texts, label ids) of a GLUE TSV; label names map to their index in `label_names`."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise GlueFileError(f"{path} is empty")
    header = rows[0]
    where = {name: i for i, name in enumerate(header)}
    absent = [name for name in (*columns.texts, columns.label) if name not in where]
    if absent:
        raise GlueFileError(f"{path} has no column {', '.join(map(quoted, absent))}: GLUE's file has the columns "
                            f"{columns.header_text()} (its header: {quoted(chr(9).join(header))})")
    ragged = [line for line, row in enumerate(rows[1:], start=2) if row and len(row) != len(header)]
    if ragged:
        raise GlueFileError(f"{path}: {_lines(ragged)} {'has' if len(ragged) == 1 else 'have'} another number of "
                            f"tab-separated fields than the header's {len(header)}; the file is not GLUE's as "
                            f"distributed (cut short, or edited by a program that quoted or re-split it)")
    ids = {name: i for i, name in enumerate(label_names)} | {str(i): i for i in range(len(label_names))}
    first, second, labels, strangers = [], [], [], {}
    a, b, y = (where[name] for name in (*columns.texts, columns.label))
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        label = row[y].strip()
        if label not in ids:
            strangers.setdefault(label, line)
            continue
        first.append(row[a].strip())
        second.append(row[b].strip())
        labels.append(ids[label])
    if strangers:
        listed = ", ".join(f"{quoted(v)} (line {n})" for v, n in list(strangers.items())[:SHOWN_LINES])
        raise GlueFileError(f"{path}: labels {listed} are not classes of this task; its classes are "
                            f"{', '.join(label_names)} (or their ids 0..{len(label_names) - 1})")
    return first, second, labels


def _lines(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:SHOWN_LINES]))
    more = f" and {len(lines) - SHOWN_LINES} more" if len(lines) > SHOWN_LINES else ""
    return f"line {shown}" if len(lines) == 1 else f"lines {shown}{more}"
