"""A user's CSV read and checked: its text and label columns found or named, its labels given ids
(engine/data/csv_labels.py), and uploads stored inside the upload folder under a quota."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from engine.data.csv_labels import LabelError, LabelOrderError, class_ids, is_number, task_class_ids
from engine.data.csv_table import CsvFormatError, CsvTable, read_table
from engine.data.text_dataset import PAIR_TASKS, DataError, FieldDataError, LabelOrderDataError, TextDataset
from engine.limits import UPLOAD_FILE_BYTES, UPLOAD_QUOTA_VARIABLE, megabytes, path_problem, upload_quota
from engine.store.owned_paths import OutsideRootsError, inside, uploads_dir
from engine.user_text import quoted

MAX_CSV_BYTES = UPLOAD_FILE_BYTES
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document")
LABEL_COLUMNS = ("label", "labels", "class", "target", "y")
# a CSV's two text columns of a sentence pair, found by name when none is chosen (GLUE's and AdvGLUE's names)
PAIR_COLUMNS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"),
                ("question1", "question2"))


def read_csv(path: str | Path, text_column: str | None = None, label_column: str | None = None,
             label_order: Sequence[str] | None = None, known_labels: Sequence[str] | None = None,
             text_column_b: str | None = None, task: str | None = None,
             roots: Sequence[Path] | None = None) -> TextDataset:
    """Read and validate a user CSV: a text column, or two for sentence pairs, and one label column of class names
    or integer ids 0..C-1 (at least two classes; engine/data/csv_labels.py says how names get their ids).

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
