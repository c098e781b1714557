# title: UEGR saliency
# icon: :material/filter_alt:
# section: Methods
# order: 40
"""UEGR: the saliency of the encoder's weights, which of them each step selects and which actually move,
the loss terms of the forward stage, and the input-gradient norm beside a vanilla run's."""
import streamlit as st

from app.methods import uegr
from app.methods.views import choose_run, show_run

st.title("UEGR: perturb, agree, update only what matters")
with st.expander("What UEGR does, in plain words", expanded=True):
    st.markdown(
        "UEGR changes both halves of a training step.\n\n"
        "**Forward stage.** Each sentence's word embeddings are pushed a small distance in the direction that "
        "hurts the model most: an *adversarial perturbation*, like a sneaky synonym swap but in the model's own "
        "number space. It starts from a small random nudge scaled as in FreeLB, so the same size for short and "
        "long sentences. The perturbed sentence is then read **K** times with different dropout rates, so K "
        "slightly different *sub-models* answer; the rates follow a fixed linear schedule from p_min to p_max "
        "(the paper calls its dropout adaptive but does not publish the rule, so RobustLab claims none). The loss "
        "asks each sub-model to be right (**adversarial loss**) and all of them to agree (**Jensen–Shannon "
        "divergence**), besides the usual loss on the clean sentence.\n\n"
        "**Backward stage.** Every weight gets a *saliency*: |weight × gradient| (taylor, the default) or the "
        "squared gradient (fisher), roughly how much the loss would change if that weight moved. Only the most "
        "salient share **ρ** of each weight matrix is updated; the rest sit out this step: no gradient, no "
        "momentum-driven step, no weight decay, so they do not move at all (the masked AdamW ROSE uses). Biases, "
        "LayerNorms, embeddings and the classifier are always updated.\n\n"
        "The paper's code is not public: RobustLab implements a labelled reconstruction, with every choice "
        "exposed as a setting and its source given in docs/methods.md.")

run = choose_run(("uegr",), key="uegr-run")
show_run(run, uegr.draw)
