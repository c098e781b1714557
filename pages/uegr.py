# title: UEGR saliency
# icon: :material/filter_alt:
# section: Methods
# order: 40
"""UEGR: the saliency of the encoder's weights and which of them each step updates, the loss terms of the
forward stage, and the input-gradient norm."""
import streamlit as st

from app.methods import uegr
from app.methods.views import choose_run, show_run

st.title("UEGR: perturb, agree, update only what matters")
with st.expander("What UEGR does, in plain words", expanded=True):
    st.markdown(
        "UEGR changes both halves of a training step.\n\n"
        "**Forward stage.** Each sentence's word embeddings are pushed a small distance in the direction that "
        "hurts the model most: an *adversarial perturbation*, like a sneaky synonym swap but in the model's own "
        "number space. The perturbed sentence is then read **K** times with different dropout rates, so K slightly "
        "different *sub-models* answer. The loss asks each of them to be right (**adversarial loss**) and all of "
        "them to agree (**Jensen–Shannon divergence**), besides the usual loss on the clean sentence.\n\n"
        "**Backward stage.** Every weight gets a *saliency*, |weight × gradient|: roughly how much the loss would "
        "change if that weight moved. Only the most salient share **ρ** of each weight matrix keeps its gradient; "
        "the rest sit out this step. Biases, LayerNorms, embeddings and the classifier are always updated.\n\n"
        "The paper's code is not public: RobustLab implements the reconstruction written up in the project docs "
        "(methods.md §5), with every choice exposed as a setting.")

run = choose_run(("uegr",), key="uegr-run")
show_run(run, uegr.draw)
