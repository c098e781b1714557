"""Which dataset a page is about, so that its pickers default to runs of that dataset and its comparisons never
put runs of two datasets side by side (a news-topic model is no baseline for an SST-2 one)."""
from __future__ import annotations

from collections.abc import Iterable

DEFAULT_DATASET = "sst2"


def context_dataset(rows: list[dict], chosen: Iterable[str] = ()) -> str | None:
    """The dataset of the first chosen run that is among `rows` (index rows, newest first); without one, SST-2
    when some row has it, else the newest row's dataset; None without rows."""
    by_id = {row["id"]: row for row in rows}
    for run_id in chosen:
        if by_id.get(run_id, {}).get("dataset"):
            return by_id[run_id]["dataset"]
    datasets = [row.get("dataset") for row in rows if row.get("dataset")]
    if DEFAULT_DATASET in datasets:
        return DEFAULT_DATASET
    return datasets[0] if datasets else None


def of_dataset(rows: list[dict], dataset: str | None) -> list[dict]:
    """The rows of runs trained on `dataset`."""
    return [row for row in rows if row.get("dataset") == dataset]
