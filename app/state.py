"""Cached access to the engine from pages: the run store, trained models, the device, dataset files.

Everything is keyed by the run-store home (ROBUSTLAB_HOME) as well, so one Streamlit process (or one
pytest process running many AppTests) never mixes two stores. Models are cached per run id and only
used for inference: a cached model is never trained in place.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from engine.data.registry import available_datasets
from engine.paths import data_dir, runs_home
from engine.store.runs import Run, RunStore


@st.cache_resource(show_spinner=False)
def _store(home: str) -> RunStore:
    return RunStore(home)


def get_store() -> RunStore:
    """The run store under the current ROBUSTLAB_HOME (created on first use)."""
    return _store(str(runs_home()))


@st.cache_resource(show_spinner=False)
def _reconciled(home: str) -> list[str]:
    from engine.execution import jobs

    return jobs.reconcile(_store(home))


def reconcile_once() -> list[str]:
    """Once per process and store: runs marked running whose worker died become failed (their data kept), a
    worker that outlived its Cancel is killed, and queued runs start on free slots."""
    return _reconciled(str(runs_home()))


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=4)
def _model(home: str, run_id: str) -> tuple[Any, Any, Any]:
    from engine.models.device import pick_device
    from engine.models.loading import load_trained

    return load_trained(_store(home).get(run_id).dir, pick_device())


def load_model(run_id: str) -> tuple[Any, Any, Any]:
    """(model in eval mode, tokenizer, method) of a finished run; raises ModelError when it has no model."""
    return _model(str(runs_home()), run_id)


@st.cache_resource(show_spinner=False)
def device_text() -> str:
    """The device training and inference will use, in words (torch is imported once, here)."""
    from engine.models.device import describe, pick_device

    return describe(pick_device())


@st.cache_data(ttl=10, show_spinner=False)
def _datasets(folder: str) -> dict[str, bool]:  # `folder` only keys the cache: ROBUSTLAB_DATA may change
    return available_datasets()


def dataset_availability() -> dict[str, bool]:
    """Each registered dataset and whether its file is in the data folder (re-checked every 10 s)."""
    return _datasets(str(data_dir()))


def active_counts() -> dict[str, int]:
    """How many runs are running and queued right now."""
    rows = get_store().list()
    return {status: sum(r["status"] == status for r in rows) for status in ("running", "queued")}


def learning_of(row: dict) -> dict | None:
    """Whether the run of an index row learned (`engine.training.evaluate.learning_status`), for a finished train run;
    None for anything else."""
    if row.get("kind") != "train" or row.get("status") != "done":
        return None
    from engine.training.evaluate import learning_status

    return learning_status(Run(get_store().home / row["id"]))


def derived_marks_of(row: dict) -> list[str]:
    """What makes the run of an index row a derived one (`app.formatting.derived_marks`: a recovery-grid cell,
    extra training data), read from its folder; [] for a plain run or one whose files cannot be read."""
    from app.formatting import derived_marks

    run = Run(get_store().home / row["id"])
    try:
        config, results = run.config, run.results
    except (OSError, ValueError):
        config, results = {}, {}
    if not isinstance(config, dict):
        return []
    marks = derived_marks(config, results if isinstance(results, dict) else {})
    if not marks and row.get("parent") and row.get("kind") == "train":
        marks = ["inside a recovery grid"]   # its config could not say more
    return marks


def is_plain_default(row: dict) -> bool:
    """Whether a run may be a page's default pick: never a recovery-grid cell (corrupted or its clean baseline),
    a run trained on extra data or a run that did not learn. A person may still pick those by hand."""
    if row.get("parent") and row.get("kind") == "train":
        return False
    if derived_marks_of(row):
        return False
    learning = learning_of(row)
    return not (learning and learning.get("learned") is False)


def default_candidates(rows: list[dict]) -> list[dict]:
    """The rows a page may preselect from (`is_plain_default`), in their order."""
    return [row for row in rows if is_plain_default(row)]
