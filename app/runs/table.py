"""The Runs page's table: filtering index rows, turning them into a DataFrame, zipping a run for download."""
from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from app.formatting import learned_text, short_dataset, short_model
from engine.store.runs import RunStore

COLUMNS = ["id", "kind", "method", "dataset", "model", "seed", "status", "dev acc", "learned", "chance",
           "AdvGLUE acc (own task)", "created"]


def filter_rows(rows: Sequence[dict], chosen: Mapping[str, Sequence[str]], search: str = "") -> list[dict]:
    """Rows whose status/method/dataset/model is among the chosen values (an empty choice keeps all)
    and whose id contains the search text."""
    def value(row: dict, column: str) -> str:
        if column == "method":
            return row["method"] or row["kind"]
        return row.get(column) or "?"

    search = search.strip().lower()
    return [row for row in rows
            if all(not wanted or value(row, column) in wanted for column, wanted in chosen.items())
            and (not search or search in row["id"].lower())]


def runs_frame(rows: Sequence[dict], learning: Mapping[str, dict | None]) -> pd.DataFrame:
    """The index rows as the table shows them (short dataset/model names, local creation time), with whether
    each run learned and its dev set's chance level from `learning` (run id -> `learning_status`)."""
    def chance(run_id: str) -> float | None:
        return (learning.get(run_id) or {}).get("chance_accuracy")

    return pd.DataFrame([{"id": r["id"], "kind": r["kind"], "method": r["method"],
                          "dataset": short_dataset(r["dataset"]), "model": short_model(r["model"]),
                          "seed": r["seed"], "status": f"damaged: {r['damage']}" if r.get("damage") else r["status"],
                          "dev acc": r["dev_accuracy"],
                          "learned": learned_text(learning.get(r["id"])), "chance": chance(r["id"]),
                          "AdvGLUE acc (own task)": r["advglue_accuracy"],
                          "created": datetime.fromtimestamp(r["created"]) if r["created"] else None}
                         for r in rows], columns=COLUMNS)


def zip_bytes(store: RunStore, run_id: str) -> bytes:
    """The run folder as zip bytes, built in a temporary folder that is removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        return store.export_zip(run_id, Path(tmp) / f"{run_id}.zip").read_bytes()
