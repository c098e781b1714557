"""The registered datasets (SST-2, GLUE pairs, AdvGLUE): where each is read from (the data folder, else the
Hugging Face hub when online), each task's dev and robustness sets, and `load_dataset` by name or `csv:PATH`."""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.data.csv_reading import read_csv
from engine.data.glue_tsv import GLUE_COLUMNS, GlueFileError, read_glue_pairs
from engine.data.text_dataset import PAIR_TASKS, SST2_LABELS, DataError, LabelOrderDataError, TextDataset
from engine.paths import data_dir
from engine.user_text import quoted


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
    """One of GLUE's TSV files of a pair task (engine/data/glue_tsv.py has the columns), labels in GLUE's id order."""
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
    (a page's, `engine.store.owned_paths.page_roots`); None: anywhere (the command line)."""
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
