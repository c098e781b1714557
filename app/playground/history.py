"""The edit history: every version of the sentence predicted in this tab, with what each model made of it."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.playground.model_choice import run_tag
from app.playground.models import loaded_model
from app.playground.text_views import one_line
from engine.data.text_dataset import Input


def _change(before: Input, after: Input) -> str:
    """The edit between two versions (of a pair: across both segments), or `new sentence` when most words
    differ."""
    import difflib

    from engine.attacks.diff import diff_summary

    before, after = one_line(before), one_line(after)
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


def _top_other(probs: list[float], original: int) -> int:
    return max((k for k in range(len(probs)) if k != original), key=probs.__getitem__)


def history_figure(history: list[dict], run_ids: list[str], names: dict[str, list[str]]) -> go.Figure:
    """Per model, the probability of the class it gave the first version, and (with more than two classes) of
    the strongest other class: the prediction flips where the two lines cross. The 50 % line is drawn only
    when every model has two classes, where it is the decision boundary."""
    fig = go.Figure()
    many = any(len(n) > 2 for n in names.values())
    for run_id in run_ids:
        seen = [(i + 1, h["probs"][run_id]) for i, h in enumerate(history) if run_id in h["probs"]]
        if not seen:
            continue
        label = names[run_id]
        original = max(range(len(seen[0][1])), key=seen[0][1].__getitem__)
        line = go.Scatter(x=[v for v, _ in seen], y=[p[original] for _, p in seen], mode="lines+markers",
                          name=f"{run_tag(run_id)}: p({label[original]}), the first version's class",
                          hovertemplate=f"version %{{x}}: p({label[original]}) %{{y:.1%}}<extra></extra>")
        fig.add_trace(line)
        if many:
            others = [_top_other(p, original) for _, p in seen]
            fig.add_trace(go.Scatter(x=[v for v, _ in seen], y=[p[k] for (_, p), k in zip(seen, others)],
                                     mode="lines+markers", line=dict(dash="dot"), customdata=[label[k] for k in others],
                                     name=f"{run_tag(run_id)}: top other class",
                                     hovertemplate="version %{x}: p(%{customdata}) %{y:.1%}<extra></extra>"))
    if not many:
        fig.add_hline(y=0.5, line=dict(dash="dash", width=1, color="gray"), annotation_text="decision boundary",
                      annotation_position="bottom right")
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=36, b=0),
                      yaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
                      xaxis=dict(title="version", dtick=1),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def history_panel(run_ids: list[str]) -> None:
    """Every version of the sentence predicted in this tab, with what each model predicted (counterfactuals)."""
    history = [h for h in st.session_state.get("pg-history", []) if any(r in h["probs"] for r in run_ids)]
    st.caption("Edit the sentence above and press Ctrl+Enter: each version is kept here with what each model "
               "made of it, so you can see which word changes move the prediction.")
    if not history:
        st.info("Nothing predicted yet.")
        return
    names = {run_id: loaded_model(run_id).label_names for run_id in run_ids}
    rows = []
    for i, h in enumerate(history):
        row = {"#": i + 1, "change from previous": _change(history[i - 1]["text"], h["text"]) if i else "(first)",
               "text": one_line(h["text"])}
        for run_id in run_ids:
            p = h["probs"].get(run_id)
            top = None if p is None else max(range(len(p)), key=p.__getitem__)
            row[f"prediction · {run_tag(run_id)}"] = None if p is None else f"{names[run_id][top]} ({p[top]:.1%})"
        rows.append(row)
    st.plotly_chart(history_figure(history, run_ids, names), key="pg-history-fig")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="pg-history-table")
    if st.button("Clear history", key="pg-history-clear", icon=":material/delete_sweep:"):
        st.session_state["pg-history"] = history[-1:]
        st.rerun()
