"""Plotly figures of the ODE stability page: the test equation, stability regions, and probes of models.

They take plain arrays and dicts computed by `engine.probe.ode` (and its numpy-only amplification curves), so
they are cheap and testable; no Streamlit.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.probe.ode import amplification_curves

EXPLICIT_COLOR, IMPLICIT_COLOR, EXACT_COLOR = "#EF553B", "#636EFA", "#7F7F7F"
# one colour per run, none of them the explicit (red) or implicit (blue) curve colours
PALETTE = ["#00A087", "#E69F00", "#9467BD", "#8C564B", "#17BECF", "#BCBD22", "#E377C2", "#7F7F7F"]

CAPTIONS = {
    "trajectories": "How to read it: each dot is one Euler step x_n from x_0 = 1, the grey line the exact "
                    "solution e^(lambda t). Explicit Euler multiplies by (1 + h lambda) each step, implicit "
                    "Euler divides by (1 - h lambda): when a factor's size is above 1 the dots grow, below 1 "
                    "they shrink; a negative or complex factor makes them flip sign or rotate.",
    "regions": "How to read it: colour is how much one step multiplies a perturbation at that h lambda (blue: "
               "shrinks, red: grows; the black line is exactly 1). Explicit Euler is stable only inside the "
               "small disc around -1; implicit Euler is stable everywhere outside the disc around +1, so the "
               "whole left half-plane (Re lambda < 0). The star is your h lambda.",
    "growth": "How to read it: after each layer l, the share a small perturbation of the embeddings takes of "
              "the hidden state, ||Δx_l|| / ||x_l||, divided by its share at the start, ||δ|| / ||x_0|| (1 at "
              "layer 0, log scale). Solid lines are random Gaussian perturbations, dashed ones a one-step "
              "gradient (FGM) perturbation. A lower line means the perturbation is a smaller part of that "
              "layer's hidden state.",
    "growth_absolute": "How to read it: after each layer l, the size of a small perturbation of the embeddings, "
                       "||Δx_l||, divided by its starting size ||δ|| (1 at layer 0, log scale). Solid lines are "
                       "random Gaussian perturbations, dashed ones a one-step gradient (FGM) perturbation. A lower "
                       "line means a smaller perturbation in absolute size, which also happens when a model's "
                       "hidden states are smaller overall.",
    "amplification": "How to read it: the two curves are the per-step amplification of a perturbation along a "
                     "real eigenvalue λ, |1 + hλ| for an explicit step and 1/|1 − hλ| for an implicit one. Each "
                     "marker is one layer (L1, L2, ...): up, the top singular value of its Jacobian (how much it "
                     "stretches the perturbation it stretches most); across, the Rayleigh quotient "
                     "⟨v, hJ_F v⟩ / ⟨v, v⟩ of its vector field's Jacobian along that top singular vector v. That "
                     "quotient equals hλ only when v is an eigenvector, so it places a layer on the curves "
                     "approximately; it is not a measured eigenvalue.",
    "residual": "How to read it: how far the implicit solver is from solving its equation, ||z - x - h F(z)|| / "
                "||z|| after its K steps, per layer, on a fixed training batch (log scale). Falling or flat "
                "low lines mean the IM-connection really computes an implicit step; lines near 1 mean it does not.",
    "divergence": "How to read it: for each layer, how far the perturbed sentence's hidden states are from the "
                  "clean sentence's, relative to the clean ones (0 = identical). Solid: the mean over tokens, "
                  "dotted: the [CLS] vector the classifier reads. A model that damps the edit keeps its lines low "
                  "and flat towards the last layer.",
}


LAYER_COLORS = ["#440154", "#3B528B", "#21918C", "#5EC962", "#B8A92C", "#E67E22", "#C0392B", "#7F7F7F"]


def run_colors(labels) -> dict[str, str]:
    """One colour per run label, in order; pass the same mapping to every figure so a run keeps its colour."""
    return {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(labels)}


def _layout(fig: go.Figure, title: str, height: int, legend_y: float = -0.22) -> go.Figure:
    """Title on top, legend below the axes (subplot titles live where a top legend would go)."""
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height,
                      margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", yanchor="top", y=legend_y, xanchor="left", x=0))
    return fig


def _log_ticks(values) -> list[float]:
    """1-2-5 ticks covering the values, for log axes read by people rather than by engineers."""
    finite = [v for v in values if v is not None and np.isfinite(v) and v > 0] or [1.0]
    lo, hi = np.floor(np.log10(min(finite))), np.ceil(np.log10(max(finite)))
    return [m * 10 ** e for e in range(int(lo), int(hi) + 1) for m in (1, 2, 5)]


# ---------------------------------------------------------------- teaching panel

def trajectory_figure(traj: Mapping[str, np.ndarray], magnitude: bool = False, height: int = 360) -> go.Figure:
    """Explicit and implicit Euler trajectories side by side, each with the exact solution."""
    part = np.abs if magnitude else np.real
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=(f"Explicit Euler: x_n = (1 + hλ)^n · factor "
                                        f"{float(traj['explicit_factor']):.3g}",
                                        f"Implicit Euler: x_n = (1 − hλ)^−n · factor "
                                        f"{float(traj['implicit_factor']):.3g}"))
    for col, (key, color) in enumerate((("explicit", EXPLICIT_COLOR), ("implicit", IMPLICIT_COLOR)), start=1):
        fig.add_trace(go.Scatter(x=traj["t_exact"], y=part(traj["exact"]), mode="lines", name="exact e^(λt)",
                                 line=dict(color=EXACT_COLOR, dash="dash"), showlegend=col == 1), row=1, col=col)
        fig.add_trace(go.Scatter(x=traj["t"], y=part(traj[key]), mode="lines+markers", name=f"{key} Euler",
                                 line=dict(color=color), marker=dict(size=7),
                                 customdata=traj["n"], hovertemplate="step %{customdata}<br>t=%{x:.3g}<br>"
                                 + ("|x|" if magnitude else "Re x") + "=%{y:.4g}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="t = n·h", row=1, col=col)
        if magnitude:
            fig.update_yaxes(type="log", row=1, col=col)
    fig.update_yaxes(title_text="|x|" if magnitude else "Re x", row=1, col=1)
    return _layout(fig, "The test equation x' = λx, stepped with explicit and with implicit Euler", height)


def stability_figure(grid: Mapping[str, np.ndarray], z: complex, height: int = 380) -> go.Figure:
    """Both schemes' amplification over the complex h*lambda plane, with the stable boundary and the point z."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Explicit: |1 + hλ| (stable inside the disc)",
                                        "Implicit: 1/|1 − hλ| (stable outside the disc)"))
    for col, key in enumerate(("explicit", "implicit"), start=1):
        logf = np.clip(np.log10(np.maximum(grid[key], 1e-6)), -1.5, 1.5)
        fig.add_trace(go.Heatmap(x=grid["re"], y=grid["im"], z=logf, zmid=0, zmin=-1.5, zmax=1.5,
                                 colorscale="RdBu_r", showscale=col == 2,
                                 colorbar=dict(title="log10 factor", len=0.8),
                                 hovertemplate="hλ = %{x:.2f} %{y:+.2f}i<br>log10 factor %{z:.2f}<extra></extra>"),
                      row=1, col=col)
        fig.add_trace(go.Contour(x=grid["re"], y=grid["im"], z=np.log10(np.maximum(grid[key], 1e-6)),
                                 contours=dict(start=0, end=0, size=1, coloring="none"),
                                 line=dict(color="black", width=2), showscale=False, hoverinfo="skip",
                                 showlegend=False), row=1, col=col)
        fig.add_trace(go.Scatter(x=[z.real], y=[z.imag], mode="markers", name="your hλ",
                                 marker=dict(symbol="star", size=16, color="gold", line=dict(color="black", width=1.5)),
                                 showlegend=col == 1, hovertemplate="hλ = %{x:.3g} %{y:+.3g}i<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="Re hλ", row=1, col=col, zeroline=True, constrain="domain",
                         range=[float(grid["re"][0]), float(grid["re"][-1])])
        fig.update_yaxes(title_text="Im hλ", row=1, col=col, scaleanchor=f"x{'' if col == 1 else col}",
                         range=[float(grid["im"][0]), float(grid["im"][-1])], constrain="domain")
    return _layout(fig, "Stability regions in the complex hλ plane", height)


# ---------------------------------------------------------------- model panel

GROWTH_VIEWS = {   # scale_free -> (Gaussian key, FGM key, axis title, figure title)
    True: ("relative_growth", "relative_growth_fgm", "(||Δx_l|| / ||x_l||) / (||δ|| / ||x_0||)",
           "Perturbation growth across layers, scale-free"),
    False: ("growth", "growth_fgm", "||Δx_l|| / ||δ||", "Perturbation growth across layers, absolute"),
}


def growth_figure(probes: Mapping[str, Mapping], colors: Mapping[str, str] | None = None, scale_free: bool = True,
                  height: int = 420) -> go.Figure:
    """Perturbation growth against layer l, Gaussian (solid) and FGM (dashed), one colour per run: scale-free
    (each layer's share of its hidden state) or absolute."""
    colors = colors or run_colors(probes)
    gauss, fgm, axis, title = GROWTH_VIEWS[scale_free]
    fig = go.Figure()
    for label, p in probes.items():
        color = colors[label]
        for key, dash, kind in ((gauss, "solid", "Gaussian"), (fgm, "dash", "FGM")):
            values = [1.0, *p[key]]
            fig.add_trace(go.Scatter(x=list(range(len(values))), y=values, mode="lines+markers",
                                     name=f"{label} · {kind}",
                                     line=dict(color=color, dash=dash), legendgroup=label,
                                     hovertemplate=f"{label}<br>{kind}<br>layer %{{x}}: growth %{{y:.3g}}"
                                                   "<extra></extra>"))
    fig.add_hline(y=1, line=dict(color="gray", dash="dot", width=1))
    fig.update_xaxes(title_text="layer l (0 = embeddings)", dtick=1)
    ticks = _log_ticks([1.0, *[v for p in probes.values() for k in (gauss, fgm) for v in p[k]]])
    fig.update_yaxes(title_text=axis, type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    return _layout(fig, title, height)


def amplification_figure(probes: Mapping[str, Mapping], colors: Mapping[str, str] | None = None,
                         height: int = 460) -> go.Figure:
    """Analytic amplification curves over real h lambda, with each layer on top at (Rayleigh quotient of h J_F
    along its top singular vector, top singular value): an approximate place, not a measured eigenvalue."""
    colors = colors or run_colors(probes)
    points = list(probes.items())
    xs = [v for _, p in points for v in p["h_lambda"] if v is not None]
    ys = [v for _, p in points for v in p["jacobian_top_sv"] if v is not None]
    lo = min([-3.0, *[x - 0.3 for x in xs]])
    hi = max([1.0, *[x + 0.3 for x in xs]])
    ymax = max([3.0, *[1.15 * y for y in ys]])
    curves = amplification_curves(lo, hi, 801)
    z, implicit = curves["z"], np.where(curves["implicit"] > 1.2 * ymax, np.nan, curves["implicit"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=z, y=curves["explicit"], mode="lines", name="explicit |1 + hλ|",
                             line=dict(color=EXPLICIT_COLOR, width=2)))
    fig.add_trace(go.Scatter(x=z, y=implicit, mode="lines", name="implicit 1/|1 − hλ|",
                             line=dict(color=IMPLICIT_COLOR, width=2)))
    for label, p in points:
        schemes = list(p.get("scheme") or ["explicit"] * len(p["jacobian_top_sv"]))
        fig.add_trace(go.Scatter(
            x=p["h_lambda"], y=p["jacobian_top_sv"], mode="markers+text", name=label,
            text=[f"L{i + 1}" for i in range(len(p["jacobian_top_sv"]))], textposition="top center",
            marker=dict(size=11, color=colors[label],
                        symbol=["diamond" if s == "implicit" else "circle" for s in schemes],
                        line=dict(color="black", width=1)),
            customdata=schemes,
            hovertemplate=f"{label}<br>%{{text}} (%{{customdata}})<br>Rayleigh quotient %{{x:.3g}}<br>"
                          "top σ %{y:.3g}<extra></extra>"))
    fig.add_hline(y=1, line=dict(color="gray", dash="dot", width=1))
    fig.update_xaxes(title_text="curves: real hλ · markers: Rayleigh quotient ⟨v, hJ_F v⟩ / ⟨v, v⟩ along the top "
                                "singular vector v", range=[lo, hi])
    fig.update_yaxes(title_text="curves: amplification per step · markers: top singular value", range=[0, ymax])
    return _layout(fig, "Where each layer sits on the amplification curves", height, legend_y=-0.28)


def residual_figure(series: Mapping[str, Mapping[str, np.ndarray]], height: int = 380) -> go.Figure:
    """The implicit solver's relative residual per layer over training: colour = layer, dash = run."""
    fig = go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot")
    values = []
    for k, (label, art) in enumerate(series.items()):
        final = np.asarray(art["final"], dtype=float)
        for layer in range(final.shape[1]):
            if np.isnan(final[:, layer]).all():
                continue
            values.extend(final[:, layer].tolist())
            name = f"L{layer + 1}" if len(series) == 1 else f"{label} · L{layer + 1}"
            fig.add_trace(go.Scatter(x=art["step"], y=final[:, layer], mode="lines", name=name,
                                     line=dict(color=LAYER_COLORS[layer % len(LAYER_COLORS)],
                                               dash=dashes[k % len(dashes)], width=2),
                                     hovertemplate=f"{label}<br>layer {layer + 1}<br>step %{{x}}: "
                                                   f"residual %{{y:.3g}}<extra></extra>"))
    ticks = _log_ticks(values)
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="||r(z_K)|| / ||z_K||", type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    title = "Implicit solver residual per layer over training"
    return _layout(fig, title if len(series) == 1 else title + " (dash style = run)", height)


def divergence_figure(results: Mapping[str, Mapping], height: int = 380) -> go.Figure:
    """Hidden-state divergence per layer between a sentence and its perturbed copy, one panel per model."""
    labels = list(results)
    fig = make_subplots(rows=1, cols=max(1, len(labels)), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[shorten(label) for label in labels] or [""])
    for col, label in enumerate(labels, start=1):
        r = results[label]
        layers = list(range(len(r["mean"])))
        fig.add_trace(go.Scatter(x=layers, y=r["mean"], mode="lines+markers", name="mean over tokens",
                                 line=dict(color=PALETTE[0]), showlegend=col == 1), row=1, col=col)
        fig.add_trace(go.Scatter(x=layers, y=r["cls"], mode="lines+markers", name="[CLS]",
                                 line=dict(color=PALETTE[1], dash="dot"), showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title_text="layer (0 = embeddings)", dtick=1, row=1, col=col)
    fig.update_yaxes(title_text="relative distance", row=1, col=1, rangemode="tozero")
    return _layout(fig, "How far the perturbed sentence drifts, layer by layer", height)


def shorten(label: str, width: int = 48) -> str:
    """The label cut to `width` characters, with an ellipsis when cut."""
    return label if len(label) <= width else label[: width - 1] + "…"


def summary_rows(probes: Mapping[str, Mapping], results: Mapping[str, Mapping]) -> list[dict]:
    """One table row per probed run: accuracies and the probes' last-layer numbers."""
    rows = []
    for label, p in probes.items():
        res = results.get(label, {})
        finite = [v for v in p.get("solver_residual") or [] if v is not None]
        rows.append({"run": label, "dev acc": res.get("dev_accuracy"),
                     "AdvGLUE acc (own task)": res.get("advglue_accuracy"),
                     "scale-free growth at last layer (Gaussian)": p["relative_growth"][-1],
                     "scale-free growth at last layer (FGM)": p["relative_growth_fgm"][-1],
                     "absolute growth at last layer (Gaussian)": p["growth"][-1],
                     "absolute growth at last layer (FGM)": p["growth_fgm"][-1],
                     "max top σ": max(p["jacobian_top_sv"]),
                     "solver residual (max)": max(finite) if finite else None,
                     "probe seconds": p.get("seconds")})
    return rows

