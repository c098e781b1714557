"""Batch attacks: a recipe over the first N sentences of a dataset (the model's own by default, a warning on
another task's; a sentence-pair model's pairs on the segment chosen) as a background job, and any attack run's
results (summary numbers, every example with its edits, both segments of a pair, CSV export)."""
from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from app.components import job_panel, status_badge
from app.formatting import short_dataset
from app.plain_text import markdown_text
from app.playground import text_views
from app.playground.attack import budget_inputs, recipe_picker, segment_picker
from app.playground.model_choice import run_heading
from app.playground.models import loaded_model
from app.playground.sentence import set_title
from engine.attacks.attacker import Budget, summarize_rows
from engine.attacks.batch import batch_config, read_results
from engine.attacks.recipes import AttackError
from engine.attacks.segments import DEFAULT_SEGMENT, SEGMENT_CHOICES
from engine.data.registry import REGISTRY
from engine.data.text_dataset import DataError
from engine.execution import jobs
from engine.execution.kinds import find_done
from engine.models.architecture import ModelError
from engine.store.runs import ACTIVE, Run, RunError, RunStore
from engine.training.evaluate import dev_set_name, own_sets, same_task

# registered evaluation sets any model may be attacked on: single sentences, and AdvGLUE's sentence pairs
OTHER_SETS = ("sst2-dev", "advglue-sst2")
OTHER_PAIR_SETS = tuple(name for name, spec in REGISTRY.items()
                        if name.startswith("advglue-") and len(spec.hub[3]) == 2)


def attack_sets(config: dict, pairs: bool) -> dict[str, str]:
    """{set name: title} a batch attack may use: the run's own sets first (its dev set is the default), then the
    other registered evaluation sets of the same shape (pairs for a pair model), marked as another task."""
    sets = {name: set_title(name, config.get("dataset")) for name in own_sets(config)}
    for name in OTHER_PAIR_SETS if pairs else OTHER_SETS:
        sets.setdefault(name, set_title(name, None) + ("" if same_task(config, name) else " (another task)"))
    return sets


def task_warning(config: dict, name: str) -> None:
    """Say so when an attack's sentences are of another task than the model's: its numbers then mean nothing."""
    if same_task(config, name):
        return
    dataset = config.get("dataset")
    st.warning(f"{set_title(name, None)} is another task: this model was trained on {short_dataset(dataset)}. Its "
               "clean accuracy and attack success rate on these sentences say nothing about how robust it is on its "
               f"own task; attack {set_title(dev_set_name(config), dataset)} instead.", icon=":material/warning:")


def batch_panel(store: RunStore, run_id: str) -> None:
    """Start a recipe over N examples of a dataset (the model's own by default) as a background job; show any
    attack run's results."""
    st.caption(f"Attacks the first N sentences of a dataset against **{run_heading(run_id)}** in a background worker. "
               "It keeps running if you leave the page; an identical attack that already ran is reused.")
    target = store.get(run_id).config
    try:
        names = loaded_model(run_id).segment_names
    except (ModelError, RunError) as err:
        st.error(markdown_text(str(err)), icon=":material/error:")
        return
    sets = attack_sets(target, names is not None)
    with st.form("pg-batch-form", border=True):
        recipe, _ = recipe_picker("pg-batch-recipe", only_available=True)
        segment = segment_picker(names, "pg-batch-segment")
        left, right = st.columns(2)
        dataset = left.selectbox("Dataset", list(sets), key=f"pg-batch-dataset-{run_id}", format_func=sets.__getitem__,
                                 help="The model's own sentences first. A set marked *another task* holds sentences "
                                      "and labels the model was not trained for.")
        n = right.number_input("Examples (N)", min_value=1, max_value=872, value=50, step=10, key="pg-batch-n")
        queries, fraction = budget_inputs("pg-batch-budget")
        submitted = st.form_submit_button("Start batch attack", icon=":material/play_arrow:", type="primary")
    if submitted:
        try:
            config = batch_config(run_id, recipe, dataset, int(n), Budget(queries, fraction), segment=segment)
            cached = find_done(store, "attack", config)
            if cached is not None:
                st.info("This exact attack already ran on this model; showing its results.")
                st.session_state["pg-batch-run"] = cached.id
            else:
                st.session_state["pg-batch-run"] = jobs.submit(store, config, kind="attack", parent=run_id).id
        except (AttackError, DataError, RunError) as err:
            st.error(markdown_text(str(err)), icon=":material/error:")
    rows = store.list(kind="attack", parent=run_id)
    if not rows:
        st.info("No batch attacks on this model yet.")
        return
    ids = [r["id"] for r in rows]
    if st.session_state.get("pg-batch-run") in ids:
        st.session_state["pg-batch-pick"] = st.session_state.pop("pg-batch-run")
    runs = {r["id"]: store.get(r["id"]) for r in rows}
    chosen = st.selectbox("Batch attacks on this model", ids, key="pg-batch-pick",
                          format_func=lambda i: _attack_label(runs[i]))
    run = runs[chosen]
    task_warning(target, run.config.get("dataset", ""))
    if run.status.get("status") in ACTIVE:
        job_panel(run.id)
    batch_results(run, names)


def _attack_label(run: Run) -> str:
    """recipe · set · (segment attacked ·) N · status · id tail; the status from the run itself (the index may lag
    behind it)."""
    config = run.config
    segment = f"{config['segment']} segment · " if config.get("segment") else ""
    return (f"{config.get('recipe')} · {config.get('dataset')} · {segment}N={config.get('n')} · "
            f"{run.status.get('status', 'unknown')} · {run.id.rsplit('-', 1)[-1]}")


def batch_results(run, names: tuple[str, str] | None = None) -> None:
    """Summary numbers, a table of every example with its diff (a pair's both segments, `names`), and CSV
    export."""
    records = read_results(run)
    status = run.status.get("status")
    if not records:
        if status not in ACTIVE:
            status_badge(status)
            st.info(run.status.get("error") or "This attack recorded no examples.")
        return
    summary = run.results if status == "done" and run.results else summarize_rows(records)
    if status != "done":
        st.caption(f"{status}: {len(records)} examples so far.")
    cols = st.columns(5)
    cols[0].metric("Success rate", f"{summary['success_rate']:.1%}",
                   help="attacks that flipped the prediction, among examples the model got right")
    cols[1].metric("Avg queries", f"{summary['avg_queries']:.0f}", help="per attacked example")
    cols[2].metric("Avg words changed", f"{summary['avg_fraction_perturbed']:.1%}",
                   help="share of words changed, over successful attacks")
    cols[3].metric("Accuracy under attack", f"{summary['accuracy_under_attack']:.1%}",
                   help="examples still right after the attack, among all N")
    cols[4].metric("Clean accuracy", f"{summary['original_accuracy']:.1%}", help="before any attack")
    table = pd.DataFrame(records)
    pair = "attacked_segment" in table
    columns = ("index", "status", "label", "attacked_segment", "diff", "first", "second", "perturbed", "queries",
               "fraction_changed") if pair else \
        ("index", "status", "label", "diff", "original", "perturbed", "queries", "fraction_changed")
    shown = [c for c in columns if c in table]
    if pair:
        st.caption(f"Each pair was attacked on its {records[0]['attacked_segment']} only; the other segment was kept "
                   "as it is. *first* and *second* are the original pair, *perturbed* the attacked segment after "
                   "the attack.")
    event = st.dataframe(table[shown], hide_index=True, key=f"pg-batch-table-{run.id}", on_select="rerun",
                         selection_mode="single-row",
                         column_config={"fraction_changed": st.column_config.NumberColumn("words changed",
                                                                                           format="percent"),
                                        "diff": st.column_config.TextColumn("edits", width="medium"),
                                        "attacked_segment": st.column_config.TextColumn("attacked"),
                                        "original": st.column_config.TextColumn(width="large"),
                                        "first": st.column_config.TextColumn(width="large"),
                                        "second": st.column_config.TextColumn(width="large"),
                                        "perturbed": st.column_config.TextColumn(width="large")})
    picked = event.selection.rows if event and event.selection else []
    if picked:
        record = records[picked[0]]
        if pair and names is not None:
            attacked = SEGMENT_CHOICES.index(run.config.get("segment") or DEFAULT_SEGMENT)
            text_views.pair_diff_view(names, attacked, record[SEGMENT_CHOICES[1 - attacked]], record["original"],
                                      record["perturbed"])
        else:
            text_views.diff_view(record["original"], record["perturbed"])
    else:
        st.caption("Select a row to see its edits highlighted.")
    csv_path = run.dir / "results.csv"
    data = csv_path.read_bytes() if csv_path.exists() else _csv_bytes(table)
    st.download_button("Download CSV", data, file_name=f"{run.id}.csv", mime="text/csv",
                       icon=":material/download:", key=f"pg-batch-csv-{run.id}")



def _csv_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")
