"""The Behaviour page's figure: failure rate per capability and model (or method: the mean over its runs with
± one standard deviation). Built from `engine.behaviour.compare.compare_runs`; no Streamlit here."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from app.figures import PALETTE


def capability_figure(comparison: dict[str, Any], groups: list[str], height: int = 360) -> go.Figure:
    """Grouped bars: one group per capability, one bar per model or method, in points; error bars where a
    method has several runs."""
    capabilities = [c["capability"] for c in comparison["capabilities"]]
    fig = go.Figure()
    for i, group in enumerate(groups):
        cells = [c["by_method"].get(group, {}) for c in comparison["capabilities"]]
        means = [None if cell.get("mean") is None else cell["mean"] * 100 for cell in cells]
        stds = [0 if cell.get("std") is None else cell["std"] * 100 for cell in cells]
        fig.add_trace(go.Bar(x=capabilities, y=means, name=group, marker_color=PALETTE[i % len(PALETTE)],
                             error_y=dict(type="data", array=stds, visible=any(stds))))
    fig.update_layout(title=dict(text="Failure rate per capability"), barmode="group", height=height,
                      yaxis=dict(title="failure rate (%)", range=[0, 100]), margin=dict(t=40, b=10, l=10, r=10),
                      legend=dict(orientation="h", y=-0.2))
    return fig
