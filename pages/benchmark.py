# title: Benchmark
# icon: :material/leaderboard:
# section: Robustness
# order: 40
"""Benchmark: methods compared over seeds (clean, AdvGLUE, under attack), the seed papers' claims judged
against our runs, and the Reproduce panel that queues a whole suite. Layout only; every number comes from
engine.benchmark, which reads what the runs stored."""
import streamlit as st

from app.benchmark.results import claims_tab, export_tab, methods_tab, missing_panel, report_notes
from app.benchmark.selection import choose_selection, reproduce
from app.state import get_store
from engine.benchmark import LEVEL, build_report, latest_grid, scale_note
from engine.suite import list_suites

ABOUT = f"""
**What is compared.** Each method is fine-tuned with the same data, budget and seeds. For each model the page reads
what was stored when it was evaluated: **clean dev accuracy** (SST-2 dev, 872 sentences), **AdvGLUE-SST2 accuracy**
(148 human-checked adversarial sentences), and a batch attack's **success rate** (share of correctly classified
sentences the attack flips) and **accuracy under attack** (share still right after the attack). Numbers are
means over seeds with the sample standard deviation; every seed is also drawn as a dot.

**How a claim is judged.** For each comparison a claim rests on, the difference of the two means gets a
{int(LEVEL * 100)} % Welch confidence interval from the seed-to-seed spread. *Supported*: the whole interval is on
the claimed side. *Not supported*: it is entirely on the other side. *Inconclusive*: it straddles zero (the spread is
larger than the gap), or there are fewer than two seeds to measure the spread. A claim with several parts is
supported only if every part is.

**Scale.** {scale_note({'minilm'})}
"""

st.title("Benchmark")
st.caption("Robust fine-tuning methods side by side over seeds, and the seed papers' headline claims set against "
           "what our runs show.")
store = get_store()
first_visit = not list_suites(store)
with st.expander("What is compared, and how a claim is judged", icon=":material/school:", expanded=first_visit):
    st.markdown(ABOUT)
with st.expander("Reproduce: run a suite", icon=":material/replay:", expanded=first_visit):
    reproduce()

selection = choose_selection()   # stops the page when there is nothing to compare
report = build_report(store, selection.run_ids, selection.attack, latest_grid(store))
missing_panel(selection, report)
report_notes(report)
tab_results, tab_claims, tab_export = st.tabs(["Methods", "Claims", "Export"])
with tab_results:
    methods_tab(report, selection.attack)
with tab_claims:
    claims_tab(report)
with tab_export:
    export_tab(report, selection)
