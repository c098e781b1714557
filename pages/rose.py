# title: ROSE masks
# icon: :material/grid_on:
# section: Methods
# order: 30
"""ROSE: which weight tensors each step updates or freezes, the risk scores behind that choice, and
how far each layer moved compared with vanilla fine-tuning."""
import streamlit as st

from app.methods import rose
from app.methods.views import choose_run, show_run

st.title("ROSE: selective fine-tuning")
with st.expander("What ROSE does, in plain words", expanded=True):
    st.markdown(
        "Ordinary fine-tuning nudges **every** weight of the network at every step. **ROSE** (robust selective "
        "fine-tuning) first asks which weights are about to make a *risky* update, and freezes those for this "
        "one step. It decides per **weight tensor**: one whole matrix, such as the query projection of layer 3. "
        "Each BERT layer has eight: **Q**, **K**, **V** (attention), **attn out** and its LayerNorm "
        "**attn LN**, the feed-forward **intermediate** and **output** matrices, and **output LN**.\n\n"
        "- **First order** runs each batch twice with different random dropout. Where the two answers disagree, "
        "the model leans on fragile features; a tensor with a large gradient of that disagreement is risky.\n"
        "- **Second order** compares each tensor's new gradient with the momentum Adam has built up for it; an "
        "update that suddenly departs from that history is risky.\n"
        "- **Ensemble** averages the two decisions: flagged by both risks means frozen, by one means half a step.\n\n"
        "All tensors' risks are ranked together; only those between the *lower* and *upper* percentile are "
        "updated. A frozen tensor keeps its momentum for later steps. No adversarial examples are needed, yet the "
        "paper reports clearly better robustness to adversarial text.\n\n"
        "Masking starts once the learning rate has warmed up (the official code uses one number for both); until "
        "then every tensor is updated. The Train page offers the official README's SST-2 settings as presets "
        "(found for RoBERTa-base and -large); RobustLab's own defaults suit the 48 tensors of a 6-layer MiniLM. "
        "Where each number comes from: docs/methods.md.")

run = choose_run(rose.ROSE_METHODS, key="rose-run")
show_run(run, rose.draw)
