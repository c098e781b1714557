"""UEGR on the page: the saliency of the weights at one step, where the updates go (selected and actually
moved), how stable the selection is, the forward stage's loss terms and the input-gradient norm beside a
vanilla run's."""
from __future__ import annotations

import numpy as np
import streamlit as st

from app.figures import comparison_figure, has_series
from app.formatting import derived_marks, run_label
from app.methods import figures as fm
from app.methods.views import artifact, command_like, step_slider, vanilla_runs_with
from app.run_views import show_curves, show_results
from engine.explain.input_gradient import PROBE_SIZE
from engine.methods.uegr import UEGR
from engine.store.runs import Run

NO_VANILLA = "none"


def run_settings(run: Run) -> dict:
    """The run's UEGR settings, defaults filled in."""
    return {**{s.name: s.default for s in UEGR.settings_spec}, **(run.config.get("settings") or {})}


def draw(run: Run) -> None:
    """Everything the run recorded, figure by figure, each with how to read it; then its training curves."""
    rec, tensors, curves = artifact(run, "uegr"), artifact(run, "uegr_tensors"), artifact(run, "uegr_curves")
    if not rec or not tensors:
        st.info("Nothing recorded yet: saliency is recorded on about 40 steps of a run, starting with the first.")
        return
    settings = run_settings(run)
    rho = float(settings["rho"])
    steps = rec["step"]

    st.subheader("Saliency at one step")
    index = step_slider("Recorded step", steps, key="uegr-step")
    st.plotly_chart(fm.saliency_histogram(tensors["saliency_bins"], rec["hist_selected"][index],
                                          rec["hist_other"][index], int(steps[index]), settings["saliency"]),
                    key="uegr-hist")
    measure = ("|θ·g|, weight times gradient" if settings["saliency"] == "taylor"
               else "g², the squared gradient (a diagonal Fisher estimate)")
    st.caption(f"How to read it: how many weights (a fixed sample of each matrix) have each saliency ({measure}), "
               "on a log scale: one step right is ten times more salient. Blue weights were in their matrix's top ρ "
               "and were updated; grey ones sat this step out and did not move. Saliencies span many orders of "
               "magnitude, so a small share of weights carries most of the expected change.")

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
    if "overall_moved" in rec:
        st.plotly_chart(fm.curves_figure(steps, {"selected": rec["overall_fraction"], "moved": rec["overall_moved"]},
                                         "Share of the encoder's weights selected and moved", "share of elements"),
                        key="uegr-moved")
        st.caption("How to read it: at each recorded step, the share of the encoder's weight elements selected for "
                   "the update, and the share whose value actually changed in that step (weights compared before "
                   "and after it). An unselected weight gets no gradient, no momentum-driven step and no weight "
                   "decay, so 'moved' never exceeds 'selected'; it is lower where the learning rate is still 0 "
                   "(the first warm-up step) or an update is too small to change a weight's float value.")
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
    input_gradient_chart(run)

    st.subheader("Training curves")
    show_curves(run, key="uegr-")
    show_results(run)


def input_gradient_chart(run: Run) -> None:
    """The run's input-gradient norm at each dev evaluation, beside a chosen finished vanilla run's."""
    st.subheader("Input-gradient norm")
    rows = run.metrics()
    if not has_series(rows, "dev", "input_grad_norm"):
        st.info("No input-gradient norm recorded yet: it is measured at each dev evaluation, the first about a "
                "quarter of the way through training (runs from before it was recorded have none).")
        return
    vanillas = vanilla_runs_with(run, "dev", "input_grad_norm")
    labels = {r.id: run_label({**r.config, **r.results, "id": r.id}, marks=derived_marks(r.config, r.results))
              for r in vanillas}
    chosen = st.selectbox("Vanilla run to compare with", [*labels, NO_VANILLA], key="uegr-vanilla",
                          format_func=lambda i: labels.get(i, "none"),
                          help="Finished vanilla runs on this run's dataset that recorded the input-gradient norm; "
                               "those trained like this run (same model, seed, size, epochs and batch) come first.")
    curves = {f"uegr · {run.id}": rows}
    if chosen != NO_VANILLA:
        curves[f"vanilla · {chosen}"] = next(r for r in vanillas if r.id == chosen).metrics()
    figure = comparison_figure(curves, "dev", "input_grad_norm", "Input-gradient norm at each dev evaluation")
    st.plotly_chart(figure.update_yaxes(title_text="‖∇ₑ L‖ per sentence"), key="uegr-input-grad")
    if not vanillas:
        st.info("No finished vanilla run has recorded the input-gradient norm, so there is no line to compare with. "
                "A vanilla run trained like this one:")
        st.code(command_like(run, "vanilla"), language="bash")
    st.caption(f"How to read it: at each dev evaluation, the mean over the same {PROBE_SIZE} dev sentences of "
               "‖∇ₑ L‖, the norm of the gradient of the sentence's loss with respect to its word embeddings (eval "
               "mode, no dropout): how strongly the loss reacts to a small change of the input. Every method "
               "records it the same way. An untrained classifier reacts to nothing, so the line rises while the "
               "model learns. A line below vanilla's means a model less sensitive to small input perturbations: "
               "the gradient regularisation the paper claims for the forward stage.")
