# title: Train
# icon: :material/model_training:
# section: RobustLab
# order: 20
"""Train: choose data, model, method and hyperparameters, start a run in a worker, watch it live."""
import streamlit as st

from app.train.form import data_choice, fit_to_data, method_choice, model_choice, train_button, training_budget
from app.train.your_run import your_run

st.title("Train a model")
st.caption("Fine-tune a classifier in a background worker. The run keeps going if you leave this page; "
           "find it later on **Runs**.")
form, panel = st.columns([0.45, 0.55], gap="large")
with form:
    st.subheader("Data")
    data = data_choice()
    st.subheader("Model")
    model = model_choice()
    st.subheader("Method")
    method, preset, settings = method_choice()
    st.subheader("Training")
    budget = fit_to_data(data, training_budget(uploaded=data.uploaded, model=model.name, preset=preset))
    train_button(data, model, method, settings, budget)
with panel:
    st.subheader("Your run")
    your_run()
