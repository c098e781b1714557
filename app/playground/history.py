"""The edit history: every version of the sentence predicted in this tab, with what each model made of it."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.playground.model_choice import run_tag
from app.playground.models import loaded_model


def _change(before: str, after: str) -> str:
    """The edit between two versions, or `new sentence` when most words differ."""
    import difflib

    from engine.attacks.diff import diff_summary

    if difflib.SequenceMatcher(None, before.split(), after.split()).ratio() < 0.5:
        return "(new sentence)"
    return diff_summary(before, after) or "(same words)"


def log_history(entry: dict) -> None:
    """Keep each new version of the sentence; the same text seen by another model joins its version."""
    history = st.session_state.setdefault("pg-history", [])
    if not entry["probs"]:
        return
    if history and history[-1]["text"] == entry["text"]:
        history[-1]["probs"].update(entry["probs"])
        return
    history.append(entry)
    del history[:-200]


def history_panel(run_ids: list[str]) -> None:
    """Every version of the sentence predicted in this tab, with its probabilities (counterfactuals)."""
    history = [h for h in st.session_state.get("pg-history", []) if any(r in h["probs"] for r in run_ids)]
    st.caption("Edit the sentence above and press Ctrl+Enter: each version is kept here with what each model "
               "made of it, so you can see which word changes move the prediction.")
    if not history:
        st.info("Nothing predicted yet.")
        return
    names = loaded_model(run_ids[0]).label_names
    positive = len(names) - 1
    rows = []
    for i, h in enumerate(history):
        row = {"#": i + 1, "change from previous": _change(history[i - 1]["text"], h["text"]) if i else "(first)",
               "text": h["text"]}
        for run_id in run_ids:
            p = h["probs"].get(run_id)
            row[f"p({names[positive]}) · {run_tag(run_id)}"] = None if p is None else round(p[positive], 4)
        rows.append(row)
    fig = go.Figure()
    for run_id in run_ids:
        points = [(i + 1, h["probs"][run_id][positive]) for i, h in enumerate(history) if run_id in h["probs"]]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                 name=run_tag(run_id), hovertemplate="version %{x}: %{y:.1%}<extra></extra>"))
    fig.add_hline(y=0.5, line=dict(dash="dash", width=1, color="gray"), annotation_text="decision boundary",
                  annotation_position="bottom right")
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=36, b=0), yaxis=dict(range=[0, 1], tickformat=".0%",
                      title=f"p({names[positive]})"), xaxis=dict(title="version", dtick=1),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    st.plotly_chart(fig, key="pg-history-fig")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="pg-history-table")
    if st.button("Clear history", key="pg-history-clear", icon=":material/delete_sweep:"):
        st.session_state["pg-history"] = history[-1:]
        st.rerun()
