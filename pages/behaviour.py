# title: Behaviour
# icon: :material/checklist:
# section: Robustness
# order: 20
"""Behaviour: CheckList-style tests of trained models. Minimum functionality (MFT), invariance (INV) and
directional (DIR) tests per capability, failure rates per run or per method over seeds, the failing cases, their
export, and a run trained on them. Layout only; the panels are in app/behaviour."""
import streamlit as st

from app.behaviour.panels import (
    choose_runs,
    choose_suite,
    failures_panel,
    results_panel,
    run_suite_panel,
    train_panel,
)

ABOUT = """
Attacks find one worst case per sentence; these tests ask which **capabilities** a model lacks (Ribeiro et al.,
*Beyond Accuracy: Behavioral Testing of NLP Models with CheckList*, ACL 2020).

- **MFT** (minimum functionality): sentences made from templates, each with the label it must get. Failure
  rate: the share of cases predicted otherwise.
- **INV** (invariance): a change that must not change the prediction (a typo, a name, a URL). Failure rate: the
  share of cases whose prediction changed, **counting only cases whose original is predicted correctly**.
- **DIR** (directional): a change that must move the probability of the label one way (an intensifier must not
  lower it) by no more than a tolerance the wrong way; counted like INV.

Cases are made from the suite file and a seed, the same every time; results are stored with each run and reused.
"""

st.title("Behaviour")
st.caption("Which capabilities does a model lack, and does a robust method fix them? Behavioural tests per "
           "capability, side by side over runs or methods.")
with st.expander("What the tests are", icon=":material/school:"):
    st.markdown(ABOUT)
chosen = choose_runs()
suite = choose_suite()
if not chosen.run_ids:
    st.info("Choose at least one finished training run (or the methods of a suite).", icon=":material/info:")
elif suite is not None:
    results = run_suite_panel(chosen, suite)
    if results:
        tab_results, tab_failures, tab_train = st.tabs([":material/table_chart: Results",
                                                        ":material/bug_report: Failing cases",
                                                        ":material/model_training: Train on failures"])
        with tab_results:
            results_panel(chosen, results)
        with tab_failures:
            failures_panel(chosen, results)
        with tab_train:
            train_panel(chosen, results)
