# title: Playground
# icon: :material/science:
# section: Robustness
# order: 10
"""Playground: type a sentence, see the prediction and which words drive it, attack it live, edit it by
hand, compare two models side by side, and run batch attacks in the background."""
import streamlit as st

from app.playground import attack as panels
from app.playground.models import warm_up_textattack
from app.state import get_store

st.title("Adversarial playground")
st.caption("What does the model predict, which words decide it, and how little must change to flip it? "
           "Pick one model, or two to compare.")
warm_up_textattack()
store = get_store()
run_ids = panels.pick_models()
if not run_ids:
    panels.offer_default_training(store)
else:
    fitted, gold = panels.sentence_input(run_ids[0])
    if fitted is not None:
        how = panels.saliency_choice()
        panels.predictions(run_ids, fitted.text, how, gold)
    attack_tab, history_tab, batch_tab = st.tabs([":material/bolt: Attack", ":material/history: Edit history",
                                                  ":material/dataset: Batch attack"])
    with attack_tab:
        panels.attack_panel(run_ids, fitted, gold)
    with history_tab:
        panels.history_panel(run_ids)
    with batch_tab:
        panels.batch_panel(store, run_ids[0])
