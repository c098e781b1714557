"""Datasets: the registry, loading from the data folder or the hub, CSV uploads, and batching.

Every dataset comes out as a `TextDataset` of texts (and, for a sentence-pair task, the second segments),
integer labels 0..C-1 and the class names in id order, whatever its source (a CSV's named labels:
engine/csv_labels.py). One example's input is an `Input`: a sentence, or a (first, second) pair, the shape
TextAttack's multi-input attacks hand a model too.
Batches are length-bucketed and padded only to their longest sentence: that, not the model, is
where most CPU time goes on short SST-2 sentences.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.csv_labels import LabelError, LabelOrderError, class_ids, is_number, task_class_ids
from engine.csv_table import CsvFormatError, CsvTable, read_table
from engine.glue_tsv import GLUE_COLUMNS, GlueFileError, read_glue_pairs
from engine.limits import UPLOAD_FILE_BYTES, UPLOAD_QUOTA_VARIABLE, megabytes, path_problem, upload_quota
from engine.owned_paths import OutsideRootsError, inside, uploads_dir
from engine.paths import data_dir
from engine.user_text import quoted

Input = str | tuple[str, str]     # one example: a sentence, or a sentence pair (first segment, second segment)

MAX_CSV_BYTES = UPLOAD_FILE_BYTES
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
LABEL_COLUMNS = ("label", "labels", "class", "target", "y")
# a CSV's two text columns of a sentence pair, found by name when none is chosen (GLUE's and AdvGLUE's names)
PAIR_COLUMNS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"),
                ("question1", "question2"))


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


# ---------------------------------------------------------------- registry

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


def _read_sst2(file: str) -> Callable[[Path], TextDataset]:
    def read(root: Path) -> TextDataset:
        texts, labels = [], []
        with open(root / "sst2" / file, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts.append(row["sentence"].strip())
                labels.append(int(row["label"]))
        return TextDataset(f"sst2{'' if file == 'train.tsv' else '-dev'}", texts, labels, SST2_LABELS)
    return read


def _read_advglue(task: str) -> Callable[[Path], TextDataset]:
    """AdvGLUE dev's part for `task` (sst2, or a pair task; mnli-mm is MNLI mismatched)."""
    def read(root: Path) -> TextDataset:
        file = root / "advglue" / "dev.json"
        parts = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(parts, dict) or task not in parts:
            raise DataError(f"{file} has no {quoted(task)} part (it has: "
                            f"{', '.join(map(quoted, parts)) if isinstance(parts, dict) else 'no task parts'})")
        rows = parts[task]
        labels = [int(r["label"]) for r in rows]
        pair = PAIR_TASKS.get(task.removesuffix("-mm"))
        if pair is None:
            return TextDataset(f"advglue-{task}", [r["sentence"].strip() for r in rows], labels, SST2_LABELS)
        first, second = pair.fields
        return TextDataset(f"advglue-{task}", [r[first].strip() for r in rows], labels, list(pair.label_names),
                           [r[second].strip() for r in rows], pair.fields)
    return read


def _read_glue(task: str, name: str, file: str) -> Callable[[Path], TextDataset]:
    """One of GLUE's TSV files of a pair task (engine/glue_tsv.py has the columns), labels in GLUE's id order."""
    def read(root: Path) -> TextDataset:
        pair = PAIR_TASKS[task]
        try:
            first, second, labels = read_glue_pairs(root / task / file, GLUE_COLUMNS[task], pair.label_names)
        except GlueFileError as err:
            raise DataError(str(err)) from None
        return TextDataset(name, first, labels, list(pair.label_names), second, pair.fields)
    return read


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    local_file: str                          # relative to the data folder
    read_local: Callable[[Path], TextDataset]
    hub: tuple[str, str, str, tuple[str, ...]]   # (path, config, split, text fields) for datasets.load_dataset
    source: str = ""                         # the file as its distribution names it, when the data folder lacks it


# GLUE's pair tasks: (task, registry name, GLUE file, Hugging Face split, description)
GLUE_PAIR_FILES = (
    ("rte", "rte", "train.tsv", "train", "GLUE RTE train (2,490 sentence1 / sentence2 pairs, 2 classes)"),
    ("rte", "rte-dev", "dev.tsv", "validation", "GLUE RTE dev (277 pairs)"),
    ("qnli", "qnli", "train.tsv", "train", "GLUE QNLI train (104,743 question / sentence pairs, 2 classes)"),
    ("qnli", "qnli-dev", "dev.tsv", "validation", "GLUE QNLI dev (5,463 pairs)"),
    ("qqp", "qqp", "train.tsv", "train", "GLUE QQP train (363,846 question1 / question2 pairs, 2 classes)"),
    ("qqp", "qqp-dev", "dev.tsv", "validation", "GLUE QQP dev (40,430 pairs)"),
    ("mnli", "mnli", "train.tsv", "train", "GLUE MNLI train (392,702 premise / hypothesis pairs, 3 classes)"),
    ("mnli", "mnli-dev", "dev_matched.tsv", "validation_matched", "GLUE MNLI dev, matched genres (9,815 pairs)"),
    ("mnli", "mnli-dev-mm", "dev_mismatched.tsv", "validation_mismatched",
     "GLUE MNLI dev, mismatched genres (9,832 pairs)"),
)


REGISTRY: dict[str, DatasetSpec] = {
    "sst2": DatasetSpec("sst2", "GLUE SST-2 train (67,349 movie-review phrases, 2 classes)", "sst2/train.tsv",
                        _read_sst2("train.tsv"), ("glue", "sst2", "train", ("sentence",))),
    "sst2-dev": DatasetSpec("sst2-dev", "GLUE SST-2 dev (872 sentences)", "sst2/dev.tsv",
                            _read_sst2("dev.tsv"), ("glue", "sst2", "validation", ("sentence",))),
    "advglue-sst2": DatasetSpec("advglue-sst2", "AdvGLUE dev, SST-2 part (148 adversarial sentences)",
                                "advglue/dev.json", _read_advglue("sst2"),
                                ("adv_glue", "adv_sst2", "validation", ("sentence",))),
    **{f"advglue-{task}": DatasetSpec(f"advglue-{task}", f"AdvGLUE dev, {label} part ({rows} adversarial "
                                      f"{' / '.join(PAIR_TASKS[task.removesuffix('-mm')].fields)} pairs)",
                                      "advglue/dev.json", _read_advglue(task),
                                      ("adv_glue", f"adv_{task.replace('-mm', '_mismatched')}", "validation",
                                       PAIR_TASKS[task.removesuffix('-mm')].fields))
       for task, label, rows in (("rte", "RTE", 81), ("qnli", "QNLI", 148), ("qqp", "QQP", 78),
                                 ("mnli", "MNLI matched", 121), ("mnli-mm", "MNLI mismatched", 162))},
    **{name: DatasetSpec(name, description, f"{task}/{file}", _read_glue(task, name, file),
                         ("glue", task, split, PAIR_TASKS[task].fields),
                         f"GLUE's {task.upper()}/{file} (tab-separated; its columns include "
                         f"{GLUE_COLUMNS[task].header_text()})")
       for task, name, file, split, description in GLUE_PAIR_FILES},
}
# The dev split that goes with each training set, and the robustness sets to report beside it.
DEV_SET = {"sst2": "sst2-dev", **{task: f"{task}-dev" for task in PAIR_TASKS}}
ROBUSTNESS_SETS = {"sst2": ["advglue-sst2"], **{task: [f"advglue-{task}"] for task in PAIR_TASKS}}
ROBUSTNESS_SETS["mnli"].append("advglue-mnli-mm")
# The task of each registered set (the same kind of sentences and labels); an uploaded CSV is a task of its own,
# unless its run declares one of GLUE's pair tasks (`TrainConfig.task`).
TASKS = {"sst2": "sst2", "sst2-dev": "sst2", "advglue-sst2": "sst2",
         **{name: task for task, name, *_ in GLUE_PAIR_FILES},
         **{f"advglue-{task}": task.removesuffix("-mm") for task in (*PAIR_TASKS, "mnli-mm")}}


def available_datasets() -> dict[str, bool]:
    """Each registered dataset and whether its file is in the data folder now."""
    return {name: (data_dir() / spec.local_file).exists() for name, spec in REGISTRY.items()}


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Errors only from these loggers: without a network the hub client logs each retry, and the caller's one
    message says what failed and what to do."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _load_from_hub(spec: DatasetSpec) -> TextDataset:
    import datasets  # heavy; only needed online

    path, config, split, fields = spec.hub
    with _quiet("huggingface_hub", "datasets"):
        ds = datasets.load_dataset(path, config, split=split)
    labels = [int(x) for x in ds["label"]]
    if len(fields) == 1:
        return TextDataset(spec.name, [t.strip() for t in ds[fields[0]]], labels, SST2_LABELS)
    pair = PAIR_TASKS[config.removeprefix("adv_").removesuffix("_mismatched")]
    return TextDataset(spec.name, [t.strip() for t in ds[fields[0]]], labels, list(pair.label_names),
                       [t.strip() for t in ds[fields[1]]], pair.fields)


def load_dataset(name: str, label_order: Sequence[str] | None = None,
                 roots: Sequence[Path] | None = None) -> TextDataset:
    """A dataset by registry name, or `csv:PATH` for an uploaded CSV (with its named labels' ids in
    `label_order` when one is given; a registered set has its own classes). `roots`: the folders a CSV must lie in
    (a page's, `engine.owned_paths.page_roots`); None: anywhere (the command line)."""
    if name.startswith("csv:"):
        return read_csv(name[4:], label_order=label_order, roots=roots)
    if label_order is not None:
        raise LabelOrderDataError(f"a label order is only for a CSV with named labels; {quoted(name)} has its own "
                                  f"classes")
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {quoted(name)}; known: {', '.join(REGISTRY)} or csv:PATH")
    spec = REGISTRY[name]
    root = data_dir()
    if (root / spec.local_file).exists():
        return spec.read_local(root)
    folder = spec.local_file.split("/")[0]
    where = (f"Put {spec.source or 'the file'} at {root / spec.local_file} (run `make setup`, which links "
             f"../shared/data as data/, or set ROBUSTLAB_DATA to a folder holding {folder}/).")
    if _hub_offline():
        raise DataError(f"dataset {quoted(name)} is not in the data folder {root} and the hub is off. {where}")
    try:
        return _load_from_hub(spec)
    except Exception as err:  # no network, missing builder, ...
        raise DataError(f"dataset {quoted(name)} is not in the data folder {root} and could not be loaded from the "
                        f"Hugging Face hub ({type(err).__name__}). {where}") from err


# ---------------------------------------------------------------- CSV uploads

def read_csv(path: str | Path, text_column: str | None = None, label_column: str | None = None,
             label_order: Sequence[str] | None = None, known_labels: Sequence[str] | None = None,
             text_column_b: str | None = None, task: str | None = None,
             roots: Sequence[Path] | None = None) -> TextDataset:
    """Read and validate a user CSV: a text column, or two for sentence pairs, and one label column of class names
    or integer ids 0..C-1 (at least two classes; engine/csv_labels.py says how names get their ids).

    Columns not named are found by name (`csv_columns`). `label_order` gives the names' ids for training (refused
    unless it names exactly the file's labels); `task`, one of GLUE's pair tasks, says the labels are its classes
    (names or GLUE's ids, every class present) in GLUE's id order; `known_labels` are a trained model's class
    names in id order, when the CSV is evaluated against it. Rows without a text or a label are refused, never
    dropped: the data trained on is the data given. `roots`: the folders the file must lie in (a page's); None:
    anywhere. No message repeats a cell of the file, only column names and line numbers.
    """
    problem = path_problem(path)
    if problem:
        raise DataError(f"{quoted(os.fspath(path))} cannot be a CSV file: {problem}")
    if roots is not None:
        try:
            path = inside(path, roots)
        except OutsideRootsError as err:
            raise DataError(str(err)) from None
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DataError(f"the CSV is {megabytes(size)}; RobustLab takes CSVs up to {megabytes(MAX_CSV_BYTES)}. "
                        f"Take a random sample of its rows and upload that.")
    try:
        table = read_table(path)
    except CsvFormatError as err:
        raise DataError(str(err)) from None
    if not table.rows:
        raise DataError("the CSV has no data rows (only a header, or nothing at all)")
    _check_header(table.header, text_column or text_column_b, label_column)
    text_at, text_b_at, label_at = _column_positions(table.header, text_column, text_column_b, label_column)
    if task is not None and text_b_at is None:
        raise FieldDataError("task", f"{quoted(task)} is a sentence-pair task, but the CSV is read as single "
                                     f"sentences (one text column); name its second text column")
    _check_row_widths(table)
    texts = [_cell(row, text_at) for row in table.rows]
    texts_b = None if text_b_at is None else [_cell(row, text_b_at) for row in table.rows]
    label_cells = [row[label_at] if label_at < len(row) else "" for row in table.rows]
    checked = [(table.header[text_at].strip() if texts_b is not None else "text", texts),
               *([(table.header[text_b_at].strip(), texts_b)] if texts_b is not None else []),
               ("label", label_cells)]
    missing = [_missing(what, [line for line, value in zip(table.lines, values) if not value.strip()])
               for what, values in checked]
    if any(missing):
        needs = "both texts of its pair" if texts_b is not None else "a text"
        raise DataError(" and ".join(m for m in missing if m) + f". Every row needs {needs} and a label; "
                        "RobustLab does not drop rows on its own: fill in or delete those rows")
    try:
        if task is not None:
            labels, names = task_class_ids(label_cells, table.lines, task, PAIR_TASKS[task].label_names)
        else:
            labels, names = class_ids(label_cells, table.lines, label_order, known_labels)
    except LabelOrderError as err:
        raise LabelOrderDataError(str(err)) from None
    except LabelError as err:
        raise (FieldDataError("task", str(err)) if task is not None else DataError(str(err))) from None
    if texts_b is None:
        return TextDataset(f"csv:{path}", texts, labels, names)
    return TextDataset(f"csv:{path}", texts, labels, names, texts_b,
                       (table.header[text_at].strip(), table.header[text_b_at].strip()))


def csv_columns(header: Sequence[str]) -> dict[str, str | None]:
    """The columns `read_csv` reads when none is chosen, by header name: {text_column, text_column_b,
    label_column}, None where none is found. A pair of PAIR_COLUMNS makes the file sentence pairs."""
    present = {name.strip().lower(): name.strip() for name in reversed(header)}
    pair = next((p for p in PAIR_COLUMNS if p[0] in present and p[1] in present), None)
    text = pair[0] if pair else next((c for c in TEXT_COLUMNS if c in present), None)
    label = next((c for c in LABEL_COLUMNS if c in present), None)
    return {"text_column": present.get(text or ""), "text_column_b": present[pair[1]] if pair else None,
            "label_column": present.get(label or "")}


def _column_positions(header: list[str], text_column: str | None, text_column_b: str | None,
                      label_column: str | None) -> tuple[int, int | None, int]:
    """Where the text (or first segment), the second segment (None: single sentences) and the label are. A column
    chosen by name must exist and be chosen once; the others are found as `csv_columns` finds them."""
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        columns.setdefault(name.strip().lower(), i)
    found = csv_columns(header)
    first, second = found["text_column"], found["text_column_b"]
    if text_column or text_column_b:   # a chosen text column: single sentences unless a second one is chosen
        first, second = text_column, text_column_b
    if second and not first:   # the first segment: the chosen second one's partner, else the one found by name
        named = second.strip().lower()
        candidates = [a for a, b in PAIR_COLUMNS if b == named] + [found["text_column"] or "", *TEXT_COLUMNS]
        first = next((c for c in candidates if c and c.strip().lower() in columns and c.strip().lower() != named),
                     None)
    text_at = _pick_column(columns, header, first, TEXT_COLUMNS, "text", "text_column" if text_column else None)
    text_b_at = None if not second else _pick_column(columns, header, second, (), "second text",
                                                     "text_column_b" if text_column_b else None)
    label_at = _pick_column(columns, header, label_column, LABEL_COLUMNS, "label",
                            "label_column" if label_column else None)
    chosen = [("text_column", text_at), ("text_column_b", text_b_at), ("label_column", label_at)]
    for later, (field_name, at) in enumerate(chosen):
        earlier = [name for name, other in chosen[:later] if other is not None and other == at]
        if at is not None and earlier:
            raise FieldDataError(field_name, f"column {quoted(header[at].strip())} is chosen as both the "
                                 f"{_ROLES[earlier[0]]} and the {_ROLES[field_name]}; each role needs its own "
                                 f"column (the CSV has: {columns_text(header)})")
    return text_at, text_b_at, label_at


SHOWN_COLUMNS = 12   # column names a message lists before saying how many more there are


def columns_text(header: Sequence[str]) -> str:
    """A CSV's column names as a message lists them: each quoted (cut, invisible characters shown), the first
    SHOWN_COLUMNS, then how many more. The header is the one line of the file a message repeats."""
    names = ", ".join(quoted(name.strip()) for name in header[:SHOWN_COLUMNS])
    return names + (f" and {len(header) - SHOWN_COLUMNS} more" if len(header) > SHOWN_COLUMNS else "")


_ROLES = {"text_column": "text column", "text_column_b": "second text column", "label_column": "label column"}


def _cell(row: list[str], at: int) -> str:
    """A row's stripped cell, empty when the row stops before it."""
    return row[at].strip() if at < len(row) else ""


def _missing(what: str, lines: list[int], shown: int = 10) -> str:
    """'3 rows have no label: lines 4, 9, 12' (the first `shown` lines); empty when no line lacks it."""
    if not lines:
        return ""
    listed = ", ".join(str(line) for line in lines[:shown]) + (f", ... ({len(lines) - shown} more)"
                                                                if len(lines) > shown else "")
    if len(lines) == 1:
        return f"1 row has no {what}: line {listed}"
    return f"{len(lines)} rows have no {what}: lines {listed}"


def _check_row_widths(table: CsvTable) -> None:
    """Refuse a row with more cells than the header (beyond empty trailing ones): a comma in an unquoted text."""
    width = len(table.header)
    for line, row in zip(table.lines, table.rows):
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raise DataError(f"line {line} has {len(row)} fields but the header has {width}; a text that holds "
                            f"the delimiter must be in double quotes")


def _check_header(header: list[str], text_column: str | None, label_column: str | None) -> None:
    """Refuse a file whose first line is data, naming the columns it needs."""
    names = {name.strip().lower() for name in header}
    if text_column or label_column or (names & set(TEXT_COLUMNS) and names & set(LABEL_COLUMNS)):
        return
    if not any(is_number(name) for name in header):
        return   # a header with other names: _pick_column says which names it looked for
    column = next(i for i, name in enumerate(header, 1) if is_number(name))
    raise DataError(f"the file has no header line: its first line is data (column {column} holds a number where a "
                    f"column name belongs). Add a first line that names the columns, e.g. text,label: the text "
                    f"column is called one of {', '.join(TEXT_COLUMNS)}; the label column one of "
                    f"{', '.join(LABEL_COLUMNS)}")


def _pick_column(columns: dict[str, int], header: list[str], wanted: str | None, candidates: tuple[str, ...],
                 kind: str, field_name: str | None = None) -> int:
    """The position of the column named `wanted`, else of the first candidate name the header has. `field_name`:
    the TrainConfig field that named `wanted`, blamed when the CSV has no such column."""
    if wanted:
        if wanted.strip().lower() in columns:
            return columns[wanted.strip().lower()]
        message = f"no column named {quoted(wanted)}; the CSV has: {columns_text(header)}"
        raise FieldDataError(field_name, message) if field_name else DataError(message)
    for name in candidates:
        if name in columns:
            return columns[name]
    raise DataError(f"no {kind} column found (looked for {', '.join(candidates)}, or a pair of "
                    f"{', '.join('/'.join(p) for p in PAIR_COLUMNS)}); the CSV has: {columns_text(header)}")


def store_upload(content: bytes, filename: str) -> Path:
    """Keep an uploaded CSV in the run store under a content hash, so runs can point at it for good; a DataError
    when it is larger than one upload may be (UPLOAD_FILE_BYTES) or would take the upload folder past its quota
    (`engine.limits.upload_quota`)."""
    if len(content) > UPLOAD_FILE_BYTES:
        raise DataError(f"the file is {megabytes(len(content))}; an upload may be at most "
                        f"{megabytes(UPLOAD_FILE_BYTES)}. Take a random sample of its rows and upload that")
    digest = hashlib.sha256(content).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(filename).stem)[:40] or "upload"
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}-{stem}.csv"
    if not target.exists():
        used = sum(file.stat().st_size for file in folder.iterdir() if file.is_file())
        if used + len(content) > upload_quota():
            raise DataError(f"the upload folder is full: it holds {megabytes(used)} of its {megabytes(upload_quota())}"
                            f" quota, and this file is {megabytes(len(content))}. Delete runs and uploads that are "
                            f"no longer needed, or ask whoever runs RobustLab to raise {UPLOAD_QUOTA_VARIABLE}")
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(target)
    return target


def split_train_dev(data: TextDataset, dev_fraction: float, seed: int) -> tuple[TextDataset, TextDataset]:
    """Hold out a stratified dev split (at least one example per class) from a dataset with no dev set."""
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels)
    dev_idx: list[int] = []
    for c in range(data.num_labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        dev_idx.extend(members[:_held_out(len(members), dev_fraction)].tolist())
    dev_set = set(dev_idx)
    train_idx = [i for i in range(len(data)) if i not in dev_set]
    if not dev_idx or not train_idx:
        raise DataError("the CSV is too small to hold out a dev split; give at least two rows per class")
    return data.subset(sorted(train_idx)), data.subset(sorted(dev_idx))


def run_dataset(config: Mapping[str, Any]) -> TextDataset:
    """The data a run's config names: a CSV read with the run's columns, its task's classes or its label order."""
    dataset = config["dataset"]
    if not dataset.startswith("csv:"):
        return load_dataset(dataset, config.get("label_order"))
    return read_csv(dataset[4:], label_order=config.get("label_order"),
                    **{key: config.get(key) for key in CSV_FIELDS})


CSV_FIELDS = ("text_column", "text_column_b", "label_column", "task")   # TrainConfig's fields read_csv takes


def task_of(config: Mapping[str, Any]) -> str:
    """The task a run learns: its training set's (sst2, rte, ...), the GLUE task a CSV run declares, else the
    CSV itself (a task of its own)."""
    dataset = config.get("dataset") or ""
    return config.get("task") or TASKS.get(dataset, dataset)


def absent_classes(data: TextDataset) -> list[str]:
    """The classes of a dataset that no example has."""
    seen = set(data.labels)
    return [name for i, name in enumerate(data.label_names) if i not in seen]


def heldout_set(config: Mapping[str, Any]) -> TextDataset:
    """The dev split held out of a CSV run's data: the rows it was scored on."""
    return split_train_dev(run_dataset(config), config.get("dev_fraction", 0.1), config["seed"])[1]


def _held_out(members: int, dev_fraction: float) -> int:
    """How many of a class's `members` examples the dev split takes: its share, at least one, none of a single."""
    return max(1, int(round(members * dev_fraction))) if members > 1 else 0


def held_out_count(class_sizes: Sequence[int], dev_fraction: float) -> int:
    """How many rows `split_train_dev` holds out of a dataset whose classes have these sizes, before reading it."""
    return sum(_held_out(n, dev_fraction) for n in class_sizes)


def split_sizes_text(rows: int, held_out: int, asked: int | None) -> str:
    """What a run on a CSV trains on, in words, for the Train page and the CLI to say before it starts."""
    pool = rows - held_out
    if asked is not None and asked < pool:
        return (f"the run trains on a random {asked:,} of the {pool:,} training examples of this CSV "
                f"({rows:,} rows, {held_out:,} held out as the dev set)")
    unused = "" if asked is None or asked == pool else f" (fewer than the {asked:,} asked for)"
    return (f"the run trains on all {pool:,} training examples of this CSV: its {rows:,} rows, {held_out:,} "
            f"held out as the dev set{unused}")


# ---------------------------------------------------------------- tokenising and batching

@dataclass
class Encoded:
    """Token ids of a dataset, unpadded, with their labels; for pairs also the segment ids where the
    tokenizer gives them (BERT's token_type_ids: 0 for the first segment, 1 for the second)."""
    ids: list[list[int]]
    labels: list[int]
    token_types: list[list[int]] | None = None

    def lengths(self) -> np.ndarray:
        """Tokens per example (a pair's both segments and special tokens): what length-bucketing sorts by."""
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def encode(tokenizer, inputs: Sequence[Input], max_length: int) -> Encoded:
    """Tokenize sentences, or pairs with the tokenizer's pair encoding (the longer segment is truncated
    first). Labels are left empty for the caller to fill."""
    if not inputs:
        return Encoded([], [])
    if isinstance(inputs[0], tuple):
        if not all(isinstance(x, tuple) and len(x) == 2 for x in inputs):
            raise ValueError("inputs mix sentences and sentence pairs")
        out = tokenizer([a for a, _ in inputs], [b for _, b in inputs], truncation=True, max_length=max_length,
                        add_special_tokens=True)
        return Encoded(out["input_ids"], [], out.get("token_type_ids"))
    out = tokenizer(list(inputs), truncation=True, max_length=max_length, add_special_tokens=True)
    return Encoded(out["input_ids"], [])


def encode_dataset(tokenizer, data: TextDataset, max_length: int) -> Encoded:
    encoded = encode(tokenizer, data.inputs, max_length)
    encoded.labels = list(data.labels)
    return encoded


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                     pool: int = 50) -> list[np.ndarray]:
    """Index batches of similar length: shuffle, sort inside pools of `pool` batches, shuffle the batches.

    With rng None (evaluation) the batches are simply sorted by length.
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    chunk = batch_size * pool
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def pad_batch(encoded: Encoded, rows: Sequence[int], pad_id: int,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The model inputs of some rows, padded to their longest: input_ids, attention_mask, and
    token_type_ids when the rows are pairs with segment ids."""
    ids = [encoded.ids[i] for i in rows]
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    batch = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
    if encoded.token_types is not None:
        types = torch.zeros((len(ids), width), dtype=torch.long)
        for row, i in enumerate(rows):
            types[row, :len(encoded.token_types[i])] = torch.tensor(encoded.token_types[i], dtype=torch.long)
        batch["token_type_ids"] = types.to(device)
    return batch


def model_inputs(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments a model's forward takes from a batch (segment ids only when it has them)."""
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {k: batch[k] for k in keys if k in batch}


def iter_batches(encoded: Encoded, batches: list[np.ndarray], pad_id: int,
                 device: torch.device | str = "cpu") -> Iterator[dict[str, torch.Tensor]]:
    for idx in batches:
        batch = pad_batch(encoded, idx, pad_id, device)
        batch["labels"] = torch.tensor([encoded.labels[i] for i in idx], dtype=torch.long, device=device)
        batch["index"] = torch.as_tensor(idx)
        yield batch
