"""Plotly figures of a benchmark report: each metric by method row (mean, spread, every seed), and accuracy
under attack against query budget, each accuracy with its chance line. They take engine.reporting.benchmark's report
dicts. No Streamlit here."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from app.figures import PALETTE


def method_colors(methods: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


CHANCE_TEXT = {"dev_accuracy": "chance (dev majority class) {:.1f}",
               "advglue_accuracy": "chance (majority class of its AdvGLUE sentences) {:.1f}",
               "accuracy_under_attack": "chance (constant prediction) {:.1f}"}


def add_chance_line(fig: go.Figure, metric: str, chance: dict[str, float]) -> None:
    """A dashed line where a model predicting one class for everything would sit (in points), so a number
    near it reads as "did not learn", not as robustness."""
    if metric in chance:
        fig.add_hline(y=chance[metric] * 100, line=dict(color="#b22", dash="dash", width=1.2),
                      annotation_text=CHANCE_TEXT[metric].format(chance[metric] * 100),
                      annotation_position="bottom right", annotation_font=dict(size=11, color="#b22"))


def metric_figure(report: dict[str, Any], metric: str, title: str, colors: dict[str, str],
                  height: int = 300) -> go.Figure:
    """Each method row's mean over the seeds that count (a diamond with ± one standard deviation) beside a dot
    for every counted run, in points, with the chance line on accuracies. Dots, not bars: the axis is zoomed
    to the data, and a cut-off bar would exaggerate gaps."""
    fig = go.Figure()
    rows = [m for m in report["methods"] if m.get(metric) is not None]
    fig.add_trace(go.Scatter(
        x=[m["method"] for m in rows], y=[m[metric] * 100 for m in rows], mode="markers", name="mean",
        marker=dict(color=[colors.get(m["method"], "#888") for m in rows], size=13, symbol="diamond"),
        error_y=dict(type="data", array=[(m[f"{metric}_std"] or 0) * 100 for m in rows], visible=True,
                     thickness=2, width=8),
        hovertemplate="%{x}<br>mean %{y:.1f}<extra></extra>"))
    runs = [r for r in report["runs"] if r["included"] and r.get(metric) is not None]
    fig.add_trace(go.Scatter(
        x=[r["row"] for r in runs], y=[r[metric] * 100 for r in runs], mode="markers", name="one run",
        marker=dict(color="rgba(0,0,0,0)", size=8, line=dict(color="#444", width=1.2)),
        customdata=[[r["seed"], r["run_id"]] for r in runs],
        hovertemplate="%{x} seed %{customdata[0]}<br>%{y:.1f}<br>%{customdata[1]}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height, showlegend=False,
                      margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(title_text="%")
    add_chance_line(fig, metric, report.get("chance", {}))
    return fig


def budget_figure(curves: dict[str, Any], colors: dict[str, str], chance: dict[str, float],
                  height: int = 340) -> go.Figure:
    """Accuracy under attack if the attack had stopped after each number of queries, per method row, with the
    chance line of the attacked sentences."""
    fig = go.Figure()
    x = curves["budgets"]
    for method, curve in curves["methods"].items():
        color = colors.get(method, "#888")
        mean = [v * 100 for v in curve["mean"]]
        if curve["std"]:
            upper = [m + s * 100 for m, s in zip(mean, curve["std"])]
            lower = [m - s * 100 for m, s in zip(mean, curve["std"])]
            fig.add_trace(go.Scatter(x=x + x[::-1], y=upper + lower[::-1], fill="toself", fillcolor=color,
                                     opacity=0.15, line=dict(width=0), hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=f"{method} (n={curve['n']})",
                                 line=dict(color=color, width=2, shape="hv"),
                                 hovertemplate=method + ": %{y:.1f} % at %{x} queries<extra></extra>"))
    fig.update_layout(title=dict(text="Accuracy under attack against query budget", x=0, font=dict(size=14)),
                      height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.01))
    fig.update_xaxes(title_text="queries allowed per sentence", rangemode="tozero")
    fig.update_yaxes(title_text="accuracy under attack (%)", rangemode="tozero")
    add_chance_line(fig, "accuracy_under_attack", chance)
    return fig
