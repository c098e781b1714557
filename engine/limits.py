"""The largest values RobustLab takes for counts a person types (CLI or page), each with why, and the checks that
refuse non-finite numbers and names too long for the file system. In one place so a cap is changed once.

A cap is well beyond any study RobustLab is for and well below what would fill a disk, hold the worker for years
or overflow the run index (SQLite stores 64-bit integers): past it, a number is a typo, not a plan.
"""
from __future__ import annotations

import math
import os

# numpy's legacy seeding (np.random.seed, which the training loop calls) takes seeds below 2**32; far below the
# int64 that SQLite's run index and numpy's arrays hold, so a seed of 10**21 is refused before either sees it
MAX_SEED = 2**32 - 1
# one suite or recovery grid: each seed is a whole training run per method (or per cell); 100 is already days
MAX_SEEDS = 100
# passes over the training examples: fine-tuning takes 1-10; 1,000 over even a tiny sample is weeks of steps
MAX_EPOCHS = 1000
# training or dev examples: the largest registered set (MNLI) has 392,702; a 25 MB CSV holds at most a few million
MAX_EXAMPLES = 10_000_000
# examples per step: a BERT-base step on 4,096 sentences of 512 tokens already needs far more than one GPU's memory
MAX_BATCH_SIZE = 4096
# tokens per sentence: BERT's position embeddings stop at 512; 8 leaves room for [CLS], [SEP] and a few words
MIN_LENGTH, MAX_LENGTH = 8, 512
# steps between evaluations, records or log lines: beyond any run's length (MAX_EPOCHS x MAX_EXAMPLES steps)
MAX_INTERVAL = MAX_EPOCHS * MAX_EXAMPLES
# model queries per attacked example: TextAttack's recipes use hundreds to a few thousand
MAX_QUERIES = 1_000_000
# examples one batch attack (or a suite's attacks) may take: beyond every registered evaluation set
MAX_ATTACK_EXAMPLES = 100_000
# one uploaded file (a training CSV, a behaviour suite): a CSV this size already holds hundreds of thousands of rows
UPLOAD_FILE_BYTES = 25 * 2**20
# the whole upload folder, unless ROBUSTLAB_UPLOAD_QUOTA_BYTES says otherwise: uploads are kept for good (runs point
# at them), so a dashboard reached by others must not be able to fill the server's disk with them
UPLOAD_FOLDER_BYTES = 1024 * 2**20
UPLOAD_QUOTA_VARIABLE = "ROBUSTLAB_UPLOAD_QUOTA_BYTES"
# bytes of a path and of one name in it that Linux and macOS file systems take (PATH_MAX, NAME_MAX)
PATH_BYTES, NAME_BYTES = 4096, 255


def number_text(value: int) -> str:
    """A whole number as a message repeats it: with thousands separators, or its digit count when it is long."""
    digits = len(str(abs(value)))
    return f"{value:,}" if digits <= 24 else f"a number of {digits:,} digits"


def not_finite(value: object) -> bool:
    """A float that is nan or ±inf (an int or anything else is not judged here)."""
    return isinstance(value, float) and not math.isfinite(value)


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a path cannot name a file on this file system from its text alone (the file system would raise
    `File name too long`), or None."""
    text = os.fspath(path)
    if "\x00" in text:
        return "it contains a NUL character"
    if len(text.encode("utf-8", "surrogateescape")) > PATH_BYTES:
        return f"it is longer than the {PATH_BYTES:,} bytes a path may hold"
    if any(len(part.encode("utf-8", "surrogateescape")) > NAME_BYTES for part in text.split(os.sep)):
        return f"a folder or file name in it is longer than the {NAME_BYTES} bytes a name may hold"
    return None


def upload_quota() -> int:
    """The bytes the upload folder may hold in all: ROBUSTLAB_UPLOAD_QUOTA_BYTES when set, else
    UPLOAD_FOLDER_BYTES."""
    value = os.environ.get(UPLOAD_QUOTA_VARIABLE, "").strip()
    return int(value) if value.isdigit() else UPLOAD_FOLDER_BYTES


def megabytes(size: int) -> str:
    """A size in MB as a message says it."""
    return f"{size / 2**20:,.1f} MB"
