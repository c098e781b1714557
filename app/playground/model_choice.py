"""Which trained runs the Playground studies: one, or two side by side; their short names in headers and
legends; and, on an empty store, the offer to train the default model."""
from __future__ import annotations

import streamlit as st

from app.components import job_panel, run_picker
from app.dataset_context import context_dataset, of_dataset
from app.formatting import run_title, short_dataset
from app.plain_text import markdown_text
from app.state import default_candidates, derived_marks_of, get_store
from engine.execution import jobs
from engine.paths import runs_home
from engine.store.runs import ACTIVE, RunError, RunStore


def is_trained(row: dict) -> bool:
    return row.get("kind", "train") == "train" and row.get("status") == "done"


@st.cache_data(ttl=10, show_spinner=False)
def _index_rows(home: str) -> dict[str, dict]:
    return {r["id"]: r for r in get_store().list()}


def _row(run_id: str) -> dict:
    """A run's index row (cached briefly: the live view redraws several times a second)."""
    return _index_rows(str(runs_home())).get(run_id, {"id": run_id})


def run_heading(run_id: str) -> str:
    """method · what a derived run is · dataset · model · seed · id tail: a column header that tells two runs
    apart and never lets a healed or extra-data run read as a plain one."""
    marks = derived_marks_of(_row(run_id))
    return " · ".join([run_title(_row(run_id)), *marks, run_id.rsplit("-", 1)[-1]])


def run_tag(run_id: str) -> str:
    """method and id tail only: for legends and table columns."""
    return f"{_row(run_id).get('method') or 'run'} · {run_id.rsplit('-', 1)[-1]}"


def pick_models() -> list[str]:
    """One run, or two of the same dataset to compare; [] when no trained run exists yet. The first defaults to
    the best plain vanilla run of SST-2 (else of the newest run's dataset), never to a run of another dataset just
    because its small dev set scored higher, nor to a derived run (`app.state.is_plain_default`); a `?run=ID` link
    chooses it by hand."""
    rows = [r for r in get_store().list() if is_trained(r)]
    if not rows:
        return []
    # never a recovery-grid cell, a run on extra data or one that did not learn; nor, without a plain run of the
    # page's dataset, one of another dataset
    mine = default_candidates(of_dataset(rows, context_dataset(rows)))
    vanilla = [r for r in mine if r.get("method") == "vanilla"] or mine
    default = max(vanilla, key=lambda r: r.get("dev_accuracy") or 0.0)["id"] if vanilla else None   # best baseline
    if st.query_params.get("run") in {r["id"] for r in rows}:   # a ?run=ID link names one by hand
        default = st.query_params["run"]
    left, right = st.columns(2)
    with left:
        first = run_picker("Model", key="pg-run-a", filter_fn=is_trained, default=default,
                           help="A finished training run (its dataset is in its label). Its model answers every "
                                "question on this page, on sentences of its own dataset.")
    dataset = context_dataset(rows, [first] if first else [])
    second = None
    with right:
        if any(r["id"] != first for r in of_dataset(rows, dataset)):
            second = run_picker("Compare with (optional)", key="pg-run-b",
                                filter_fn=lambda r: is_trained(r) and r["id"] != first and r.get("dataset") == dataset,
                                help=f"A second run on the same dataset ({short_dataset(dataset)}), e.g. ROSE beside "
                                     "vanilla: the same sentence, saliency and attack on both, side by side.")
        else:
            st.caption(f"Train a second model on {short_dataset(dataset)} (for example ROSE) to compare two side by "
                       "side: the same sentence, saliency and attack on both.")
    return [r for r in (first, second) if r]


def offer_default_training(store: RunStore) -> None:
    """No trained model yet: one button trains the default (vanilla MiniLM on 2,000 SST-2 sentences)."""
    active = [r for r in store.list(kind="train") if r["status"] in ACTIVE]
    if active:
        st.info("A model is being trained. The playground opens as soon as it is done.")
        job_panel(active[0]["id"])
        return
    st.info("There is no trained model yet. Train the default one: vanilla fine-tuning of MiniLM on 2,000 SST-2 "
            "sentences (about two minutes on a CPU).", icon=":material/info:")
    if st.button("Train the default model", type="primary", icon=":material/model_training:", key="pg-train"):
        from engine.training.config import TrainConfig
        from engine.training.train import environment

        try:
            jobs.submit(store, {**TrainConfig().to_dict(), "environment": environment()})
        except (RunError, OSError) as err:
            st.error(f"Could not start training: {markdown_text(str(err))}")
            return
        st.rerun()   # the next run finds the queued job and shows its panel
