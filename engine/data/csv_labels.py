"""A CSV's label column as class ids: integer ids as they are, or class names mapped to ids.

Names get ids in sorted order (Python's string order: `neg` is 0, `pos` 1) unless an order is given
(`train --label-order a,b,c`, or the Train page), and the names are stored with the run in id order. A column
mixing names and numbers, or names that differ only by spaces or case ("pos", "pos ", "Pos"), is refused naming
the lines: merging or splitting such classes silently would train on labels nobody meant.

No message repeats a cell: a label column chosen by mistake may hold anything (a password, a patient's name), and
a message travels further than the file (a run's error, a page, a terminal log). Messages name lines and counts.
"""
from __future__ import annotations

from collections.abc import Sequence

from engine.user_text import quoted

SHOWN = 6   # distinct values a message lists before saying how many more there are


class LabelError(ValueError):
    """The label column cannot be read as classes; the message names the values and lines at fault."""


class LabelOrderError(LabelError):
    """A given label order does not name exactly the file's labels."""


def class_ids(cells: Sequence[str], lines: Sequence[int], order: Sequence[str] | None = None,
              known: Sequence[str] | None = None) -> tuple[list[int], list[str]]:
    """The class id of each label cell (raw, unstripped, none empty) and the class names in id order.

    `order`: the names in id order for training (must name exactly the file's labels). `known`: the names of a
    trained model's classes in id order, when the file is evaluated against it (every label must be one of them;
    integer labels are ids below their number)."""
    values = [cell.strip() for cell in cells]
    numeric = [is_number(v) for v in values]
    if all(numeric):
        if order is not None:
            raise LabelOrderError("the file's labels are integer class ids already; a label order is only for "
                                  "named labels")
        return _integer_ids(values, lines, known)
    if any(numeric):
        numbers = _first_lines([(v, n) for v, n, num in zip(values, lines, numeric) if num])
        names = _first_lines([(v, n) for v, n, num in zip(values, lines, numeric) if not num])
        raise LabelError(f"the label column mixes names and numbers: numbers on {_listed(numbers)}; names on "
                         f"{_listed(names)}. Use names for every class or integer ids 0..C-1 for every class")
    _refuse_near_duplicates(cells, lines)
    found = _first_lines(list(zip(values, lines)))
    if known is not None:
        strangers = {v: n for v, n in found.items() if v not in known}
        if strangers:
            raise LabelError(f"the labels on {_listed(strangers)} are not classes of this model; this model "
                             f"knows: {', '.join(known)}")
        names = list(known)
    elif order is not None:
        names = _checked_order(order, found)
    else:
        names = sorted(found)
        if len(names) < 2:
            raise LabelError("the CSV has only one class (every row has the same label); a classifier needs at "
                             "least two")
    ids = {name: i for i, name in enumerate(names)}
    return [ids[v] for v in values], names


def task_class_ids(cells: Sequence[str], lines: Sequence[int], task: str,
                   names: Sequence[str]) -> tuple[list[int], list[str]]:
    """The class ids of a label column declared to hold a known task's classes (`names`, in the task's id order):
    its names, or its integer ids, every class with at least one row, so the model's ids are the task's and a
    class it never saw is refused rather than learned as nothing."""
    values = [cell.strip() for cell in cells]
    if all(is_number(v) for v in values):
        ids = {str(i): i for i in range(len(names))}
        spelled = "ids " + ", ".join(f"{i} ({name})" for i, name in enumerate(names))
    else:
        ids = {name: i for i, name in enumerate(names)}
        spelled = ", ".join(names)
    strangers = _first_lines([(v, n) for v, n in zip(values, lines) if v not in ids])
    if strangers:
        raise LabelError(f"the labels on {_listed(strangers)} are not classes of {task} (its classes: {spelled}); "
                         f"write every label as one of them, or leave the task out")
    labels = [ids[v] for v in values]
    absent = [name for i, name in enumerate(names) if i not in set(labels)]
    if absent:
        raise LabelError(f"no row has the class {', '.join(map(quoted, absent))} of {task} (its classes: "
                         f"{', '.join(names)}); every class of the task needs examples to be learned and scored")
    return labels, list(names)


def _integer_ids(values: list[str], lines: Sequence[int], known: Sequence[str] | None) -> tuple[list[int], list[str]]:
    labels = []
    for line, raw in zip(lines, values):
        value = float(raw)
        if value != int(value) or value < 0:
            raise LabelError(f"the label on line {line} is not a non-negative integer class id")
        labels.append(int(value))
    classes = sorted(set(labels))
    if known is not None:
        if all(name.isdigit() for name in known) and set(classes) <= {int(name) for name in known}:
            ids = {int(name): i for i, name in enumerate(known)}   # a model trained on integer labels: by name
            return [ids[label] for label in labels], list(known)
        if classes[-1] >= len(known):
            line = next(n for n, label in zip(lines, labels) if label >= len(known))
            raise LabelError(f"the label on line {line} is a class id this model never saw in training: it knows "
                             f"classes 0..{len(known) - 1}")
        return labels, list(known)
    if len(classes) < 2:
        raise LabelError("the CSV has only one class (every row has the same label); a classifier needs at least "
                         "two")
    if classes == list(range(1, len(classes) + 1)):   # 1..C, as many datasets number their classes: 1 is id 0
        return [label - 1 for label in labels], [str(i) for i in classes]
    if classes != list(range(len(classes))):
        absent = next(i for i in range(len(classes)) if i not in set(classes))
        raise LabelError(f"integer labels must be 0..C-1 or 1..C with each class present; no row has class {absent}, "
                         f"but {len(classes)} classes have rows")
    return labels, [str(i) for i in classes]


def _checked_order(order: Sequence[str], found: dict[str, int]) -> list[str]:
    """`order` as the class names, when it names each of the file's labels once and nothing else."""
    names = [name.strip() for name in order]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise LabelOrderError(f"the label order names {', '.join(quoted(n) for n in twice)} more than once")
    extra = [name for name in names if name not in found]
    if extra:
        raise LabelOrderError(f"the label order names {', '.join(quoted(n) for n in extra)}, which is not a label "
                              f"of the file (the file has {len(found)} labels)")
    left_out = {v: n for v, n in found.items() if v not in names}
    if left_out:
        raise LabelOrderError(f"the label order leaves out the labels first on {_listed(left_out)}; list every "
                              f"label of the file once")
    return names


def _refuse_near_duplicates(cells: Sequence[str], lines: Sequence[int]) -> None:
    """Refuse labels that are the same name but for spaces or letter case."""
    variants: dict[str, dict[str, int]] = {}
    for cell, line in zip(cells, lines):
        variants.setdefault(" ".join(cell.split()).casefold(), {}).setdefault(cell, line)
    clashes = [spellings for spellings in variants.values() if len(spellings) > 1]
    if clashes:
        groups = "; ".join(_listed(spellings) for spellings in clashes)
        raise LabelError(f"labels that differ only by spaces or letter case, first on {groups}. Write each class "
                         f"the same way on every line")


def is_number(value: str) -> bool:
    """A cell written as a number (a label that is an integer id, or a number then refused as one; a header
    cell that is data)."""
    try:
        float(value)
    except ValueError:
        return False
    return True


def _first_lines(pairs: list[tuple[str, int]]) -> dict[str, int]:
    """Each distinct value with the first line it is on, in file order."""
    out: dict[str, int] = {}
    for value, line in pairs:
        out.setdefault(value, line)
    return out


def _listed(first_lines: dict[str, int]) -> str:
    """"lines 2, 3": the first line of each of the first SHOWN distinct values (never the values: they are the
    file's content), then how many more."""
    lines = list(first_lines.values())
    shown = ", ".join(map(str, lines[:SHOWN]))
    return ("line " if len(lines) == 1 else "lines ") + shown + (
        f" and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")
