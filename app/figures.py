"""Plotly figures of training curves: one run's loss and accuracy, and several runs overlaid.

They take the rows of a run's metrics.jsonl (`{"step", "split", "name", "value"}`) so they work the
same on a finished run and on one still writing its file. No Streamlit here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.colors
import plotly.graph_objects as go

Rows = Sequence[Mapping]
PALETTE = plotly.colors.qualitative.D3

# Splits that are not the training set or the dev set are robustness sets scored once at the end.
_NOT_ROBUSTNESS = {"train", "dev", "heldout"}


def series(rows: Rows, split: str, name: str) -> tuple[list[int], list[float]]:
    """Steps and values of one scalar, sorted by step (later duplicates of a step win)."""
    points = {int(r["step"]): float(r["value"]) for r in rows if r.get("split") == split and r.get("name") == name}
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def has_series(rows: Rows, split: str, name: str) -> bool:
    return any(r.get("split") == split and r.get("name") == name for r in rows)


def robustness_points(rows: Rows) -> dict[str, tuple[int, float]]:
    """Final accuracy on each robustness set (e.g. advglue-sst2): set -> (step, accuracy)."""
    out: dict[str, tuple[int, float]] = {}
    for r in rows:
        if r.get("name") == "accuracy" and r.get("split") not in _NOT_ROBUSTNESS:
            out[r["split"]] = (int(r["step"]), float(r["value"]))
    return out


def _layout(fig: go.Figure, title: str, y_title: str, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    fig.update_xaxes(title_text="training step", rangemode="tozero")
    fig.update_yaxes(title_text=y_title)
    return fig


def loss_figure(rows: Rows, height: int = 320) -> go.Figure:
    """Training loss (mean over each logging window) and dev loss at each evaluation."""
    fig = go.Figure()
    steps, values = series(rows, "train", "loss")
    fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name="train loss", line=dict(width=2)))
    steps, values = series(rows, "dev", "loss")
    if steps:
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name="dev loss",
                                 line=dict(dash="dot", width=2)))
    return _layout(fig, "Loss", "cross-entropy", height)


def accuracy_figure(rows: Rows, num_labels: int | None = None, height: int = 320) -> go.Figure:
    """Dev accuracy at each evaluation, the final robustness-set accuracies as points, and chance level."""
    fig = go.Figure()
    steps, values = series(rows, "dev", "accuracy")
    if not steps:
        steps, values = series(rows, "heldout", "accuracy")
    fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name="dev accuracy", line=dict(width=2)))
    for name, (step, value) in sorted(robustness_points(rows).items()):
        fig.add_trace(go.Scatter(x=[step], y=[value], mode="markers", name=name,
                                 marker=dict(symbol="diamond", size=12)))
    if num_labels and num_labels > 1:
        fig.add_hline(y=1 / num_labels, line=dict(dash="dash", width=1, color="gray"),
                      annotation_text="chance", annotation_position="bottom right")
    return _layout(fig, "Accuracy", "accuracy", height)


def comparison_figure(runs: Mapping[str, Rows], split: str, name: str, title: str | None = None,
                      height: int = 360) -> go.Figure:
    """One metric of several runs on shared axes; `runs` maps a legend label to that run's rows."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(runs.items()):
        steps, values = series(rows, split, name)
        if steps:  # a run keeps its colour in every comparison chart, even when another run has no points
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers" if len(steps) < 12 else "lines",
                                     name=label, line=dict(color=PALETTE[i % len(PALETTE)], width=2)))
    _layout(fig, title or f"{split} {name}", name, height)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
                      margin=dict(b=10))
    return fig
