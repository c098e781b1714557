# title: Playground
# icon: :material/science:
# section: Robustness
# order: 10
"""Playground: type a sentence (or, for a sentence-pair model, both segments), see the prediction and which
words drive it, attack it live, edit it by hand, compare two models side by side, and run batch attacks in the
background."""
import streamlit as st

from app.playground.attack import attack_panel
from app.playground.batch import batch_panel
from app.playground.history import history_panel
from app.playground.model_choice import offer_default_training, pick_models
from app.playground.models import warm_up_textattack
from app.playground.prediction import predictions, saliency_choice
from app.playground.sentence import sentence_input
from app.state import get_store

st.title("Adversarial playground")
st.caption("What does the model predict, which words decide it, and how little must change to flip it? "
           "Pick one model, or two to compare.")
warm_up_textattack()
store = get_store()
run_ids = pick_models()
if not run_ids:
    offer_default_training(store)
else:
    fitted, gold = sentence_input(run_ids[0])
    if fitted is not None:
        predictions(run_ids, fitted.input, saliency_choice(), gold)
    attack_tab, history_tab, batch_tab = st.tabs([":material/bolt: Attack", ":material/history: Edit history",
                                                  ":material/dataset: Batch attack"])
    with attack_tab:
        attack_panel(run_ids, fitted, gold)
    with history_tab:
        history_panel(run_ids)
    with batch_tab:
        batch_panel(store, run_ids[0])
