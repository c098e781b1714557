"""The Benchmark report on the page: what is missing (and the button that computes it), what the report
warns about (rows split by settings, runs that did not learn, too few seeds), and its three tabs: methods,
claims, export. Every number comes from engine.reporting.benchmark."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app.benchmark import figures as figs
from app.benchmark.selection import Selection
from app.state import get_store
from engine.behaviour.compare import capability_table, method_behaviour
from engine.behaviour.runner import stored_suites
from engine.reporting.benchmark import (
    AttackSpec,
    attacks_under_way,
    budget_curves,
    fill_missing,
    metric_titles,
    missing_work,
)
from engine.reporting.export import (
    claims_table,
    excluded_table,
    fmt_value,
    methods_table,
    part_numbers,
    to_csv,
    to_markdown,
)
from engine.store.runs import ACTIVE

VERDICT_STYLE = {"supported": ("green", ":material/check_circle:"), "not supported": ("red", ":material/cancel:"),
                 "inconclusive": ("gray", ":material/help:")}


def missing_panel(selection: Selection, report: dict) -> None:
    """Attacks under way, and what the report lacks with a button that computes it (not while a suite runs)."""
    store = get_store()
    attack = selection.attack
    todo = missing_work(report["runs"])
    busy = selection.suite is not None and selection.suite.status.get("status") in ACTIVE
    under_way = attacks_under_way(store, attack) & set(todo["attacks"]) if attack else set()
    if under_way:
        st.info(f"{len(under_way)} attack(s) queued or running; their numbers appear here when they finish.",
                icon=":material/hourglass_top:")
    todo["attacks"] = [run_id for run_id in todo["attacks"] if run_id not in under_way]
    if not (todo["evaluations"] or todo["attacks"]) or busy:
        return
    parts = []
    if todo["evaluations"]:
        parts.append(f"{len(todo['evaluations'])} run(s) lack a stored dev or AdvGLUE evaluation (or its "
                     "per-sentence results)")
    if todo["attacks"]:
        parts.append(f"{len(todo['attacks'])} run(s) lack the {attack.recipe} attack on {attack.n} {attack.dataset} "
                     "sentences")
    st.warning("; ".join(parts) + ". Their cells read *missing*, and they are left out of the means. Compute only "
               "what is missing: evaluations here (seconds each), attacks as background jobs.",
               icon=":material/pending:")
    if st.button("Compute what is missing", icon=":material/calculate:", key="bench-fill"):
        with st.spinner("Evaluating…"):
            fill_missing(store, todo, attack, background=True)
        st.toast(f"Queued {len(todo['attacks'])} attack(s); this page shows them once they finish.")
        st.rerun()


def report_notes(report: dict) -> None:
    """The report's statements (rows split by settings, runs that did not learn, too few seeds), and the runs
    not in the numbers because they are not finished (those that did not learn are in the statements)."""
    for statement in report["statements"]:
        st.warning(statement, icon=":material/warning:")
    failed = [r for r in report["runs"] if r["status"] != "done"]
    if failed:
        st.caption("Not in the numbers: " + "; ".join(f"`{r['run_id']}` ({r['status']})" for r in failed))


def methods_tab(report: dict, attack: AttackSpec | None) -> None:
    """The methods table, one figure per metric, accuracy against query budget, and every run."""
    rows = report["runs"]
    st.dataframe(pd.DataFrame(methods_table(report)), hide_index=True, width="stretch")
    st.caption("Accuracies and rates in points: mean ± sample standard deviation over seeds (no ± with one seed). "
               "*missing* means no stored number, never zero. Runs that did not learn are not in any number; a "
               "method trained with different settings has one row per setting. Dashed red lines: chance." +
               (f" Attack: {attack.recipe}, first {attack.n} {attack.dataset} sentences, 2000 queries per sentence."
                if attack else " No attack chosen."))
    colors = figs.method_colors([m["method"] for m in report["methods"]])
    metric_columns = st.columns(2)
    titles = metric_titles(report)   # the AdvGLUE metric named by the runs' task
    for i, (metric, title) in enumerate(titles.items()):
        with metric_columns[i % 2]:
            if any(m.get(metric) is not None for m in report["methods"]):
                st.plotly_chart(figs.metric_figure(report, metric, title, colors), key=f"bench-{metric}")
            else:
                st.info(f"No stored {title} for these runs.")
    curves = budget_curves(get_store(), rows)
    if curves["methods"]:
        st.plotly_chart(figs.budget_figure(curves, colors, report["chance"]), key="bench-budget")
        st.caption("Read off how robust each method is for an attacker with a smaller budget: a sentence counts as "
                   "correct at budget q if the model was right and the attack failed or needed more than q queries. "
                   "Bands: ± one standard deviation over seeds.")
    with st.expander("Every run"):
        st.dataframe(pd.DataFrame([{"run": r["run_id"], "row": r.get("row") or r["method"], "seed": r["seed"],
                                    "status": r["status"],
                                    "learned": {True: "yes", False: "no", None: "–"}[r["learned"]],
                                    **{t: "missing" if r[m] is None else f"{r[m] * 100:.1f}"
                                       for m, t in titles.items()},
                                    "missing": ", ".join(r["missing"])} for r in rows]),
                     hide_index=True, width="stretch")
    if report["excluded"]:
        with st.expander(f"Runs left out: {len(report['excluded'])} did not learn"):
            st.dataframe(pd.DataFrame(excluded_table(report)), hide_index=True, width="stretch")


def behaviour_panel(report: dict) -> None:
    """Behaviour failure rates per capability and method (mean ± std over seeds) beside accuracy under attack,
    from the behaviour results stored for the report's runs (the suite chosen when they have several)."""
    suites = stored_suites(get_store(), [r["run_id"] for r in report["runs"]])
    if not suites:
        st.caption("No behaviour results are stored for these runs: run the suite with `--behaviour sentiment`, "
                   "`python -m engine behave --runs ...`, or the Behaviour page.")
        return
    suite = st.selectbox("Behaviour suite", suites, key="bench-behaviour-suite") if len(suites) > 1 else suites[0]
    comparison = method_behaviour(get_store(), report["runs"], suite)
    if comparison is None:
        st.caption(f"None of the runs in the numbers has {suite} behaviour results.")
        return
    methods = [m["method"] for m in report["methods"] if m["method"] in comparison["methods"].values()]
    attack = {m["method"]: fmt_value(m.get("accuracy_under_attack"), m.get("accuracy_under_attack_std"))
              for m in report["methods"]}
    st.dataframe(pd.DataFrame(capability_table(comparison, methods, attack)), hide_index=True, width="stretch")
    st.caption(f"Behaviour suite {suite}: failure rate in points per capability (the mean of its tests' rates), "
               f"mean ± sample standard deviation over the {len(comparison['runs'])} runs with stored results; lower "
               "is better. Rates follow CheckList's rules (every case counts; an INV flip within 0.1 passes; DIR "
               "counts the cases that can fail; docs/methods.md). The first row is accuracy under attack, higher is "
               "better.")


def claims_tab(report: dict) -> None:
    """Each paper's claim with its verdict, every comparison it rests on with the numbers and the interval
    used, what was left out, and for an open part the seeds that would likely settle it."""
    st.caption("Each paper's headline claim beside what these runs show. Verdicts come from confidence intervals "
               "(paired t, Welch or a hierarchical bootstrap: each part says which, and at what level); every "
               "robustness part comes with a clean-accuracy part. Small-scale replications (see the note at the "
               "end).")
    if report.get("look"):
        st.info(report["look"]["text"], icon=":material/timeline:")
    if report["excluded"]:
        st.warning(f"{len(report['excluded'])} run(s) did not learn and are left out of every claim: "
                   + "; ".join(f"`{e['run_id']}` ({e['method']} seed {e['seed']}): {e['reason']}"
                               for e in report["excluded"]), icon=":material/block:")
    for claim in report["claims"]:
        with st.container(border=True):
            head = st.columns([0.75, 0.25], vertical_alignment="center")
            head[0].markdown(f"**{claim['paper']}**: {claim['claim']}  \n*The paper:* {claim['paper_says']}")
            color, icon = VERDICT_STYLE[claim["verdict"]]
            with head[1]:
                st.badge(claim["verdict"], icon=icon, color=color)
            for part in claim["parts"]:
                part_icon = VERDICT_STYLE[part["verdict"]][1]
                needed = (f"<br><b>Seeds needed:</b> {part['seeds_text']}"
                          + (" Queue them from **Reproduce**." if part.get("seeds_needed") else "")
                          if part.get("seeds_text") else "")
                st.markdown(f"{part_icon} {part['text']}: {part_numbers(part, report['level'])}  \n"
                            f"<small>{part['verdict']}: {part['reason']}{needed}</small>", unsafe_allow_html=True)
            for statement in claim.get("statements", []):
                st.caption(statement)
            if claim["source"] == "recovery":
                st.caption(grid_caption(claim.get("grid")))
                if claim.get("verdict_budget"):
                    st.caption(f"Verdict: {claim['verdict_budget']} (recovery read at the end of this budget).")
    st.info(report["scale_note"], icon=":material/science:")


def grid_caption(grid: dict | None) -> str:
    """Which recovery grid the Healing claim was judged on, in words."""
    if not grid:
        return "Run a grid on the Corruption & recovery page to judge this."
    described = ", ".join(f"{key} {grid[key]}" for key in ("corruption", "levels", "seeds", "train_size", "epochs")
                          if grid.get(key) is not None)
    return f"From recovery grid `{grid['id']}`" + (f" ({described})." if described else ".")


def export_tab(report: dict, selection: Selection) -> None:
    """The tables as CSV, the report as Markdown or JSON, and the CLI command that makes the same report."""
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
    command = "python -m engine report --format markdown " + (f"--suite {selection.suite.id}" if selection.suite
                                                                else "--runs " + ",".join(selection.run_ids))
    st.caption(f"The same report from the command line: `{command}`")
