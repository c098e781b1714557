# title: Corruption & recovery
# icon: :material/healing:
# section: Robustness
# order: 30
"""Corruption & recovery ("Healing Powers of BERT"): break layers of a pretrained encoder, fine-tune, and
watch how much comes back. Layout only; the grid runs as a job and every number comes from engine.recovery."""
import streamlit as st

from app.recovery.form import new_grid_form
from app.recovery.grid import grid_picker, show_grid
from app.state import get_store

ABOUT = """
**The study.** Han, Zhang and Simion (*Healing Powers of BERT*, 2024) broke parts of a pretrained BERT and then
fine-tuned it on a task, to see how much task fine-tuning repairs. Their findings: corrupted models **do not fully
recover**, recovery gets **worse the more is corrupted**, and corrupting the **bottom layers hurts more** than
corrupting the top ones: the lower layers hold basic linguistic features that a short task fine-tuning cannot rebuild.

**What a grid does here.** For every seed it fine-tunes the clean model once (the baseline), then, with exactly the
same data, steps and seed, one model per corrupted group: the bottom *k* or top *k* encoder layers (layer 0 is next to
the embeddings), a custom set, or the embeddings alone. Corruption kinds: *reinit*, RobustLab's reconstruction of
the paper's recipe after a secondary summary of it, as the paper's own was not available (LayerNorm weights to 1 and
biases to 0, weight matrices re-drawn with Kaiming-normal initialisation or at `nn.Linear`'s default scale, a sixth of
that variance); and two of RobustLab's own, Gaussian noise on the weight matrices or zeroing a share of their
entries. Dev accuracy is measured every few steps while each model trains, which
gives the recovery curves; the finished models are then compared layer by layer with the clean one and scored on
their task's AdvGLUE set (AdvGLUE-SST2 for an SST-2 grid).

**Metrics.** *Recovery ratio* = (corrupted accuracy − chance) / (clean accuracy − chance), with the clean model of
the same seed and chance = the dev set's majority-class rate: 1 is as good as the clean model, 0 no better than always
answering the commonest label (a plain corrupted / clean ratio would call a model that learned nothing "66 %
recovered"); raw accuracies are shown beside it. *AUC* = area under the recovery curve divided by the steps it spans
(the mean accuracy along the run: higher means it healed sooner). *Steps to 95 %* = the first evaluated step at which
accuracy reached 95 % of the clean final accuracy (– if never). All are averaged over seeds, with the sample standard
deviation as the spread.

**The verdict.** The seed is the unit: runs of one seed share their training data and clean baseline, so each seed's
recovery is first averaged over the levels k, then the seeds are tested (recovery below 1 for bottom and for top, bottom
below top paired by seed, and a per-seed slope of recovery over k below 0). Fewer than three usable seeds, or a clean
baseline that did not learn, give no verdict.
"""

st.title("Corruption & recovery")
st.caption("Break layers of a pretrained encoder, fine-tune it, and measure how much of the damage fine-tuning "
           "heals: the *Healing Powers of BERT* study, run on your machine.")
first_visit = not get_store().list(kind="recover")
with st.expander("About this study and its metrics", icon=":material/school:", expanded=first_visit):
    st.markdown(ABOUT)
with st.expander("Set up a new grid", icon=":material/tune:", expanded=first_visit):
    new_grid_form()

st.subheader("Results")
grid_id = grid_picker()   # again after the form: a grid queued just now is in it
if grid_id:
    show_grid(grid_id)
