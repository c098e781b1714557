# title: Benchmark
# icon: :material/leaderboard:
# section: Robustness
# order: 40
"""Benchmark: methods compared over seeds (clean, AdvGLUE, under attack), the seed papers' claims judged
against our runs, and the Reproduce panel that queues a whole suite. Layout only; every number comes from
engine.benchmark, which reads what the runs stored."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import json  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from app.benchmark import figures as figs  # noqa: E402
from app.components import run_picker  # noqa: E402
from app.formatting import fmt_time  # noqa: E402
from app.state import get_store  # noqa: E402
from app.benchmark.suite import reproduce_form, suite_overview  # noqa: E402
from engine import jobs  # noqa: E402
from engine.attacks import recipe_table  # noqa: E402
from engine.benchmark import (LEVEL, METRICS, AttackSpec, attacks_under_way, budget_curves, build_report,  # noqa: E402
                              claims_table, latest_grid, methods_table, missing_work, part_numbers, to_csv,
                              scale_note, to_markdown)
from engine.evaluate import evaluate_run  # noqa: E402
from engine.runs import ACTIVE  # noqa: E402
from engine.suite import SuiteSpec, list_suites, suite_train_runs  # noqa: E402

VERDICT_STYLE = {"supported": ("green", ":material/check_circle:"), "not supported": ("red", ":material/cancel:"),
                 "inconclusive": ("gray", ":material/help:")}
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


def suite_label(row: dict) -> str:
    spec = SuiteSpec.from_dict(get_store().get(row["id"]).config)
    return (f"{fmt_time(row['created'])} · {len(spec.methods)} methods x {len(spec.seeds)} seeds · "
            f"{spec.train_size} ex x {spec.epochs} ep · {spec.model} · {row['status']}")


def is_model(row: dict) -> bool:
    return row["kind"] == "train" and row["status"] == "done" and not row.get("parent")


def attack_inputs(default: AttackSpec | None, key: str) -> AttackSpec | None:
    """Which stored attack to read for every run (a suite's own by default); another one can be computed."""
    recipes = [r["name"] for r in recipe_table() if r["available"]] + ["none"]
    default = default or AttackSpec(recipe="none")
    a, b, c = st.columns(3)
    recipe = a.selectbox("Attack results to read", recipes, key=f"bench-recipe-read{key}",
                         index=recipes.index(default.recipe) if default.recipe in recipes else len(recipes) - 1,
                         help="Another recipe than the suite's shows as missing until you compute it.")
    sets = ["sst2-dev", "advglue-sst2"]
    dataset = b.selectbox("Attacked sentences from", sets, key=f"bench-attack-set{key}",
                          index=sets.index(default.dataset) if default.dataset in sets else 0)
    n = c.number_input("Number of sentences attacked", 1, 872, max(1, default.n), key=f"bench-attack-read-n{key}")
    return None if recipe == "none" else AttackSpec(recipe, dataset, int(n))


st.title("Benchmark")
st.caption("Robust fine-tuning methods side by side over seeds, and the seed papers' headline claims set against "
           "what our runs show.")
store = get_store()
suites = list_suites(store)
with st.expander("What is compared, and how a claim is judged", icon=":material/school:", expanded=not suites):
    st.markdown(ABOUT)

with st.expander("Reproduce: run a suite", icon=":material/replay:", expanded=not suites):
    new_suite = reproduce_form()
    if new_suite:
        st.session_state["bench-suite"] = new_suite
        st.session_state["bench-source"] = "A suite"
        suites = list_suites(store)

# ---------------------------------------------------------------- what to compare
source = st.segmented_control("Compare", ["A suite", "Runs I choose"], key="bench-source",
                              default="A suite" if suites else "Runs I choose")
attack: AttackSpec | None
if source == "A suite":
    if not suites:
        st.info("No suite yet. Open **Reproduce** above and run one, or compare runs you choose.")
        st.stop()
    ids = [row["id"] for row in suites]
    if st.query_params.get("suite") in ids:   # a link from the Runs page
        st.session_state["bench-suite"] = st.query_params.pop("suite")
    if st.session_state.get("bench-suite") not in ids:   # first visit, or the suite was deleted: the newest begun
        st.session_state["bench-suite"] = next((row["id"] for row in suites if row["status"] != "queued"), ids[0])
    labels = {row["id"]: suite_label(row) for row in suites}
    suite_id = st.selectbox("Suite", ids, format_func=labels.__getitem__, key="bench-suite")
    suite = store.get(suite_id)
    spec = SuiteSpec.from_dict(suite.config)
    suite_overview(suite_id)
    run_ids = suite_train_runs(store, suite)
    attack = attack_inputs(AttackSpec(spec.recipe, spec.attack_dataset, spec.attack_n) if spec.attacks() else None,
                           key=f"-{suite_id}")
else:
    run_ids = run_picker("Trained runs", key="bench-runs", filter_fn=is_model, multi=True,
                         help="Finished training runs (not the runs inside a recovery grid). Runs of the same method "
                              "are grouped; their spread is the spread over seeds.")
    methods = sorted({row["method"] for row in store.list(kind="train", status="done") if not row.get("parent")})
    whole = st.multiselect("Add every finished run of these methods", methods, key="bench-whole")
    run_ids = list(dict.fromkeys([*run_ids, *(row["id"] for m in whole for row in
                                              store.list(kind="train", status="done", method=m)
                                              if not row.get("parent"))]))
    attack = attack_inputs(AttackSpec(), key="")

if not run_ids:
    st.info("Nothing to compare yet: choose runs above" + (" or wait for the suite's first model."
                                                           if source == "A suite" else "."))
    st.stop()

grid_id = latest_grid(store)
report = build_report(store, run_ids, attack, grid_id)
rows = report["runs"]

# ---------------------------------------------------------------- what is missing
todo = missing_work(rows)
busy = source == "A suite" and suite.status.get("status") in ACTIVE
under_way = attacks_under_way(store, attack) & set(todo["attacks"]) if attack else set()
if under_way:
    st.info(f"{len(under_way)} attack(s) queued or running; their numbers appear here when they finish.",
            icon=":material/hourglass_top:")
todo["attacks"] = [run_id for run_id in todo["attacks"] if run_id not in under_way]
if (todo["evaluations"] or todo["attacks"]) and not busy:
    parts = []
    if todo["evaluations"]:
        parts.append(f"{len(todo['evaluations'])} run(s) lack a stored dev or AdvGLUE evaluation")
    if todo["attacks"]:
        parts.append(f"{len(todo['attacks'])} run(s) lack the {attack.recipe} attack on {attack.n} {attack.dataset} "
                     "sentences")
    st.warning("; ".join(parts) + ". Their cells read *missing*, and they are left out of the means. Compute only "
               "what is missing: evaluations here (seconds each), attacks as background jobs.",
               icon=":material/pending:")
    if st.button("Compute what is missing", icon=":material/calculate:", key="bench-fill"):
        with st.spinner("Evaluating…"):
            for run_id in todo["evaluations"]:
                evaluate_run(store, run_id, ["sst2-dev", "advglue-sst2"])
        for run_id in todo["attacks"]:
            jobs.submit(store, attack.config_for(run_id), kind="attack", parent=run_id)
        st.toast(f"Queued {len(todo['attacks'])} attack(s); this page shows them once they finish.")
        st.rerun()

for note in report["notes"][1:]:
    st.warning(note, icon=":material/warning:")
failed = [r for r in rows if r["status"] not in ("done",)]
if failed:
    st.caption("Not in the numbers: " + "; ".join(f"`{r['run_id']}` ({r['status']})" for r in failed))

tab_results, tab_claims, tab_export = st.tabs(["Methods", "Claims", "Export"])

# ---------------------------------------------------------------- methods
with tab_results:
    st.dataframe(pd.DataFrame(methods_table(report)), hide_index=True, width="stretch")
    st.caption("Accuracies and rates in points: mean ± sample standard deviation over seeds (no ± with one seed). "
               "*missing* means no stored number, never zero." +
               (f" Attack: {attack.recipe}, first {attack.n} {attack.dataset} sentences, 2000 queries per sentence."
                if attack else " No attack chosen."))
    colors = figs.method_colors([m["method"] for m in report["methods"]])
    metric_columns = st.columns(2)
    for i, (metric, title) in enumerate(METRICS.items()):
        with metric_columns[i % 2]:
            if any(m.get(metric) is not None for m in report["methods"]):
                st.plotly_chart(figs.metric_figure(report, metric, title, colors), key=f"bench-{metric}")
            else:
                st.info(f"No stored {title} for these runs.")
    curves = budget_curves(store, rows)
    if curves["methods"]:
        st.plotly_chart(figs.budget_figure(curves, colors), key="bench-budget")
        st.caption("Read off how robust each method is for an attacker with a smaller budget: a sentence counts as "
                   "correct at budget q if the model was right and the attack failed or needed more than q queries. "
                   "Bands: ± one standard deviation over seeds.")
    with st.expander("Every run"):
        st.dataframe(pd.DataFrame([{"run": r["run_id"], "method": r["method"], "seed": r["seed"],
                                    "status": r["status"],
                                    **{t: "missing" if r[m] is None else f"{r[m] * 100:.1f}"
                                       for m, t in METRICS.items()},
                                    "missing": ", ".join(r["missing"])} for r in rows]),
                     hide_index=True, width="stretch")

# ---------------------------------------------------------------- claims
with tab_claims:
    st.caption(f"Each paper's headline claim beside what these runs show. Verdicts use {int(LEVEL * 100)} % "
               "confidence intervals over seeds; small-scale replications (see the note at the end).")
    for claim in report["claims"]:
        with st.container(border=True):
            head = st.columns([0.75, 0.25], vertical_alignment="center")
            head[0].markdown(f"**{claim['paper']}**: {claim['claim']}  \n*The paper:* {claim['paper_says']}")
            color, icon = VERDICT_STYLE[claim["verdict"]]
            with head[1]:
                st.badge(claim["verdict"], icon=icon, color=color)
            for part in claim["parts"]:
                p_color, p_icon = VERDICT_STYLE[part["verdict"]]
                st.markdown(f"{p_icon} {part['text']}: {part_numbers(part)}  \n"
                            f"<small>{part['verdict']}: {part['reason']}</small>", unsafe_allow_html=True)
            if claim["source"] == "recovery":
                st.caption(f"From recovery grid `{grid_id}` (the newest finished one; each corrupted run is one "
                           "sample)." if grid_id else "Run a grid on the Corruption & recovery page to judge this.")
    st.info(report["notes"][0], icon=":material/science:")

# ---------------------------------------------------------------- export
with tab_export:
    st.markdown("The tables as files: the methods table and the claims table as CSV, the whole report as Markdown "
                "(ready for a paper's appendix or a course page) or JSON (every number, per run).")
    a, b, c, d = st.columns(4)
    a.download_button("Methods (CSV)", to_csv(methods_table(report)), "benchmark-methods.csv", "text/csv",
                      key="bench-dl-methods")
    b.download_button("Claims (CSV)", to_csv(claims_table(report)), "benchmark-claims.csv", "text/csv",
                      key="bench-dl-claims")
    c.download_button("Report (Markdown)", to_markdown(report), "benchmark.md", "text/markdown", key="bench-dl-md")
    d.download_button("Report (JSON)", json.dumps(report, indent=2, default=str), "benchmark.json",
                      "application/json", key="bench-dl-json")
    command = "python -m engine report --format markdown " + (f"--suite {suite_id}" if source == "A suite"
                                                                else "--runs " + ",".join(run_ids))
    st.caption(f"The same report from the command line: `{command}`")
