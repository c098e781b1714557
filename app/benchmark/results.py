"""The Benchmark report on the page: what is missing (and the button that computes it), the report's notes,
and its three tabs: methods, claims, export. Every number comes from engine.benchmark."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app.benchmark import figures as figs
from app.benchmark.selection import Selection
from app.state import get_store
from engine.benchmark import (
    LEVEL,
    METRICS,
    AttackSpec,
    attacks_under_way,
    budget_curves,
    claims_table,
    fill_missing,
    methods_table,
    missing_work,
    part_numbers,
    to_csv,
    to_markdown,
)
from engine.runs import ACTIVE

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
        parts.append(f"{len(todo['evaluations'])} run(s) lack a stored dev or AdvGLUE evaluation")
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
    """The report's warnings (the scale note goes under the claims) and the runs left out of the numbers."""
    for note in report["notes"][1:]:
        st.warning(note, icon=":material/warning:")
    failed = [r for r in report["runs"] if r["status"] not in ("done",)]
    if failed:
        st.caption("Not in the numbers: " + "; ".join(f"`{r['run_id']}` ({r['status']})" for r in failed))


def methods_tab(report: dict, attack: AttackSpec | None) -> None:
    """The methods table, one figure per metric, accuracy against query budget, and every run."""
    rows = report["runs"]
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
    curves = budget_curves(get_store(), rows)
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


def claims_tab(report: dict) -> None:
    """Each paper's claim with its verdict, and every comparison it rests on with the numbers."""
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
                part_icon = VERDICT_STYLE[part["verdict"]][1]
                st.markdown(f"{part_icon} {part['text']}: {part_numbers(part)}  \n"
                            f"<small>{part['verdict']}: {part['reason']}</small>", unsafe_allow_html=True)
            if claim["source"] == "recovery":
                grid_id = report["grid"]
                st.caption(f"From recovery grid `{grid_id}` (the newest finished one; each corrupted run is one "
                           "sample)." if grid_id else "Run a grid on the Corruption & recovery page to judge this.")
    st.info(report["notes"][0], icon=":material/science:")


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
