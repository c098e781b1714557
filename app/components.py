"""UI pieces every page reuses: a run picker, a live job panel, a method-settings form, a status badge,
and a link to another page that still works when a page runs on its own (AppTest)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from app.formatting import progress_point, progress_text, run_label, run_title
from app.live import follow_run
from app.nav import PAGES_DIR
from app.plain_text import markdown_text
from app.run_views import show_curves, show_results
from app.state import derived_marks_of, get_store, learning_of
from engine.execution import jobs
from engine.methods.base import Method, Setting, SettingError
from engine.store.runs import ACTIVE, Run, RunStore

_BADGES = {"queued": ("gray", ":material/hourglass_empty:"), "running": ("blue", ":material/autorenew:"),
           "done": ("green", ":material/check_circle:"), "failed": ("red", ":material/error:"),
           "cancelled": ("orange", ":material/cancel:"), "damaged": ("red", ":material/broken_image:")}


def status_badge(status: str | None) -> None:
    """A coloured badge for a run status (queued, running, done, failed, cancelled, damaged)."""
    color, icon = _BADGES.get(status or "", ("gray", ":material/help:"))
    st.badge(status or "unknown", icon=icon, color=color)


def page_link(file_name: str, label: str, icon: str | None = None,
              query_params: dict[str, str] | None = None) -> None:
    """A link to a page in pages/. When the page is not registered (a page run alone, as in AppTest),
    a plain link to its URL is shown instead of failing."""
    try:
        st.page_link(str(PAGES_DIR / file_name), label=label, icon=icon, query_params=query_params)
    except StreamlitAPIException:
        query = "&".join(f"{k}={v}" for k, v in (query_params or {}).items())
        st.markdown(f"[{label}](/{file_name.removesuffix('.py')}{'?' + query if query else ''})")


# ---------------------------------------------------------------- run picker

def run_picker(label: str, key: str, filter_fn: Callable[[dict], bool] | None = None, multi: bool = False,
               default: str | list[str] | None = None, help: str | None = None) -> Any:
    """Choose runs from the store by a readable label (method · dataset · model · seed · dev acc · id; a run
    that did not learn says so, with its chance level).

    `filter_fn` gets each index row (a dict from `RunStore.list()`: id, kind, method, dataset, model,
    seed, status, dev_accuracy, ...) and keeps the run when it returns True. Returns the chosen run id
    (None when nothing is chosen), or a list of ids with `multi=True`. `default` preselects on first show.
    """
    rows = [row for row in get_store().list() if filter_fn is None or filter_fn(row)]
    if not rows:
        st.info("No runs to choose from yet. Train one on the **Train** page (a tiny-model run takes under a "
                "minute).")
        return [] if multi else None
    labels = {row["id"]: run_label(row, learning_of(row), derived_marks_of(row)) for row in rows}
    ids = list(labels)
    if key in st.session_state:  # drop choices that were deleted or filtered out since
        chosen = st.session_state[key]
        if multi and isinstance(chosen, list) and any(c not in labels for c in chosen):
            st.session_state[key] = [c for c in chosen if c in labels]
        elif not multi and chosen is not None and chosen not in labels:
            del st.session_state[key]
    elif default:
        wanted = [d for d in ([default] if isinstance(default, str) else default) if d in labels]
        if wanted:
            st.session_state[key] = wanted if multi else wanted[0]
    if multi:
        return st.multiselect(label, ids, format_func=labels.__getitem__, key=key, help=help,
                              placeholder="Choose runs")
    return st.selectbox(label, ids, index=None, format_func=labels.__getitem__, key=key, help=help,
                        placeholder="Choose a run")


# ---------------------------------------------------------------- job panel

def cancel_button(store: RunStore, run_id: str, label: str, key: str, kept: str) -> None:
    """Cancel for a queued or running job; once pressed, says what the job keeps."""
    if st.button(label, key=key, icon=":material/stop_circle:"):
        st.info(f"Cancel requested ({jobs.cancel(store, run_id)}): {kept}")


def job_panel(run_id: str, stacked: bool = False) -> None:
    """Status, progress, live curves and a Cancel button for one run.

    While the run is queued or running the panel re-reads the run folder every 1.5 s; once the run has
    finished it is drawn once and stops polling. `stacked` puts the two charts one above the other
    (for a panel in a narrow column).
    """
    store = get_store()
    follow_run(run_id, lambda run, live: _panel_body(store, run, live, stacked), every=1.5)


def _queue_position(store: RunStore, run: Run) -> int:
    """How many active runs were created before this one (they go first)."""
    mine = run.status.get("created", 0)
    return sum(1 for row in store.list() if row["status"] in ACTIVE and row["id"] != run.id
               and row["created"] < mine)


def _panel_body(store: RunStore, run: Run, live: bool, stacked: bool) -> None:
    status = run.status
    state = status.get("status", "unknown")
    rows = run.metrics()   # read once: the curves and the progress text show the same records
    with st.container(border=True):
        top = st.columns([0.75, 0.25], vertical_alignment="center")
        with top[0]:
            st.markdown(f"**{run_title(run.config)}**  \n`{run.id}`")
        with top[1]:
            status_badge(state)
        step, total = status.get("step") or 0, status.get("total_steps")
        if state == "queued":
            jobs.dispatch(store)   # a slot freed by a worker killed from outside: the queue moves on here too
            ahead = _queue_position(store, run)
            st.progress(0.0, text=f"Waiting for a free worker slot: {ahead} run(s) ahead of it."
                        if ahead else "Starting: loading data and model…")
        elif total:
            step, reached = progress_point(status, rows, run.metrics_written())
            st.progress(min(step / total, 1.0), text=progress_text(status, step, total, reached, time.time()))
        if live:
            cancel_button(store, run.id, "Cancel run", f"cancel-{run.id}",
                          "the run stops at its next step and keeps everything it recorded so far.")
        elif state == "failed":
            st.error(f"This run failed: {status.get('error', 'no error message was recorded')}. "
                     "The curves below show what it recorded before that; the log has the details.")
        elif state == "cancelled":
            st.warning(f"This run was cancelled at step {step}" + (f" of {total}" if total else "") +
                       "; what it recorded before that is kept.")
        show_curves(run, rows, key="job-", stacked=stacked)
        if state == "done":
            show_results(run, narrow=stacked)
        if not live:
            page_link("runs.py", "Open in Runs", icon=":material/table_view:", query_params={"run": run.id})


# ---------------------------------------------------------------- method settings

def settings_form(method_cls: type[Method], key: str, start: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Inputs for a method's `settings_spec`, with each setting's help and allowed range, each starting at
    `start`'s value (a preset's) or the setting's default (give another `key` with another `start`).

    Returns {name: value}, each parsed by the engine's `Setting.parse`; a value outside its range gets an
    error under its input and is returned as typed, so `make_method` / `TrainConfig.check()` refuses it
    with the same message.
    """
    values: dict[str, Any] = {}
    if not method_cls.settings_spec:
        st.caption("This method has no settings of its own.")
        return values
    columns = st.columns(2)
    for i, setting in enumerate(method_cls.settings_spec):
        with columns[i % 2]:
            raw = _setting_input(setting, f"{key}-{method_cls.name}-{setting.name}", (start or {}).get(setting.name))
            try:  # say at once when a value is outside its range (e.g. the open end of (0, 1])
                values[setting.name] = setting.parse(raw)
            except SettingError as err:
                st.error(markdown_text(str(err)), icon=":material/error:")
                values[setting.name] = raw
    return values


def _setting_input(setting: Setting, key: str, start: Any = None) -> Any:
    label = setting.name.replace("_", " ")
    help_text = f"{setting.help}  \nAllowed: {setting.range_text()}; default {setting.default}."
    default = setting.default if start is None else setting.parse(start)
    if setting.choices:
        choices = list(setting.choices)
        return st.selectbox(label, choices, index=choices.index(default) if default in choices else 0,
                            key=key, help=help_text)
    if isinstance(default, bool):
        return st.checkbox(label, value=default, key=key, help=help_text)
    if isinstance(default, int):
        low = None if setting.low is None else int(math.floor(setting.low)) + (1 if setting.low_open else 0)
        high = None if setting.high is None else int(math.ceil(setting.high)) - (1 if setting.high_open else 0)
        return int(st.number_input(label, value=default, min_value=low, max_value=high, step=1, key=key,
                                   help=help_text))
    if isinstance(default, float):
        step = float(10 ** (math.floor(math.log10(abs(default))) - 1)) if default else 0.01
        low = None if setting.low is None else float(setting.low)
        high = None if setting.high is None else float(setting.high)
        return float(st.number_input(label, value=default, min_value=low, max_value=high,
                                     step=step, format="%g", key=key, help=help_text))
    if isinstance(default, (list, tuple)):
        return st.text_input(label, value=", ".join(map(str, default)), key=key,
                             help=help_text + " Comma-separated.")
    return st.text_input(label, value=str(default), key=key, help=help_text)
