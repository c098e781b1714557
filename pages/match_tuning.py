# title: Match-Tuning
# icon: :material/join_inner:
# section: Methods
# order: 50
"""Match-Tuning: the matching matrix of a fixed probe batch as training goes on, its diagonal,
same-label and different-label mass, and dev accuracy with matching bypassed and in-batch."""
import streamlit as st

from app.methods import match_tuning
from app.methods.views import choose_run, show_run

st.title("Match-Tuning: learning from the rest of the batch")
with st.expander("What Match-Tuning does, in plain words", expanded=True):
    st.markdown(
        "Match-Tuning changes what the classifier sees during training. For each sentence in a batch the model "
        "builds a **mix of all the sentences in the batch**, weighted by how similar they look to the model. The "
        "weights form the **matching matrix** M: row i says how much of each sentence j goes into sentence i's "
        "mix, and every row adds up to 1.\n\n"
        "Early in training the similarities mean little, so other sentences, often with the *other* label, leak "
        "into each mix: a random **perturbation** the model must learn to withstand. As training goes on the "
        "model makes same-label sentences look alike, the mix becomes an average among same-label neighbours "
        "(**interpolation**), and the matrix turns block-diagonal. Nobody schedules this shift: it emerges.\n\n"
        "When the trained model predicts, RobustLab **bypasses** the mixing by default (each sentence alone), so a "
        "prediction never depends on which other sentences share its batch. The in-batch mode is reported too; "
        "a model trained to predict in-batch is never served a cached prediction, since its answer for a sentence "
        "changes with the batch.\n\n"
        "How much mixing happens at the start is set by the **temperature** τ and the **start of the projection**: "
        "on MiniLM at τ = 0.15 each sentence keeps about 45 % of itself when the projection starts from the "
        "pretrained pooler (RobustLab's default), but about 98 % from a fresh random projection, which leaves "
        "matching nearly off at first. Both are RobustLab's choices; the official snippet gives neither "
        "(docs/methods.md).")

run = choose_run(("match-tuning",), key="match-run")
show_run(run, match_tuning.draw)
