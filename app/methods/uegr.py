"""UEGR on the page: the saliency of the weights at one step, where the updates go, how stable the selection
is, the forward stage's loss terms and the input-gradient norm."""
from __future__ import annotations

import numpy as np
import streamlit as st

from app.methods import figures as fm
from app.methods.views import artifact, step_slider
from app.run_views import show_curves, show_results
from engine.runs import Run


def draw(run: Run) -> None:
    """Everything the run recorded, figure by figure, each with how to read it; then its training curves."""
    rec, tensors, curves = artifact(run, "uegr"), artifact(run, "uegr_tensors"), artifact(run, "uegr_curves")
    if not rec or not tensors:
        st.info("Nothing recorded yet: saliency is recorded on about 40 steps of a run, starting with the first.")
        return
    rho = float((run.config.get("settings") or {}).get("rho", 0.5))
    steps = rec["step"]

    st.subheader("Saliency at one step")
    index = step_slider("Recorded step", steps, key="uegr-step")
    st.plotly_chart(fm.saliency_histogram(tensors["saliency_bins"], rec["hist_selected"][index],
                                          rec["hist_other"][index], int(steps[index])), key="uegr-hist")
    st.caption("How to read it: how many weights (a fixed sample of each matrix) have each saliency, on a log "
               "scale: one step right is ten times more salient. Blue weights were in their matrix's top ρ and were "
               "updated; grey ones had their gradient zeroed. Saliencies span many orders of magnitude, so a "
               "small share of weights carries most of the expected change.")

    st.subheader("Where the updates go")
    layer_names = [f"layer {i}" for i in tensors["layer"]]
    left, right = st.columns(2)
    with left:
        labels = sorted(set(layer_names), key=lambda s: int(s.split()[1]))
        st.plotly_chart(fm.fraction_heatmap(steps, rec["selected_fraction"], np.asarray(layer_names), labels,
                                            "Share of each layer's weights selected", rho), key="uegr-layers")
    with right:
        modules = fm.ordered_modules(tensors["module"].tolist())
        st.plotly_chart(fm.fraction_heatmap(steps, rec["selected_fraction"], tensors["module"], modules,
                                            "Share of each kind of weight selected", rho), key="uegr-modules")
    st.caption(f"How to read it: the share of weights updated per layer (left) and per kind of weight (right) at "
               f"each recorded step. With scope = tensor every matrix updates exactly ρ = {rho:g} of its weights, so "
               "the maps are flat; with scope = global the budget moves to wherever saliency is highest, and the "
               "colours show where.")
    st.plotly_chart(fm.frequency_figure(tensors["frequency_bins"], tensors["frequency_hist"],
                                        int(tensors["records"]), rho), key="uegr-frequency")
    st.caption("How to read it: for a fixed sample of weights, how often each was selected across the recorded "
               "steps. The dashed line is what picking weights at random with probability ρ would give. Bars piled "
               "at 0 % and 100 % mean the same weights are chosen again and again: UEGR concentrates the update on "
               "a stable subset and leaves the rest near their pretrained values.")

    if curves:
        st.subheader("The forward stage's loss terms")
        window = max(1, len(curves["step"]) // 25)
        st.plotly_chart(fm.curves_figure(curves["step"], {"clean loss": curves["clean_loss"],
                                                          "adversarial loss": curves["adv_loss"],
                                                          "JS divergence": curves["js"]},
                                         "Clean loss, adversarial loss and sub-model disagreement", "cross-entropy",
                                         window, secondary=("JS divergence",)), key="uegr-losses")
        st.caption("How to read it: faint lines are every step, bold ones a moving average. The clean loss is on the "
                   "original sentences, the adversarial loss on the perturbed ones read by the dropout sub-models; "
                   "it sits above the clean loss because the perturbation is built to hurt, and the gap shows how "
                   "much. The JS divergence (right axis) is how much the sub-models disagree: near 0 at the start, "
                   "when every sub-model answers about 50/50, it grows as the model becomes confident; the loss "
                   "term keeps it small.")
        if "input_grad_norm" in curves:
            st.plotly_chart(fm.curves_figure(curves["step"], {"‖∇ₑ L‖": curves["input_grad_norm"]},
                                             "Input-gradient norm", "per-example norm", window),
                            key="uegr-input-grad")
            st.caption("How to read it: how strongly the loss reacts to a small change of the input embeddings "
                       "(the norm of its gradient, per sentence). An untrained classifier reacts to nothing, so the "
                       "line rises while the model learns; watch where it levels off. A lower plateau means a model "
                       "less sensitive to small input perturbations: the gradient regularisation the paper claims "
                       "for the forward stage.")
        else:
            st.info("This run made no adversarial step (n_adv = 0), so no input-gradient norm was measured.")

    st.subheader("Training curves")
    show_curves(run, key="uegr-")
    show_results(run)
