"""The Train page's right column: the run started here, followed live, and the other runs queued or running."""
from __future__ import annotations

import streamlit as st

from app.components import job_panel, page_link, status_badge
from app.formatting import run_label
from app.state import get_store
from engine.runs import ACTIVE


def your_run() -> None:
    """The run this page started (live), or how to start one; then every other active run."""
    store = get_store()
    run_id = st.session_state.get("train-run-id")
    if run_id:
        job_panel(run_id, stacked=True)
    else:
        st.info("Set up a run on the left and press **Train**: its progress, live loss and dev-accuracy curves "
                "appear here.")
    others = [row for row in store.list() if row["status"] in ACTIVE and row["id"] != run_id]
    if others:
        st.markdown("**Also queued or running**")
        for row in others:
            cols = st.columns([0.2, 0.8], vertical_alignment="center")
            with cols[0]:
                status_badge(row["status"])
            cols[1].markdown(run_label(row))
        page_link("runs.py", "All runs", icon=":material/table_view:")
