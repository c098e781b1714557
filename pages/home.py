# title: Home
# icon: :material/home:
# section: RobustLab
# order: 10
"""Home: what RobustLab is, whether this machine is ready (device, models, data, NLTK), recent runs."""
import streamlit as st

from app.home.panels import datasets_and_attack_data, device_and_models, quick_start, recent_runs

st.title("RobustLab")
st.markdown(
    "Fine-tune small BERT classifiers with **robust fine-tuning methods**, look at **what each method does "
    "inside the model** while it trains, and **attack and explain** the trained models live. "
    "Everything runs on this machine; every run is kept in the run store, so you can compare methods later.")

st.subheader("Quick start")
quick_start()
st.subheader("This machine")
device_and_models()
datasets_and_attack_data()
st.subheader("Recent runs")
recent_runs()
