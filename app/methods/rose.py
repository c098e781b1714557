"""ROSE on the page: which weight tensors each step updated or froze, the risk scores behind that choice, the
ensemble's soft mask, and how far each layer moved compared with a vanilla twin."""
from __future__ import annotations

import numpy as np
import streamlit as st

from app.methods import figures as fm
from app.methods.views import artifact, command_like, step_slider, vanilla_twin
from app.run_views import show_curves, show_results
from engine.store.runs import Run

ROSE_METHODS = ("rose-ensemble", "rose-first", "rose-second")


def draw(run: Run) -> None:
    """Everything the run recorded, figure by figure, each with how to read it; then its training curves."""
    rec, tensors = artifact(run, "rose"), artifact(run, "rose_tensors")
    if not rec or not tensors:
        st.info("Nothing recorded yet: the masks appear a few seconds after the first training step.")
        return
    steps, masks, layer, module = rec["step"], rec["mask"], tensors["layer"], tensors["module"]
    st.subheader("Which layers were updated, step by step")
    st.plotly_chart(fm.layer_step_heatmap(steps, masks, layer, "Share of each layer's 8 weight tensors updated",
                                          "updated"), key="rose-layer-step")
    st.caption("How to read it: one row per layer, one column per training step. Blue means all eight weight "
               "tensors of that layer were updated at that step, red means all were frozen, yellow about half. "
               "Stripes that stay red show layers ROSE keeps protecting.")

    st.subheader("Which kinds of weight get frozen")
    st.plotly_chart(fm.module_layer_heatmap(masks.mean(0), layer, module, "Share of steps each tensor was updated",
                                            "updated"), key="rose-module-layer")
    st.caption("How to read it: each cell is one weight tensor (row: its kind, column: its layer) and shows the "
               "share of training steps in which it was updated (1 = always, 0 = never). Red cells are the tensors "
               "whose updates ROSE judged risky most often.")

    st.subheader("The risk scores at one step")
    index = step_slider("Step", steps, key="rose-step", help="Each step has its own ranking of risks.")
    orders = [(name, key, log) for name, key, log in (("First-order risk", "first", True),
                                                       ("Second-order risk", "second", False))
              if f"{key}_score" in rec]
    in_warmup = "warmup" in rec and bool(rec["warmup"][index])   # runs before the warm-up record lack it
    if in_warmup:
        st.info(f"Step {int(steps[index])} is inside the mask warm-up: every tensor was updated, whatever its risk.")
    cols = st.columns(len(orders))
    for col, (name, key, log) in zip(cols, orders):
        scores = rec[f"{key}_score"][index]
        with col:
            if not np.isfinite(scores).any():
                st.info(f"No {name.lower()} at step {int(steps[index])}: Adam has no momentum before the first "
                        "update, so every tensor is kept.")
                continue
            low, high = float(rec[f"{key}_low"][index]), float(rec[f"{key}_high"][index])
            title = f"{name} at step {int(steps[index])}" + (" (mask warm-up)" if in_warmup else "")
            st.plotly_chart(fm.risk_histogram(scores, masks[index], low, high, title, log), key=f"rose-hist-{key}")
    st.caption("How to read it: each bar counts weight tensors by their risk score at the chosen step (first-order "
               "risk on a log scale: it spans orders of magnitude). The dashed lines are the lower and upper "
               "percentiles of this risk over all tensors. The colours are the mask each tensor actually got at "
               "that step: blue updated, red frozen, and in the ensemble orange for a half step (outside one of "
               "the two bands). During the mask warm-up every tensor is blue, whatever its risk.")

    if "first_score" in rec and "second_score" in rec:
        st.subheader("The ensemble's soft mask")
        st.plotly_chart(fm.mask_share_figure(steps, masks), key="rose-shares")
        st.caption("How to read it: at each step, the share of weight tensors frozen (both risks flagged them), "
                   "taking a half step (one risk flagged them) and taking a full step (neither did). The three "
                   "bands always add up to 1.")

    st.subheader("How far each layer moved from the pretrained weights")
    drifts = {}
    own = artifact(run, "drift")
    if own:
        drifts[run.config.get("method", "this run")] = (own["step"], own["drift"])
    twin = vanilla_twin(run)
    twin_drift = artifact(twin, "drift") if twin else {}
    if twin_drift:
        drifts["vanilla"] = (twin_drift["step"], twin_drift["drift"])
    if drifts:
        left, right = st.columns([0.62, 0.38])
        with left:
            st.plotly_chart(fm.drift_figure(drifts), key="rose-drift")
        with right:
            st.plotly_chart(fm.drift_final_figure(drifts), key="rose-drift-final")
        st.caption("How to read it: the distance ‖θₜ − θ₀‖ between each layer's weights at step t and where "
                   "they started, one colour per layer (left), and where each layer ended up (right). Solid lines "
                   "and blue bars are this run; dashed lines and grey bars a vanilla run with the same data, model "
                   "and seed. Below vanilla means ROSE moved that layer less.")
    if not twin_drift:
        st.info("No vanilla run with the same data, model, seed and length has recorded its weight drift, so there "
                "is nothing to compare with yet. This command trains one (or use the Train page):")
        st.code(command_like(run, "vanilla"), language="bash")

    st.subheader("Training curves")
    show_curves(run, key="rose-")
    show_results(run)
