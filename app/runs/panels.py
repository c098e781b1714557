"""The Runs page's panels: the filtered table of every run (clicking rows opens them), one run's details
(curves, results, config, log, export, delete), and a comparison of several."""
from __future__ import annotations

import streamlit as st

from app.components import job_panel, page_link, run_picker, status_badge
from app.formatting import fmt_time, run_title
from app.plain_text import markdown_text
from app.run_views import show_comparison, show_curves, show_results
from app.runs.table import filter_rows, runs_frame, zip_bytes
from app.state import get_store, learning_of
from engine.execution import jobs
from engine.store.runs import ACTIVE, Run, RunError, RunStore
from engine.user_text import shown


def keep_tab_choices() -> None:
    """Keep each tab's chosen runs while the other tab is open (a widget not drawn loses its state)."""
    for kept in ("runs-detail", "runs-compare"):
        if kept in st.session_state:
            st.session_state[kept] = st.session_state[kept]


def all_runs() -> list[dict]:
    """Every run's index row, after the message of a delete just done; stops the page on an empty store."""
    store = get_store()
    rows = store.list()
    if flash := st.session_state.pop("runs-flash", None):
        st.success(flash, icon=":material/check_circle:")
    if not rows:
        st.info(f"No runs in the run store `{store.home}` yet. Train one on the **Train** page, or from a shell: "
                "`python -m engine train --model tiny --train-size 200 --epochs 1`.")
        st.stop()
    return rows


def runs_table(all_rows: list[dict]) -> set[str]:
    """Filters and the table of the runs they keep, newest first; returns the ids shown."""
    cols = st.columns([0.2, 0.2, 0.2, 0.2, 0.2])
    chosen = {
        "status": cols[0].multiselect("Status", sorted({r["status"] for r in all_rows}), key="runs-f-status"),
        "method": cols[1].multiselect("Method", sorted({r["method"] or r["kind"] for r in all_rows}),
                                      key="runs-f-method"),
        "dataset": cols[2].multiselect("Dataset", sorted({r["dataset"] or "?" for r in all_rows}),
                                       key="runs-f-dataset"),
        "model": cols[3].multiselect("Model", sorted({r["model"] or "?" for r in all_rows}), key="runs-f-model"),
    }
    search = cols[4].text_input("Search id", key="runs-f-search", placeholder="part of a run id")
    rows = filter_rows(all_rows, chosen, search)
    visible = {row["id"] for row in rows}
    st.session_state["runs-table-ids"] = [row["id"] for row in rows]
    learning = {row["id"]: learning_of(row) for row in rows}
    st.dataframe(runs_frame(rows, learning), hide_index=True, key="runs-table", placeholder="–",
                 on_select=open_selected, selection_mode="multi-row",
                 column_config={"dev acc": st.column_config.NumberColumn(format="%.3f"),
                                "learned": st.column_config.TextColumn(
                                    help="yes when dev accuracy is at least 10 points above chance"),
                                "chance": st.column_config.NumberColumn(
                                    format="%.3f", help="majority-class rate of the dev set"),
                                "AdvGLUE acc (own task)": st.column_config.NumberColumn(
                                    format="%.3f", help="on the AdvGLUE set of the run's own task (MNLI: the mean "
                                                        "of matched and mismatched)"),
                                "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    st.caption(f"{len(rows)} of {len(all_rows)} runs shown, newest first; tick one row to see its details, several "
               f"to compare them. Dev accuracy is on the SST-2 dev set "
               "(or the held-out part of an uploaded CSV); a run learned when it is at least 10 points above "
               "chance (the dev set's majority-class rate), and the robustness numbers of one that did not say "
               "nothing about its method. AdvGLUE accuracy is on the adversarial sentences of the run's own task "
               "(AdvGLUE-SST2 for an SST-2 run), the robustness score.")
    if not rows:
        no_match(search, any(chosen.values()), len(all_rows))
    return visible


def no_match(search: str, filtered: bool, total: int) -> None:
    """Why the table is empty although the store is not: what kept every run out, with the search shown as
    plain text (never Markdown)."""
    search = search.strip()
    what = " and ".join(name for name, used in (("the search", bool(search)), ("the filters", filtered)) if used)
    st.info(f"No run matches {what}: none of the {total} runs is shown. Change or clear "
            f"{'them' if filtered and search else 'it'} to see the runs.", icon=":material/search_off:")
    if search:
        st.caption("Run ids searched for:")
        st.text(shown(search))


def open_selected() -> None:
    """Clicking rows in the table: one row opens its details, several open the comparison."""
    picked = [st.session_state["runs-table-ids"][i] for i in st.session_state["runs-table"].selection.rows
              if i < len(st.session_state["runs-table-ids"])]
    if len(picked) == 1:
        st.session_state.update({"runs-detail": picked[0], "runs-view": "Details"})
    elif len(picked) > 1:
        st.session_state.update({"runs-compare": picked, "runs-view": "Compare"})


def run_details(all_rows: list[dict], visible: set[str]) -> None:
    """One run (from the picker, the table or a ?run= link): its status, curves and results, config, log,
    export and delete."""
    if not visible:   # the table says why
        return
    store = get_store()
    run_id = run_picker("Run", key="runs-detail", filter_fn=lambda r: r["id"] in visible,
                        default=st.query_params.get("run"))
    if not run_id:
        st.query_params.pop("run", None)
        return
    st.query_params["run"] = run_id
    run = store.get(run_id)
    row = next(r for r in all_rows if r["id"] == run_id)
    status = run.status
    state = "damaged" if row.get("damage") else status.get("status", "unknown")
    head, badge = st.columns([0.85, 0.15], vertical_alignment="center")
    head.subheader(run_title(row))
    with badge:
        status_badge(state)
    st.caption(f"Run `{run_id}` · created {fmt_time(row['created'])} · folder `{run.dir}`")
    if row.get("damage"):   # its files cannot be trusted: no curves or results drawn from them
        st.error(markdown_text(f"Damaged: {row['damage']}. The configuration and log below show what can be read; "
                               "the run can still be exported and deleted."), icon=":material/broken_image:")
    elif state in ACTIVE:
        job_panel(run_id)
    else:
        if state == "failed":
            st.error(f"Failed: {status.get('error', 'no error message recorded')}. The curves show what "
                     "it recorded before that; the log below has the details.", icon=":material/error:")
        elif state == "cancelled":
            st.warning(f"Cancelled at step {status.get('step', '?')} of {status.get('total_steps', '?')}; "
                       "what it recorded before that is kept.")
        show_curves(run, key="details-")
        show_results(run)
    if row["kind"] == "suite":
        page_link("benchmark.py", "Open in Benchmark", icon=":material/leaderboard:",
                  query_params={"suite": run_id})
    with st.expander("Configuration (everything needed to reproduce it)"):
        st.json(run.config, expanded=2)
    with st.expander("Log"):
        log = run.log_text()
        st.code(log[-20000:] if log else "(empty)", language=None)
    _export_and_delete(store, run)


def _export_and_delete(store: RunStore, run: Run) -> None:
    """Export as zip, and Delete with a confirmation (and Cancel first when the run is still going)."""
    run_id = run.id
    export_col, delete_col = st.columns(2)
    with export_col:
        st.download_button("Export as zip", data=lambda rid=run_id: zip_bytes(store, rid),
                           file_name=f"{run_id}.zip", mime="application/zip", on_click="ignore",
                           icon=":material/download:", key="runs-export",
                           help="The whole run folder: config, metrics, artifacts, log and the model.")
    with delete_col:
        if st.button("Delete run…", icon=":material/delete:", key="runs-delete"):
            st.session_state["runs-confirm-delete"] = run_id
    if st.session_state.get("runs-confirm-delete") == run_id:
        with st.container(border=True):
            st.warning(f"Delete run **{run_id}** and everything it recorded (model, curves, artifacts)? "
                       "This cannot be undone.")
            yes, no = st.columns(2)
            if yes.button("Yes, delete it", type="primary", key="runs-delete-yes"):
                try:
                    store.delete(run_id)
                except RunError as err:
                    st.error(markdown_text(str(err)), icon=":material/block:")
                    st.session_state["runs-delete-blocked"] = run_id
                else:
                    st.session_state.pop("runs-confirm-delete", None)
                    st.session_state["runs-flash"] = f"Deleted run {run_id}."
                    st.query_params.pop("run", None)
                    st.rerun()
            if no.button("Keep it", key="runs-delete-no"):
                st.session_state.pop("runs-confirm-delete", None)
                st.rerun()
            if st.session_state.get("runs-delete-blocked") == run_id and run.status.get("status") in ACTIVE:
                if st.button("Cancel the run", key="runs-delete-cancel", icon=":material/stop_circle:"):
                    st.info(f"Cancel requested ({jobs.cancel(store, run_id)}). Delete it once it has "
                            "stopped.")


def run_comparison(all_rows: list[dict], visible: set[str]) -> None:
    """Two or more training runs overlaid, with a table of their results."""
    if not visible:   # the table says why
        return
    store = get_store()
    ids = run_picker("Runs to compare", key="runs-compare", multi=True,
                     filter_fn=lambda r: r["id"] in visible and r["kind"] == "train" and r["status"] not in (
                         "queued", "damaged"),
                     help="Training runs that have started; pick two or more.")
    if len(ids) < 2:
        st.info("Pick two or more training runs to overlay their curves and compare their results.")
    else:
        show_comparison(store, [r for r in all_rows if r["id"] in ids])
