"""Plotly figures of what ROSE, UEGR and Match-Tuning do inside the model, built from the arrays those
methods record (`artifacts/*.npz`). No Streamlit here; each function takes plain arrays.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.methods._tensors import MODULE_ORDER

KEEP_SCALE = "RdYlBu"        # red: frozen, yellow: half the time, blue: updated
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf", "#393b79", "#637939"]


def _layout(fig: go.Figure, title: str, height: int = 340, x_title: str | None = "training step",
            y_title: str | None = None) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height,
                      margin=dict(l=10, r=10, t=44, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    if x_title:
        fig.update_xaxes(title_text=x_title)
    if y_title:
        fig.update_yaxes(title_text=y_title)
    return fig


def ordered_modules(modules: Sequence[str]) -> list[str]:
    """Modules in BERT's order (Q, K, V, attn out, …), unknown ones after them."""
    present = list(dict.fromkeys(modules))
    return [m for m in MODULE_ORDER if m in present] + [m for m in present if m not in MODULE_ORDER]


# ---------------------------------------------------------------- ROSE

def layer_step_heatmap(steps: np.ndarray, values: np.ndarray, layer: np.ndarray, title: str,
                       colorbar: str, zmin: float = 0.0, zmax: float = 1.0) -> go.Figure:
    """Layer x step heat map of the mean over each layer's tensors of `values` (steps x tensors)."""
    layers = sorted(int(i) for i in set(layer.tolist()) if i >= 0)
    z = np.stack([np.nanmean(values[:, layer == i], axis=1) for i in layers]) if layers else np.zeros((0, len(steps)))
    fig = go.Figure(go.Heatmap(x=steps, y=[f"layer {i}" for i in layers], z=z, zmin=zmin, zmax=zmax,
                               colorscale=KEEP_SCALE, colorbar=dict(title=colorbar),
                               hovertemplate="step %{x}<br>%{y}<br>" + colorbar + " %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(200, 90 + 32 * len(layers)), y_title=None)


def module_layer_heatmap(values: np.ndarray, layer: np.ndarray, module: np.ndarray, title: str,
                         colorbar: str, zmin: float = 0.0, zmax: float = 1.0) -> go.Figure:
    """Module x layer heat map of one number per tensor (e.g. the share of steps it was kept)."""
    layers = sorted(int(i) for i in set(layer.tolist()) if i >= 0)
    modules = ordered_modules(module.tolist())
    z = np.full((len(modules), len(layers)), np.nan)
    for value, i, m in zip(values, layer, module):
        if i >= 0:
            z[modules.index(m), layers.index(int(i))] = value
    fig = go.Figure(go.Heatmap(x=[f"layer {i}" for i in layers], y=modules, z=z, zmin=zmin, zmax=zmax,
                               colorscale=KEEP_SCALE, colorbar=dict(title=colorbar),
                               text=np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.2f}")(z),
                               texttemplate="%{text}",
                               hovertemplate="%{y}, %{x}<br>" + colorbar + " %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=110 + 34 * len(modules), x_title=None)


# the mask a tensor got at a step, as the histograms colour it
APPLIED_PARTS = (("updated (full step)", lambda m: m == 1, "#2166ac"),
                 ("half step", lambda m: (m > 0) & (m < 1), "#fdb863"),
                 ("frozen", lambda m: m == 0, "#b2182b"))


def risk_histogram(scores: np.ndarray, applied: np.ndarray, low: float, high: float, title: str,
                   log: bool = False) -> go.Figure:
    """Histogram of one step's risk scores, stacked by the mask each tensor actually got at that step
    (`applied`: 1 updated, 0 frozen, in between a half step); the risk's quantile band drawn in. The colour
    is the applied mask, not this risk's band: during the mask warm-up nothing is frozen, and in the
    ensemble a tensor outside one band takes a half step."""
    values = np.log10(np.clip(scores, 1e-30, None)) if log else scores
    finite = values[np.isfinite(values)]
    fig = go.Figure()
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        size = (hi - lo) / 24 if hi > lo else 1.0
        bins = dict(start=lo - size / 2, end=hi + size, size=size)
        for name, part, color in APPLIED_PARTS:
            hit = part(applied)
            if hit.any():
                fig.add_trace(go.Histogram(x=values[hit], xbins=bins, name=name, marker_color=color))
    for value, label, side in ((low, "lower", "top left"), (high, "upper", "top right")):
        if np.isfinite(value):
            x = np.log10(max(value, 1e-30)) if log else value
            fig.add_vline(x=x, line=dict(dash="dash", color="black", width=1.5), annotation_text=label,
                          annotation_position=side)
    fig.update_layout(barmode="stack")
    _layout(fig, title, x_title="log10 risk score" if log else "risk score", y_title="weight tensors")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
                      margin=dict(b=40))
    return fig


def mask_share_figure(steps: np.ndarray, masks: np.ndarray) -> go.Figure:
    """Share of tensors at mask 0, 0.5 and 1 per step (the ensemble's soft mask), stacked to 1."""
    fig = go.Figure()
    parts = (("frozen (0)", masks == 0, "#b2182b"), ("half step (0.5)", (masks > 0) & (masks < 1), "#fdb863"),
             ("full step (1)", masks == 1, "#2166ac"))
    for name, hit, color in parts:
        fig.add_trace(go.Scatter(x=steps, y=hit.mean(1), name=name, mode="lines", stackgroup="one",
                                 line=dict(width=0.5, color=color)))
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, "Soft mask: share of tensors at 0, 0.5 and 1", y_title="share of the weight tensors")


def drift_figure(runs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> go.Figure:
    """Per-layer ||theta_t - theta_0|| over steps; `runs` maps a label to (steps, drift[steps, layers]).
    The first run is drawn solid, the others dashed, one colour per layer."""
    fig = go.Figure()
    for n, (label, (steps, drift)) in enumerate(runs.items()):
        for layer in range(drift.shape[1]):
            fig.add_trace(go.Scatter(x=steps, y=drift[:, layer], mode="lines", name=f"{label} · layer {layer}",
                                     legendgroup=label, line=dict(color=COLORS[layer % len(COLORS)],
                                                                  dash="solid" if n == 0 else "dash",
                                                                  width=2 if n == 0 else 1.5)))
    _layout(fig, "Cumulative weight drift per layer", height=400, y_title="‖θₜ − θ₀‖")
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02, font=dict(size=11)))
    return fig


def drift_final_figure(runs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> go.Figure:
    """The last recorded drift of each layer, one bar per run, side by side."""
    fig = go.Figure()
    for n, (label, (_, drift)) in enumerate(runs.items()):
        fig.add_trace(go.Bar(x=[f"layer {i}" for i in range(drift.shape[1])], y=drift[-1], name=label,
                             marker_color="#2166ac" if n == 0 else "#bdbdbd"))
    fig.update_layout(barmode="group")
    _layout(fig, "Drift at the end of training", height=400, x_title=None, y_title="‖θ − θ₀‖ at the last step")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0))
    return fig


# ---------------------------------------------------------------- UEGR

SALIENCY_FORMULAS = {"taylor": "|θ·g|", "fisher": "g² (Fisher)"}   # UEGR's `saliency` setting -> what it scores


def saliency_histogram(bins: np.ndarray, selected: np.ndarray, other: np.ndarray, step: int,
                       saliency: str) -> go.Figure:
    """Log-saliency histogram of one recorded step: selected and unselected elements stacked; the axis names
    the run's saliency (`taylor` or `fisher`)."""
    centers = (bins[:-1] + bins[1:]) / 2
    width = float(bins[1] - bins[0])
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centers, y=other, width=width, name="not selected (not moved this step)",
                         marker_color="#bdbdbd"))
    fig.add_trace(go.Bar(x=centers, y=selected, width=width, name="selected (updated)", marker_color="#2166ac"))
    fig.update_layout(barmode="stack", bargap=0)
    return _layout(fig, f"Saliency of the encoder's weights at step {step} (sampled elements)",
                   x_title=f"log10 saliency {SALIENCY_FORMULAS.get(saliency, saliency)}", y_title="elements")


def fraction_heatmap(steps: np.ndarray, fractions: np.ndarray, groups: np.ndarray, labels: list[str],
                     title: str, rho: float | None) -> go.Figure:
    """Group x step heat map of the selected fraction (mean over the tensors in each group)."""
    z = np.stack([np.nanmean(fractions[:, groups == g], axis=1) for g in labels])
    lo, hi = (0.0, 1.0) if rho is None else (max(0.0, rho - 0.25), min(1.0, rho + 0.25))
    fig = go.Figure(go.Heatmap(x=steps, y=[str(g) for g in labels], z=z, zmin=lo, zmax=hi, colorscale="Viridis",
                               colorbar=dict(title="selected"),
                               hovertemplate="step %{x}<br>%{y}<br>selected %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(220, 90 + 30 * len(labels)))


def frequency_figure(bins: np.ndarray, hist: np.ndarray, records: int, rho: float) -> go.Figure:
    """How often each followed element was selected, against what independent coin flips would give."""
    from math import comb

    centers = (bins[:-1] + bins[1:]) / 2
    share = hist.sum(0) / max(hist.sum(), 1)
    fig = go.Figure(go.Bar(x=centers, y=share, width=float(bins[1] - bins[0]) * 0.9, name="observed",
                           marker_color="#2166ac"))
    if records > 0:
        probs = np.array([comb(records, k) * rho ** k * (1 - rho) ** (records - k) for k in range(records + 1)])
        expected, _ = np.histogram(np.arange(records + 1) / records, bins, weights=probs)
        fig.add_trace(go.Scatter(x=centers, y=expected, mode="lines+markers", name="if picked at random",
                                 line=dict(dash="dash", color="#d62728")))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, f"How often each element was selected ({records} recorded steps)",
                   x_title="share of recorded steps the element was selected", y_title="share of elements")


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (NaN-aware) so noisy per-step curves show their trend."""
    if window <= 1 or len(values) < 2:
        return values
    out = np.empty(len(values))
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1):i + 1]
        out[i] = np.nanmean(chunk) if np.isfinite(chunk).any() else np.nan
    return out


def curves_figure(steps: np.ndarray, series: Mapping[str, np.ndarray], title: str, y_title: str,
                  window: int = 1, secondary: Sequence[str] = ()) -> go.Figure:
    """Per-step curves (raw faint, smoothed bold); names in `secondary` go on a right-hand axis."""
    fig = make_subplots(specs=[[{"secondary_y": bool(secondary)}]])
    for n, (name, values) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        right = name in secondary
        if window > 1:
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", line=dict(color=color, width=1),
                                     opacity=0.3, showlegend=False, hoverinfo="skip"), secondary_y=right)
        fig.add_trace(go.Scatter(x=steps, y=smooth(values, window), mode="lines", name=name,
                                 line=dict(color=color, width=2)), secondary_y=right)
    fig.update_yaxes(title_text=y_title, secondary_y=False)
    if secondary:
        fig.update_yaxes(title_text=" / ".join(secondary), secondary_y=True)
    return _layout(fig, title)


# ---------------------------------------------------------------- Match-Tuning

def matching_animation(steps: np.ndarray, matrices: np.ndarray, labels: np.ndarray, zmax: float | None = None,
                       start: int = 0) -> go.Figure:
    """The probe batch's matching matrix at each recorded step, with a play button and a step slider.
    Rows and columns are sorted by label; thin lines separate the label blocks."""
    n = matrices.shape[-1]
    zmax = float(zmax if zmax is not None else max(np.quantile(matrices, 0.99), 1e-6))
    ticks = [f"{i} · y={int(y)}" for i, y in enumerate(labels)]

    def heat(i: int) -> go.Heatmap:
        return go.Heatmap(z=matrices[i], x=ticks, y=ticks, zmin=0, zmax=zmax, colorscale="Blues",
                          colorbar=dict(title="M_ij"),
                          hovertemplate="row %{y}<br>column %{x}<br>weight %{z:.3f}<extra></extra>")

    fig = go.Figure(data=[heat(start)],
                    frames=[go.Frame(data=[heat(i)], name=str(int(s))) for i, s in enumerate(steps)])
    for boundary in np.nonzero(np.diff(labels))[0]:
        for kind in ("x", "y"):
            fig.add_shape(type="line", line=dict(color="#d62728", width=1.5), xref="x", yref="y",
                          **({"x0": boundary + 0.5, "x1": boundary + 0.5, "y0": -0.5, "y1": n - 0.5} if kind == "x"
                             else {"y0": boundary + 0.5, "y1": boundary + 0.5, "x0": -0.5, "x1": n - 0.5}))
    play = dict(label="▶ play", method="animate",
                args=[None, dict(frame=dict(duration=350, redraw=True), fromcurrent=True, transition=dict(duration=0))])
    pause = dict(label="❚❚ pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])
    low = -0.2 if n <= 24 else -0.1          # below the rotated tick labels when they are shown
    fig.update_layout(
        updatemenus=[dict(type="buttons", direction="left", buttons=[play, pause], x=0, y=low - 0.02,
                          xanchor="left", yanchor="top", pad=dict(t=4, r=8))],
        sliders=[dict(active=start, x=0.2, y=low, len=0.8, yanchor="top", currentvalue=dict(prefix="step "),
                      steps=[dict(label=str(int(s)), method="animate",
                                  args=[[str(int(s))], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
                             for s in steps])])
    fig.update_xaxes(showticklabels=n <= 24, tickangle=-90, constrain="domain", showgrid=False)
    fig.update_yaxes(showticklabels=n <= 24, autorange="reversed", scaleanchor="x", constrain="domain",
                     showgrid=False)
    _layout(fig, "Matching matrix of the probe batch (rows and columns sorted by label)", height=700,
            x_title="column j: the example mixed in", y_title="row i: the example being represented")
    fig.update_layout(margin=dict(l=10, r=10, t=44, b=150 if n <= 24 else 110))
    return fig
