"""What the Benchmark page compares: a suite (with its live overview) or runs chosen by hand, and which
stored attack to read for them."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app.benchmark.suite import reproduce_form, suite_overview
from app.components import run_picker
from app.dataset_context import context_dataset, of_dataset
from app.formatting import fmt_time, short_dataset
from app.state import get_store
from engine.attacks.recipes import recipe_table
from engine.reporting.benchmark import AttackSpec
from engine.store.runs import Run, RunError
from engine.suite.job import SuiteSpec, list_suites, suite_train_runs
from engine.training.evaluate import own_sets

SUITE, CHOSEN = "A suite", "Runs I choose"


@dataclass
class Selection:
    """The training runs a report covers, the attack it reads, and the suite they come from (None for runs
    chosen by hand)."""
    run_ids: list[str]
    attack: AttackSpec | None
    suite: Run | None


def reproduce() -> None:
    """The suite form; a suite queued from it becomes the one compared below."""
    new_suite = reproduce_form()
    if new_suite:
        st.session_state["bench-suite"] = new_suite
        st.session_state["bench-source"] = SUITE


def choose_selection() -> Selection:
    """A suite or runs chosen by hand, and the attack to read; stops the page when there is nothing to compare."""
    suites = list_suites(get_store())
    source = st.segmented_control("Compare", [SUITE, CHOSEN], key="bench-source",
                                  default=SUITE if suites else CHOSEN)
    if source == SUITE:
        if not suites:
            st.info("No suite yet. Open **Reproduce** above and run one, or compare runs you choose.")
            st.stop()
        selection = _suite_selection(suites)
    else:
        selection = _chosen_selection()
    if not selection.run_ids:
        st.info("Nothing to compare yet: choose runs above" + (" or wait for the suite's first model."
                                                               if source == SUITE else "."))
        st.stop()
    return selection


def _suite_selection(suites: list[dict]) -> Selection:
    store = get_store()
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
                           key=f"-{suite_id}", config=_task_config(run_ids, spec.dataset))
    return Selection(run_ids, attack, suite)


def _chosen_selection() -> Selection:
    store = get_store()
    models = [row for row in store.list(kind="train", status="done") if not row.get("parent")]
    dataset = _dataset_choice(models)
    run_ids = run_picker("Trained runs", key="bench-runs", multi=True,
                         filter_fn=lambda r: is_model(r) and r.get("dataset") == dataset,
                         help="Finished training runs on this dataset (not the runs inside a recovery grid). Runs of "
                              "the same method are grouped; their spread is the spread over seeds.")
    mine = of_dataset(models, dataset)
    methods = sorted({row["method"] for row in mine})
    whole = st.multiselect("Add every finished run of these methods", methods, key="bench-whole",
                           help=f"Every finished run of the method on {short_dataset(dataset)}.")
    run_ids = list(dict.fromkeys([*run_ids, *(row["id"] for m in whole for row in mine if row["method"] == m)]))
    return Selection(run_ids, attack_inputs(AttackSpec(), key="", config=_task_config(run_ids, dataset or "sst2")),
                     None)


def _task_config(run_ids: list[str], dataset: str) -> dict:
    """The config of the first of these runs still stored (it names the task's sets), else just the dataset."""
    store = get_store()
    for run_id in run_ids:
        try:
            return store.get(run_id).config
        except RunError:
            continue
    return {"dataset": dataset}


def _dataset_choice(models: list[dict]) -> str | None:
    """The dataset whose runs are compared (SST-2 by default): a report never mixes two."""
    datasets = list(dict.fromkeys(row["dataset"] for row in models if row.get("dataset")))
    if not datasets:
        return None
    default = context_dataset(models)
    return st.selectbox("Dataset", datasets, index=datasets.index(default), key="bench-dataset",
                        format_func=lambda d: f"{short_dataset(d)} ({len(of_dataset(models, d))} runs)",
                        help="Runs are compared only with runs of the same dataset.")


def suite_label(row: dict) -> str:
    spec = SuiteSpec.from_dict(get_store().get(row["id"]).config)
    return (f"{fmt_time(row['created'])} · {len(spec.methods)} methods x {len(spec.seeds)} seeds · "
            f"{spec.train_size} ex x {spec.epochs} ep · {spec.model} · {row['status']}"
            + (" · look 2 (extra seeds)" if spec.look == 2 else ""))


def is_model(row: dict) -> bool:
    return row["kind"] == "train" and row["status"] == "done" and not row.get("parent")


def attack_inputs(default: AttackSpec | None, key: str, config: dict) -> AttackSpec | None:
    """Which stored attack to read for every run (a suite's own by default); another one can be computed. The
    attacked sets offered are those of the runs' own task (`config`: one of the runs)."""
    recipes = [r["name"] for r in recipe_table() if r["available"]] + ["none"]
    default = default or AttackSpec(recipe="none")
    a, b, c = st.columns(3)
    recipe = a.selectbox("Attack results to read", recipes, key=f"bench-recipe-read{key}",
                         index=recipes.index(default.recipe) if default.recipe in recipes else len(recipes) - 1,
                         help="Another recipe than the suite's shows as missing until you compute it.")
    sets = own_sets(config)
    dataset = b.selectbox("Attacked sentences from", sets, key=f"bench-attack-set{key}",
                          index=sets.index(default.dataset) if default.dataset in sets else 0)
    n = c.number_input("Number of sentences attacked", 1, 872, max(1, default.n), key=f"bench-attack-read-n{key}")
    return None if recipe == "none" else AttackSpec(recipe, dataset, int(n))
