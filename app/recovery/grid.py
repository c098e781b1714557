"""One recovery grid: choosing it, its progress and the state of every planned run, and its results
(curves, heat map, layer probes, robustness, metrics), followed live while it runs. Every number comes from
engine.recovery."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app.components import cancel_button, page_link, run_picker, status_badge
from app.formatting import fmt_duration
from app.live import follow_run
from app.plain_text import markdown_text
from app.recovery import figures as figs
from app.recovery.claim import healing_panel
from app.state import get_store
from engine.data.advglue import advglue_label
from engine.execution.executor import state_text
from engine.recovery.claims import describe_grid, grid_sentence, judge_grid, usable_seeds
from engine.recovery.views import (
    GridView,
    chance_lines,
    curves_by_label,
    grid_task,
    heatmap_table,
    layers_by_label,
    load_grid,
)
from engine.store.runs import Run, RunError

METRICS = {"recovery_ratio": "recovery ratio (chance-corrected)", "final_accuracy": "final accuracy", "auc": "AUC",
           "steps_to_95": "steps to 95 %", "advglue_accuracy": "AdvGLUE"}


def is_grid(row: dict) -> bool:
    return row.get("kind") == "recover"


def fmt(mean, std, digits: int = 3) -> str:
    if mean is None:
        return "–"
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None else "")


def grid_picker() -> str | None:
    """The grid to show (the newest preselected), or None with a note on how to start one."""
    grids = get_store().list(kind="recover")
    if grids:
        return run_picker("Recovery grid", key="rec-grid", filter_fn=is_grid, default=grids[0]["id"])
    st.info("No recovery grids yet. Set one up above: on the tiny model a small grid takes a minute or two; "
            "on MiniLM (bottom and top, k = 1, 2, 3, 1,000 examples) plan on tens of minutes on a CPU.")
    return None


def show_grid(grid_id: str) -> None:
    """The grid's overview and results, re-read every 2.5 s while it runs; redrawn once when it ends."""
    follow_run(grid_id, _grid_view, every=2.5)


def _grid_view(grid: Run, live: bool) -> None:
    try:
        view = load_grid(get_store(), grid.id)
    except (RunError, ValueError) as err:
        st.error(f"Cannot show this grid: {markdown_text(str(err))}")
        return
    overview(view, live)
    results(view, live)


def overview(view: GridView, live: bool) -> None:
    """Status, progress, cancel, and the state of every planned run."""
    status = view.status
    state = status.get("status", "unknown")
    with st.container(border=True):
        top = st.columns([0.8, 0.2], vertical_alignment="center")
        top[0].markdown(f"**{grid_sentence(describe_grid(view.grid, view.rows))}** {len(view.cells)} runs.")
        with top[1]:
            status_badge(state)
        done = sum(c["status"] == "done" for c in view.cells)
        step, total = status.get("step") or 0, status.get("total_steps")
        if state == "queued":
            st.progress(0.0, text="Waiting for a free training slot (one job trains at a time).")
        elif total:
            text = f"{done} of {len(view.cells)} runs finished"
            if state == "running" and status.get("current"):
                text += f" · now: {status['current']}"
                if step and status.get("started"):
                    elapsed = time.time() - status["started"]
                    text += f" · about {fmt_duration(elapsed / step * (total - step))} to go"
            st.progress(min(step / total, 1.0), text=text)
        if live:
            cancel_button(get_store(), view.grid.id, "Cancel grid", f"rec-cancel-{view.grid.id}",
                          "the running model stops at its next step; finished runs and every curve recorded so far "
                          "are kept.")
        elif state == "cancelled":
            st.warning(f"This grid was cancelled after {done} of {len(view.cells)} runs had finished; they are kept, "
                       "with the curves of the run that was stopped.")
        elif state == "failed":
            st.error(f"This grid failed: {status.get('error') or 'see the log of its runs'}. Finished runs are kept.")
        table = pd.DataFrame([{"run": c["label"], "seed": c["seed"], "status": c["status"],
                               "step": f"{c['step'] or 0} / {c['total_steps'] or '?'}",
                               "last dev accuracy": c["dev_accuracy"], "node": c["node"] or "",
                               "state": state_text(c), "run id": c["run_id"] or ""}
                              for c in view.cells])
        with st.expander(f"The {len(view.cells)} runs of this grid", expanded=live):
            st.dataframe(table, hide_index=True, column_config={
                "last dev accuracy": st.column_config.NumberColumn(format="%.3f")})


def results(view: GridView, live: bool) -> None:
    """Recovery curves, the heat map and the bottom-or-top verdicts, CKA and drift by layer, AdvGLUE, and
    the metrics table with its downloads."""
    curves = curves_by_label(view)
    if not curves:
        st.info("No evaluations recorded yet: the first curve points appear a few steps into the first run.")
        return
    chance = chance_lines(view)
    st.plotly_chart(figs.recovery_curves_figure(curves, chance.get("dev")), key=f"rec-curves-{live}")
    st.caption(figs.CAPTIONS["curves"])
    summary = view.summary
    clean_notes = usable_seeds(view.rows)[1]      # clean baselines that failed or did not learn
    for note in clean_notes:
        st.warning(note, icon=":material/warning:")
    if not any(e["position"] != "clean" for e in summary):
        st.info("The heat map, layer probes, robustness and metrics table appear once a corrupted run has finished.")
        return

    left, right = st.columns([0.55, 0.45], gap="medium")
    with left:
        metric = st.radio("Colour the heat map by", list(METRICS)[:4], format_func=METRICS.get, horizontal=True,
                          key="rec-heat-metric")
        st.plotly_chart(figs.heatmap_figure(heatmap_table(summary, metric), metric), key=f"rec-heat-{live}")
        st.caption(figs.CAPTIONS["heatmap"])
    with right:
        healing_panel(judge_grid(view.grid, view.rows), summary, clean_notes)

    a, b = st.columns(2, gap="medium")
    with a:
        starts = st.toggle("show the corrupted starting point (dotted)", value=True, key="rec-cka-start")
        after, before = layers_by_label(view, "cka"), layers_by_label(view, "cka_start") if starts else []
        if after:
            st.plotly_chart(figs.cka_figure(after, before), key=f"rec-cka-{live}")
            st.caption(figs.CAPTIONS["cka"])
        else:
            st.info("No CKA yet: it is computed after each run, against the clean run of the same seed.")
    with b:
        relative = st.toggle("relative to the starting norm", value=True, key="rec-drift-relative")
        drift = layers_by_label(view, "drift_relative" if relative else "drift")
        if drift:
            st.plotly_chart(figs.drift_figure(drift, relative), key=f"rec-drift-{live}")
            st.caption(figs.CAPTIONS["drift"])
        else:
            st.info("No weight drift yet: it is computed after each run finishes.")

    advglue = advglue_label(grid_task(view))   # the grid's task's AdvGLUE set, e.g. AdvGLUE-SST2
    if any(e.get("advglue_accuracy_mean") is not None for e in summary):
        st.plotly_chart(figs.advglue_figure(summary, chance, advglue=advglue), key=f"rec-adv-{live}")
        st.caption(figs.CAPTIONS["advglue"])

    st.markdown("**Metrics** (mean ± sample standard deviation over seeds; finished runs only; recovery ratio = "
                "(accuracy - chance) / (clean accuracy - chance), chance = the dev set's majority-class rate"
                + (f" {chance['dev']:.3f}" if "dev" in chance else "") + ")")
    table = pd.DataFrame([{
        "group": e["label"], "k": e["layers"], "seeds": e["seeds"],
        "final accuracy": fmt(e["final_accuracy_mean"], e["final_accuracy_std"]),
        "recovery ratio (chance-corrected)": fmt(e["recovery_ratio_mean"], e["recovery_ratio_std"]),
        "AUC": fmt(e["auc_mean"], e["auc_std"]),
        "steps to 95 %": f"{fmt(e['steps_to_95_mean'], e['steps_to_95_std'], 0)} "
                         f"({e['reached_95']}/{e['seeds']} reached)",
        advglue: fmt(e["advglue_accuracy_mean"], e["advglue_accuracy_std"]),
    } for e in summary])
    st.dataframe(table, hide_index=True)
    c1, c2, c3 = st.columns([0.25, 0.25, 0.5])
    c1.download_button("Summary CSV", pd.DataFrame(summary).to_csv(index=False), f"{view.grid.id}-summary.csv",
                       "text/csv", icon=":material/download:", key=f"rec-csv-summary-{live}")
    c2.download_button("Per-run CSV", pd.DataFrame(view.rows).to_csv(index=False), f"{view.grid.id}-runs.csv",
                       "text/csv", icon=":material/download:", key=f"rec-csv-runs-{live}")
    with c3:
        page_link("runs.py", "Open the grid's runs in Runs", icon=":material/table_view:",
                  query_params={"run": view.grid.id})
