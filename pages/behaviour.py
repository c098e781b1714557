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

Failure rates follow CheckList's own rules (its `expect.py` and `test_types.py`):

- **MFT** (minimum functionality): sentences made from templates, each with the label it must get. Failure
  rate: the share of cases predicted otherwise. A "not negative" test (`neutral_passes`) lets a neutral answer
  pass, as CheckList does: for a two-class model, P(expected) of at least 1/3 (CheckList's neutral band
  1/3 < P(positive) < 2/3).
- **INV** (invariance): a change that must not change the prediction (a typo, a name, a URL). Failure rate: the
  share of **all** cases whose prediction changed with the probability of the original's predicted class moving
  by more than the tolerance (0.1).
- **DIR** (directional): a change that must not move the probability of the original's predicted class (or of a
  named class) the wrong way by more than the tolerance; a case whose original leaves no room to fail is not
  counted.

Beside each test: what a model answering one class for every text would get (**constant answer**), and a flag
when the model's rate is within the spread of that (**no better than a constant answer**: the Wilson 95 % interval
of its cases, or over seeds, RobustLab's choice). **Correct originals only** is RobustLab's former count: the
same rule over the INV/DIR cases whose original is predicted correctly; it is not CheckList's rate.

Cases are made from the suite file and a seed, the same every time; results are stored with each run and reused.
Results stored before RobustLab used these rules are scored again from their stored cases.
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
