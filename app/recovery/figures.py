"""Plotly figures of a corruption-and-recovery grid (no Streamlit here): recovery curves, the position x
level heat map, per-layer CKA and weight drift, and AdvGLUE next to clean accuracy.

They take the aggregates `engine.recovery` computes (means and spreads over seeds), so every number
drawn here was computed in the engine. Colours: bottom-layer cells blue, top-layer cells orange, custom
sets green, embeddings purple, darker for more corrupted layers; the clean baseline is dashed black;
chance (the majority-class rate of the set an accuracy is measured on) is a dash-dot or dotted line.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

CLEAN_COLOR = "#1F2933"
CHANCE_COLOR = "#B03A2E"
_SCALES = {"bottom": "Blues", "top": "Oranges", "custom": "Greens", "embeddings": "Purples"}

CAPTIONS = {
    "curves": "How to read it: dev accuracy measured every few steps while each model fine-tuned (mean over "
              "seeds). The dashed black line is the clean model, fine-tuned with the same data, steps and seeds; "
              "the dotted grey line is 95 % of its final accuracy; the red dash-dot line is chance, the dev set's "
              "majority-class rate (what always answering the commonest label scores; the curve points use a fixed "
              "sample of the dev set, so they can sit a point or so off it). A corrupted model that heals climbs "
              "to the dashed line; the gap left at the end is what fine-tuning could not repair. Blue lines: "
              "bottom layers corrupted, orange: top layers; darker means more layers.",
    "heatmap": "How to read it: one square per corrupted group (row) and number of corrupted layers k (column), "
               "coloured by the chosen metric averaged over seeds. The recovery ratio is chance-corrected: "
               "(accuracy - chance) / (clean accuracy - chance), so 1 is as good as the clean model and 0 no better "
               "than always answering the majority class. The paper expects lower squares in the bottom row and "
               "further right; whether this grid shows it is judged seed by seed in the Healing claim panel.",
    "cka": "How to read it: for each layer, how similar the recovered model's hidden states are to the clean "
           "fine-tuned model's on the same dev sentences (linear CKA: 1 = the same representation up to rotation "
           "and scale, 0 = unrelated). Solid lines are after fine-tuning, dotted lines the corrupted starting point; "
           "the rise from dotted to solid is how much that layer healed. The dashed black line is the pretrained "
           "model before fine-tuning: how much ordinary fine-tuning changes each layer.",
    "drift": "How to read it: how far fine-tuning moved each part of the model (embeddings, each layer, the "
             "classifier head) from where it started: the norm of the change, relative to the norm of the starting "
             "weights or absolute (log scale). Corrupted models start from their corrupted weights (diamonds mark "
             "the corrupted parts); the dashed black line is the clean model moving away from the pretrained weights. "
             "A line above the clean one means that part was rewritten more than ordinary fine-tuning rewrites it; "
             "with Adam every weight moves by about the learning rate per step, so large gaps are rare.",
    "advglue": "How to read it: for each group, the left bar is dev accuracy and the right bar accuracy on "
               "the grid's task's AdvGLUE set (sentences written to fool models), both averaged over seeds, with "
               "the spread over seeds as whiskers. The dashed line is the clean model's AdvGLUE accuracy: bars "
               "below it mean the healed model is less robust than the clean one. The dotted lines are chance, "
               "the majority-class rate of each set: a model that learned nothing answers one label everywhere "
               "and scores about that, so an AdvGLUE bar near its chance line says nothing about robustness.",
}


def group_color(position: str, k: int, max_k: int) -> str:
    """Colour of a cell: its position's hue, darker for more corrupted layers."""
    if position == "clean":
        return CLEAN_COLOR
    scale = _SCALES.get(position, "Greys")
    share = 0.45 + 0.5 * (k / max(max_k, 1)) if position in ("bottom", "top") else 0.75
    return sample_colorscale(scale, [min(share, 0.95)])[0]


def _max_k(items: Sequence[Mapping[str, Any]]) -> int:
    return max([int(i.get("k") or 0) for i in items] + [1])


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height,
                      margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def _side_legend(fig: go.Figure) -> go.Figure:
    """A vertical legend right of the plot: half-width charts have no room for a legend above them."""
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _band_text(std: Sequence[float | None] | None, n: int) -> list[str]:
    if not std:
        return [""] * n
    return [f" ± {s:.3f}" if s is not None else "" for s in std]


def chance_line(fig: go.Figure, y: float | None, text: str, color: str = CHANCE_COLOR, dash: str = "dashdot",
                position: str = "bottom left") -> None:
    """A horizontal line at the accuracy of always answering the majority class."""
    if y is not None:
        fig.add_hline(y=y, line=dict(dash=dash, width=1.5, color=color), annotation_text=f"{text} {y:.3f}",
                      annotation_position=position, annotation_font_color=color)


def recovery_curves_figure(curves: Sequence[Mapping[str, Any]], chance: float | None = None,
                           height: int = 420) -> go.Figure:
    """Dev accuracy against fine-tuning steps: one line per corrupted group and level, clean dashed, and the
    dev set's majority-class rate (`chance`) as a line."""
    fig = go.Figure()
    top = _max_k(curves)
    clean = [c for c in curves if c["position"] == "clean"]
    for curve in [c for c in curves if c["position"] != "clean"] + clean:
        is_clean = curve["position"] == "clean"
        spread = _band_text(curve.get("std"), len(curve["steps"]))
        fig.add_trace(go.Scatter(
            x=curve["steps"], y=curve["mean"], mode="lines+markers", name=curve["label"],
            line=dict(color=group_color(curve["position"], curve["k"], top), width=3 if is_clean else 2,
                      dash="dash" if is_clean else "solid"),
            marker=dict(size=5), customdata=spread,
            hovertemplate=f"{curve['label']}: step %{{x}}, accuracy %{{y:.3f}}%{{customdata}}<extra></extra>"))
    if clean and clean[0]["mean"]:
        target = 0.95 * clean[0]["mean"][-1]
        fig.add_hline(y=target, line=dict(dash="dot", width=1, color="gray"),
                      annotation_text="95 % of clean", annotation_position="bottom right")
    chance_line(fig, chance, "chance (dev majority rate)")
    last = max((max(c["steps"]) for c in curves if c["steps"]), default=1)
    fig.update_xaxes(rangemode="tozero", tickformat="d", dtick=max(1, -(-last // 10)) if last <= 20 else None)
    return _layout(fig, "Recovery curves", "fine-tuning step", "dev accuracy", height)


METRIC_NAMES = {"final_accuracy": "final dev accuracy",
                "recovery_ratio": "recovery ratio ((acc - chance) / (clean - chance))",
                "auc": "area under the recovery curve", "advglue_accuracy": "AdvGLUE accuracy (the grid's task)",
                "steps_to_95": "steps to 95 % of clean"}


def heatmap_figure(table: Mapping[str, Any], metric: str, height: int | None = None) -> go.Figure:
    """Mean metric by corrupted group (rows) and number of corrupted layers k (columns), values written in."""
    levels = [f"k = {k}" if k else "k = 0 (embeddings only)" for k in table["levels"]]
    values, spread = table["values"], table["std"]
    text = [[("–" if v is None else (f"{v:.0f}" if metric == "steps_to_95" else f"{v:.3f}"))
             + ("" if s is None or v is None else f" ± {s:.3f}") for v, s in zip(row, srow)]
            for row, srow in zip(values, spread)]
    reverse = metric == "steps_to_95"   # fewer steps is better: keep "good" the same colour
    fig = go.Figure(go.Heatmap(
        z=values, x=levels, y=table["rows"], text=text, texttemplate="%{text}", textfont=dict(size=14),
        colorscale="RdYlGn_r" if reverse else "RdYlGn", colorbar=dict(title=dict(text=METRIC_NAMES.get(metric, metric),
                                                                                 side="right")),
        hovertemplate="%{y}, %{x}: %{text}<extra></extra>", xgap=3, ygap=3))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"{METRIC_NAMES.get(metric, metric).capitalize()} by position and level",
                   "number of corrupted layers", "corrupted group", height or 140 + 60 * len(table["rows"]))


def cka_figure(after: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]] = (),
               height: int = 420) -> go.Figure:
    """Per-layer linear CKA with the clean fine-tuned model: after fine-tuning (solid), at the start (dotted)."""
    fig = go.Figure()
    top = _max_k(after)
    starts = {b["label"]: b for b in before}
    for item in after:
        if item["position"] == "clean":
            continue
        color = group_color(item["position"], item["k"], top)
        fig.add_trace(go.Scatter(x=item["names"], y=item["mean"], mode="lines+markers", name=item["label"],
                                 legendgroup=item["label"], line=dict(color=color, width=2),
                                 customdata=_band_text(item.get("std"), len(item["names"])),
                                 hovertemplate=f"{item['label']} after: %{{x}} CKA %{{y:.3f}}%{{customdata}}"
                                               "<extra></extra>"))
        start = starts.get(item["label"])
        if start:
            fig.add_trace(go.Scatter(x=start["names"], y=start["mean"], mode="lines", name=f"{item['label']} start",
                                     legendgroup=item["label"], showlegend=False,
                                     line=dict(color=color, width=1.5, dash="dot"),
                                     hovertemplate=f"{item['label']} start: %{{x}} CKA %{{y:.3f}}<extra></extra>"))
    clean = starts.get("clean")
    if clean:
        fig.add_trace(go.Scatter(x=clean["names"], y=clean["mean"], mode="lines", name="pretrained (no fine-tuning)",
                                 line=dict(color=CLEAN_COLOR, width=2, dash="dash"),
                                 hovertemplate="pretrained: %{x} CKA %{y:.3f}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.05])
    return _side_legend(_layout(fig, "Similarity to the clean fine-tuned model, layer by layer (linear CKA)",
                                "hidden state (output of)", "linear CKA", height))


def drift_figure(drift: Sequence[Mapping[str, Any]], relative: bool = True, height: int = 420) -> go.Figure:
    """Weight change per parameter group from each run's starting point (relative to the starting norm, or
    absolute); `drift` holds `layers_by_label(view, "drift_relative")` or `(view, "drift")`; clean dashed."""
    fig = go.Figure()
    top = _max_k(drift)
    for item in [d for d in drift if d["position"] != "clean"] + [d for d in drift if d["position"] == "clean"]:
        is_clean = item["position"] == "clean"
        corrupted = {f"layer {i}" for i in item.get("layers", [])}
        if item.get("embeddings"):
            corrupted.add("embeddings")
        fig.add_trace(go.Scatter(
            x=item["names"], y=item["mean"], mode="lines+markers", name=item["label"],
            line=dict(color=group_color(item["position"], item["k"], top), width=3 if is_clean else 2,
                      dash="dash" if is_clean else "solid"),
            marker=dict(size=[11 if n in corrupted else 6 for n in item["names"]],
                        symbol=["diamond" if n in corrupted else "circle" for n in item["names"]]),
            hovertemplate=f"{item['label']}: %{{x}} moved %{{y:.3g}}"
                          f"{' of its starting norm' if relative else ''}<extra></extra>"))
    fig.update_yaxes(type="log", dtick="D2", tickformat=".1g")
    y_title = "‖θ_end − θ_start‖ / ‖θ_start‖" if relative else "‖θ_end − θ_start‖"
    return _side_legend(_layout(fig, "Weight drift from the starting point (diamonds: corrupted parts)",
                                "parameter group", y_title, height))


def advglue_figure(summary: Sequence[Mapping[str, Any]], chance: Mapping[str, float] | None = None,
                   height: int = 420, advglue: str = "AdvGLUE-SST2") -> go.Figure:
    """Dev and AdvGLUE accuracy (on `advglue`, the grid's task's set) of each group (means over seeds, spread as
    whiskers), clean first, with each set's majority-class rate (`chance`: {"dev": ..., "advglue": ...}) as a
    dotted line."""
    entries = sorted(summary, key=lambda e: e["position"] != "clean")
    labels = [e["label"] for e in entries]

    def bars(metric: str) -> tuple[list, list]:
        return ([e.get(f"{metric}_mean") for e in entries],
                [e.get(f"{metric}_std") or 0 for e in entries])

    fig = go.Figure()
    for metric, name, color in (("final_accuracy", "dev accuracy", "#9DB4CE"),
                                ("advglue_accuracy", f"{advglue} accuracy", "#C0504D")):
        means, stds = bars(metric)
        fig.add_trace(go.Bar(x=labels, y=means, name=name, marker_color=color,
                             error_y=dict(type="data", array=stds, visible=any(stds)),
                             hovertemplate=f"%{{x}}: {name} %{{y:.3f}}<extra></extra>"))
    clean = next((e for e in entries if e["position"] == "clean"), None)
    if clean and clean.get("advglue_accuracy_mean") is not None:
        fig.add_hline(y=clean["advglue_accuracy_mean"], line=dict(dash="dash", color=CLEAN_COLOR, width=1.5),
                      annotation_text="clean AdvGLUE", annotation_position="top right")
    chance = chance or {}
    chance_line(fig, chance.get("dev"), "dev chance", "#4A6A8A", "dot", "top left")
    chance_line(fig, chance.get("advglue"), "AdvGLUE chance", "#C0504D", "dot", "bottom left")
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, f"Are healed models less robust? {advglue} next to dev accuracy", "group",
                   "accuracy", height)
