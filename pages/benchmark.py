# title: Benchmark
# icon: :material/leaderboard:
# section: Robustness
# order: 40
"""Benchmark: methods compared over seeds (clean, AdvGLUE, under attack), the seed papers' claims judged
against our runs, and the Reproduce panel that queues a whole suite. Layout only; every number comes from
engine.reporting.benchmark, which reads what the runs stored."""
import streamlit as st

from app.benchmark.results import (
    behaviour_panel,
    claims_tab,
    export_tab,
    methods_tab,
    missing_panel,
    report_notes,
)
from app.benchmark.selection import choose_selection, reproduce
from app.benchmark.suite import extra_seeds_panel
from app.state import get_store
from engine.reporting.benchmark import build_report
from engine.stats import LEVEL, LOOK1_LEVEL
from engine.suite.job import list_suites

ABOUT = f"""
**What is compared.** Each method is fine-tuned with the same data, budget and seeds. For each model the page reads
what was stored when it was evaluated: **clean dev accuracy** (SST-2 dev, 872 sentences), **AdvGLUE accuracy** on
the runs' own task, named on each chart (AdvGLUE-SST2: 148 human-checked adversarial sentences; MNLI: the mean of
its matched and mismatched parts, as AdvGLUE scores it), and a batch attack's **success rate** (share of correctly
classified sentences the attack flips) and **accuracy under attack** (share still right after the attack). Numbers are
means over seeds with the sample standard deviation; every seed is also drawn as a dot, and every accuracy chart
draws the chance line (a model predicting one class for everything). A run whose dev accuracy is within 10 points
of chance did not learn: it is listed, and left out of every number and claim. Runs of one method trained with
different settings are never pooled: each setting gets its own row.

**How a claim is judged.** For each comparison a claim rests on, the difference of the two means gets a
confidence interval: a paired t-interval over seed-wise differences when both methods' runs
share seeds and training settings, Welch otherwise, and for AdvGLUE and attack numbers a hierarchical bootstrap
that resamples seeds and then sentences (not for MNLI's AdvGLUE score: a mean of two parts has no per-sentence form,
so its interval covers seeds only). *Supported*: the whole interval is on the claimed side. *Not supported*:
it is entirely on the other side. *Inconclusive*: it straddles zero, a side has fewer than 3 seeds, or neither
side varies; such a part says how many seeds would likely settle it *if the true difference equals the observed
one*, and for AdvGLUE and attack numbers the smallest difference their fixed sentences can ever decide. Every
robustness part comes with a clean part: dev accuracy no more than 1 point below the comparator, so a model that
did not fit cannot win a robustness claim. A claim with several parts is supported only if every part is.

**Two looks.** Adding seeds and judging again is a second look at the data, which would raise the false-positive
rate above {round((1 - LEVEL) * 100)} %. So the method claims follow a design fixed before the first look
(RobustLab's choice): a report is look 1 ({LOOK1_LEVEL * 100:.2f} % intervals), the extra seeds queued from it are
look 2, which combines both stages so that the two looks together keep the {round((1 - LEVEL) * 100)} % error
rate, and there is no third look.

**Scale.** The papers fine-tuned BERT-base or larger on full GLUE training sets; the runs here are small. The note
under the claims says exactly what they are; a verdict is about these runs, not the methods at the papers' scale.
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
    extra_seeds_slot = st.container()   # filled once the report below says which seeds are needed

selection = choose_selection()   # stops the page when there is nothing to compare
report = build_report(store, selection.run_ids, selection.attack)
with extra_seeds_slot:
    extra_seeds_panel(report)
missing_panel(selection, report)
report_notes(report)
tab_results, tab_claims, tab_export = st.tabs(["Methods", "Claims", "Export"])
with tab_results:
    methods_tab(report, selection.attack)
    st.subheader("Behaviour failure rates")
    behaviour_panel(report)
with tab_claims:
    claims_tab(report)
with tab_export:
    export_tab(report, selection)
