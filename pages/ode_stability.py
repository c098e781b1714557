# title: ODE stability
# icon: :material/waves:
# section: Methods
# order: 40
"""ODE stability: when an implicit Euler step damps perturbations (IM-BERT), from the test equation to
trained models and live sentences. Layout only; the numbers come from engine.probe.ode."""
import streamlit as st

from app.ode.panels import euler_steps, live_sentences, model_probes

st.title("ODE stability")
st.caption("A residual layer x + F(x) is one **explicit** Euler step of an ODE. IM-BERT replaces it by an "
           "**implicit** step, z = x + h F(z), solved by a few descent steps on its residual. The implicit step "
           "damps a perturbation where the field's Jacobian has eigenvalues with negative real part, and can "
           "amplify it where the real part is positive, so whether a model's layers damp is measured here, not "
           "assumed. Start with the test equation, then look inside trained models.")
teach, models_tab, live = st.tabs(["1 · The test equation", "2 · Inside trained models", "3 · Live sentences"])

with teach:
    euler_steps()
with models_tab:
    model_probes()
with live:
    live_sentences()
