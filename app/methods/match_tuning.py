"""Match-Tuning on the page: the matching matrix of the probe batch through training, where each row's weight
goes, and dev accuracy with matching bypassed and in-batch."""
from __future__ import annotations

import numpy as np
import streamlit as st

from app.formatting import fmt_acc
from app.methods import figures as fm
from app.methods.views import artifact
from app.run_views import show_curves, show_results
from engine.data.advglue import run_advglue
from engine.store.runs import Run


def draw(run: Run) -> None:
    """Everything the run recorded, figure by figure, each with how to read it; then its training curves."""
    rec, probe = artifact(run, "match"), artifact(run, "match_probe")
    if not rec or not probe:
        st.info("Nothing recorded yet: the probe batch's matrix appears a few seconds after training starts.")
        return
    steps = rec["step"]
    st.subheader("The matching matrix of a fixed probe batch")
    st.plotly_chart(fm.matching_animation(steps, rec["matrix"], probe["labels"], start=len(steps) - 1),
                    key=f"match-matrix-{len(steps)}")
    st.caption("How to read it: the probe is the first training batch, sorted by label; red lines separate the "
               "labels. Row i shows how much of each sentence j went into sentence i's mix (darker = more). Press "
               "play or drag the slider to move through training (step 0 is before any update). A strong diagonal "
               "means each sentence mostly keeps itself; dark squares along the diagonal mean it mixes with "
               "same-label sentences; dark off-diagonal blocks are mixing across labels, the perturbation.")

    st.subheader("Where each row's weight goes")
    st.plotly_chart(fm.curves_figure(steps, {"diagonal (itself)": rec["diag_mass"],
                                             "same label (others)": rec["same_label_mass"],
                                             "different label": rec["different_label_mass"],
                                             "row entropy": rec["row_entropy"]},
                                     "Matching mass and row entropy on the probe batch", "mean share of a row",
                                     secondary=("row entropy",)), key="match-masses")
    st.caption("How to read it: the three shares of each row, averaged over the probe batch, add up to 1: kept on "
               "itself, given to other same-label sentences, given to different-label sentences. The different-label "
               "share should fall as training moves from perturbation to interpolation. Row entropy (right axis, in "
               f"nats) is how spread out a row is: 0 means one partner only, {np.log(len(probe['labels'])):.2f} "
               "means the whole batch equally.")

    st.subheader("Dev accuracy in both evaluation modes")
    results = run.results
    if "dev_accuracy_inbatch" in results:
        cols = st.columns(3)
        cols[0].metric("Dev, matching bypassed", fmt_acc(results.get("dev_accuracy_bypass")),
                       help="each sentence alone (M = identity): the default way this model predicts")
        cols[1].metric("Dev, in-batch matching", fmt_acc(results.get("dev_accuracy_inbatch")),
                       help="dev sentences in shuffled batches of the training batch size, mixed like in training")
        advglue_name, advglue = run_advglue(run.config, results)
        cols[2].metric(f"{advglue_name} (bypassed)", fmt_acc(advglue))
        st.caption("How to read it: the same trained model scored two ways. If in-batch is close to bypassed, the "
                   "model has learned representations that survive mixing; a large gap means its predictions lean "
                   "on whoever else is in the batch.")
    else:
        st.info("The two evaluation modes are scored when the run finishes.")

    st.subheader("Training curves")
    show_curves(run, key="match-")
    show_results(run)
