"""Uploaded CSVs: keep the file in the run store, validate it with the engine, and summarise it.

The engine's `read_csv` does the checking (DataError says what is wrong) on a temporary copy first,
so a file that fails is never kept and the uploads folder only holds files a run can use.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.data.csv_reading import csv_columns, read_csv, store_upload
from engine.data.csv_table import CsvFormatError, file_encoding, read_table
from engine.data.splits import split_train_dev
from engine.data.text_dataset import DataError

CsvChoice = dict[str, str | None]   # TrainConfig's CSV fields (text_column, text_column_b, label_column, task)


@dataclass
class UploadSummary:
    path: Path
    rows: int
    label_names: list[str]       # the classes in id order: names sorted, or the integer ids as text
    encoding: str                # the codec it was read with, a key of engine.data.csv_table.ENCODING_NAMES
    preview: pd.DataFrame        # the first rows: label, then the text or both texts of a pair (short column first)
    class_counts: pd.DataFrame   # label, examples, share
    columns: CsvChoice           # how it was read: the columns and task a TrainConfig takes for it
    segment_names: tuple[str, str] | None = None   # the two text columns of a sentence-pair CSV

    @property
    def dataset_name(self) -> str:
        """The name a TrainConfig takes for this file."""
        return f"csv:{self.path}"

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def named_labels(self) -> bool:
        """Whether the label column holds names (whose id order the user may choose) rather than integer ids."""
        return self.label_names != [str(i) for i in range(self.num_labels)]

    @property
    def class_sizes(self) -> list[int]:
        """Examples per class, class 0 first: what the held-out dev split is cut from."""
        return [int(n) for n in self.class_counts["examples"]]


def upload_header(content: bytes) -> tuple[list[str], CsvChoice]:
    """An upload's header and the columns `read_csv` finds in it by name (None where it finds none), so the page
    can offer them before the file is read with the columns chosen."""
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "upload.csv"
        candidate.write_bytes(content)
        try:
            header = [name.strip() for name in read_table(candidate).header]
        except CsvFormatError as err:
            raise DataError(str(err)) from None
    return header, csv_columns(header)


def accept_upload(content: bytes, filename: str, dev_fraction: float = 0.1, preview_rows: int = 8,
                  columns: CsvChoice | None = None) -> UploadSummary:
    """Store and validate an upload read with `columns` (a TrainConfig's CSV fields; None: found by name); raises
    DataError (and keeps nothing new) when it is not usable."""
    if not content:
        raise DataError(f"{filename} is empty")
    columns = dict(columns or {})
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "upload.csv"
        candidate.write_bytes(content)
        data = read_csv(candidate, **columns)  # raises DataError before anything is kept
        encoding = file_encoding(candidate)
    split_train_dev(data, dev_fraction, 0)  # a dev split is held out of it: refuse a CSV too small for one
    path = store_upload(content, filename)
    counts = pd.Series(data.labels).value_counts().sort_index()
    class_counts = pd.DataFrame({"label": [data.label_names[i] for i in counts.index], "examples": counts.values,
                                 "share": (counts.values / len(data)).round(3)})
    texts = ({"text": data.texts[:preview_rows]} if data.texts_b is None else
             {data.segment_names[0]: data.texts[:preview_rows], data.segment_names[1]: data.texts_b[:preview_rows]})
    preview = pd.DataFrame({"label": [data.label_names[i] for i in data.labels[:preview_rows]], **texts})
    return UploadSummary(path=path, rows=len(data), label_names=data.label_names, encoding=encoding, preview=preview,
                         class_counts=class_counts, columns=columns,
                         segment_names=data.segment_names if data.is_pair else None)
