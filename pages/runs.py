# title: Runs
# icon: :material/table_view:
# section: RobustLab
# order: 30
"""Runs: every run in the store, the details of one (curves, results, config, log), a comparison of
several, export as zip and delete."""
import streamlit as st

from app.runs.panels import all_runs, keep_tab_choices, run_comparison, run_details, runs_table

st.title("Runs")
keep_tab_choices()
rows = all_runs()   # stops the page on an empty store
visible = runs_table(rows)
details_tab, compare_tab = st.tabs(["Details", "Compare"], key="runs-view", on_change="rerun")
if details_tab.open:
    with details_tab:
        run_details(rows, visible)
if compare_tab.open:
    with compare_tab:
        run_comparison(rows, visible)
