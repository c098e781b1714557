"""The Train page's right column: the run this page follows, live, and the other runs queued or running.

The run the page starts is kept in the session and in the page's address (`?run=ID`), so a refreshed page (a new
session) follows it again. With no run to follow, the page offers the newest run still training. The list of
other active runs is re-read every few seconds while any is going, so a finished run never shows as running."""
from __future__ import annotations

import streamlit as st

from app.components import job_panel, page_link, status_badge
from app.formatting import fmt_time, run_label
from app.live import poll
from app.state import get_store
from engine.store.runs import ACTIVE

FOLLOWED = "train-run-id"   # session key of the run the page follows
ADDRESS = "run"             # the query parameter that keeps it across a refresh


def follow(run_id: str) -> None:
    """Make `run_id` the run this page follows, in the session and in the address."""
    st.session_state[FOLLOWED] = run_id
    st.query_params[ADDRESS] = run_id


def followed_run(known: set[str]) -> str | None:
    """The session's run, else the address's when the store holds a run of that id (a refreshed page)."""
    run_id = st.session_state.get(FOLLOWED)
    if run_id:
        return run_id
    in_address = st.query_params.get(ADDRESS)
    if in_address in known:
        follow(in_address)
        return in_address
    return None


def your_run() -> None:
    """The run this page follows (live), or the newest run still training to follow, or how to start one; then
    every other active run."""
    rows = get_store().list()
    run_id = followed_run({row["id"] for row in rows})
    if run_id:
        job_panel(run_id, stacked=True)
        other_active_runs({run_id})
        return
    offered = next((row for row in rows if row["kind"] == "train" and row["status"] in ACTIVE), None)
    offer(offered)
    other_active_runs({offered["id"]} if offered else set())


def offer(row: dict | None) -> None:
    """A run still training, with a button to follow it; how to start one when there is none."""
    if row is None:
        st.info("Set up a run on the left and press **Train**: its progress, live loss and dev-accuracy curves "
                "appear here.")
        return
    st.info(f"Run `{row['id']}` ({row['method']}, started {fmt_time(row['created'])}) is still training. "
            "Follow it here, or set up another on the left.", icon=":material/model_training:")
    st.button("Follow it", key="train-follow", icon=":material/visibility:", on_click=follow, args=(row["id"],))


def other_active_runs(shown: set[str]) -> None:
    """The queued or running runs not already shown, re-read every 5 s while there are any."""
    store = get_store()
    poll(lambda: [row for row in store.list() if row["status"] in ACTIVE and row["id"] not in shown],
         bool, _draw_others, every=5)


def _draw_others(rows: list[dict], _live: bool) -> None:
    if not rows:
        return
    st.markdown("**Also queued or running**")
    for row in rows:
        cols = st.columns([0.2, 0.8], vertical_alignment="center")
        with cols[0]:
            status_badge(row["status"])
        cols[1].markdown(run_label(row))
    page_link("runs.py", "All runs", icon=":material/table_view:")
