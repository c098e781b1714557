"""Each model's prediction for the sentence: its class probabilities and the word-level saliency behind it."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app.plain_text import markdown_text
from app.playground import text_views
from app.playground.history import log_history
from app.playground.model_choice import run_heading
from app.playground.models import explanation, loaded_model, probabilities
from engine.data.text_dataset import Input
from engine.explain.attribution import EXPLAINERS, AttributionError
from engine.models.architecture import ModelError
from engine.store.runs import RunError

PROBABILITY_TICKS = [0, 0.25, 0.5, 0.75, 1]   # both ends labelled, with room: the axis visibly ends at 100 %


def probs_figure(label_names: list[str], bars: dict[str, list[float]], height: int = 140) -> go.Figure:
    """Class probabilities as horizontal bars; several named series (before/after) side by side."""
    fig = go.Figure()
    colors = ["#2F6FB3", "#E8781A", "#7A5AC0"]
    for i, (name, probs) in enumerate(bars.items()):
        fig.add_trace(go.Bar(y=label_names, x=probs, orientation="h", name=name, marker_color=colors[i % 3],
                             text=[f"{p:.1%}" for p in probs], textposition="auto",
                             hovertemplate="%{y}: %{x:.2%}<extra>" + name + "</extra>"))
    fig.update_layout(height=height + 30 * (len(bars) - 1), margin=dict(l=16, r=28, t=4, b=4), barmode="group",
                      xaxis=dict(range=[0, 1], tickvals=PROBABILITY_TICKS, tickformat=".0%"),
                      showlegend=len(bars) > 1, legend=dict(orientation="h", y=-0.25), bargap=0.25)
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def saliency_choice() -> str:
    names = {v: k for k, v in EXPLAINERS.items()}
    chosen = st.segmented_control("Saliency", list(names), default=EXPLAINERS["ig"], key="pg-saliency",
                                  help="Integrated gradients (32 steps, from an all-[PAD] baseline) and gradient × "
                                       "input attribute the predicted class's probability to each word; attention "
                                       "shows where [CLS] looks in the last layer.")
    how = names.get(chosen or EXPLAINERS["ig"], "ig")
    st.session_state["pg-saliency-how"] = how
    return how


def predictions(run_ids: list[str], text: Input, how: str, gold: dict | None) -> None:
    """Prediction, probabilities and saliency for each model (over both segments of a pair), side by side;
    logs the edit history."""
    columns = st.columns(len(run_ids), gap="large")
    entry: dict[str, Any] = {"text": text, "probs": {}}
    for column, run_id in zip(columns, run_ids):
        with column:
            if len(run_ids) > 1:
                st.markdown(f"**{run_heading(run_id)}**")
            try:
                model = loaded_model(run_id)
                probs = probabilities(run_id, text)
            except (ModelError, RunError) as err:
                st.error(markdown_text(str(err)))
                continue
            entry["probs"][run_id] = probs
            # one model: probabilities left, saliency right; two models: each column stacked
            left, right = st.columns([2, 3], gap="medium") if len(run_ids) == 1 else (st.container(), st.container())
            with left:
                _prediction(run_id, model.label_names, probs, gold)
            with right:
                try:
                    attribution = explanation(run_id, text, how)
                except AttributionError as err:
                    st.warning(markdown_text(str(err)))
                    continue
                text_views.heatmap(attribution, label=f"{EXPLAINERS[how]} for {attribution.target_name} "
                                                      f"(hover for details)")
                _saliency_caption(attribution)
    log_history(entry)


def _prediction(run_id: str, names: list[str], probs: list[float], gold: dict | None) -> None:
    top = max(range(len(probs)), key=probs.__getitem__)
    verdict = ""
    if gold:
        verdict = (" · :green[matches the label]" if gold["label"] == top else
                   f" · :red[wrong: the {gold['source']} label is {markdown_text(gold['name'])}]")
    st.markdown(f"Prediction: **{markdown_text(names[top])}** ({probs[top]:.1%}){verdict}")   # names: a CSV's
    st.plotly_chart(probs_figure(names, {"p": probs}, height=110), key=f"pg-probs-{run_id}",
                    config={"displayModeBar": False})


def _saliency_caption(attribution) -> None:
    if attribution.segment_names:
        first, second = (markdown_text(name) for name in attribution.segment_names)   # a CSV's column names
        st.caption(f"The boxed [SEP] is where the {first} ends and the {second} begins: the model reads both "
                   "in one pass, so a word in either can drive the prediction.")
    if attribution.how == "attention":
        st.caption("Darker: more of [CLS]'s last-layer attention. Hover a word for its share.")
        return
    note = (f"Orange words push toward **{markdown_text(attribution.target_name)}**, blue words away from it. Hover a "
            f"word for its score, the box for what the scores mean.")
    if attribution.completeness:
        c = attribution.completeness
        error = f"{c['error']:+.4f}" if abs(c["error"]) >= 1e-3 else f"{c['error']:+.1e}"
        note += f" Completeness error {error} ({c['relative_error']:.2%} of the change in output)."
    st.caption(note)
