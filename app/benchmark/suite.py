"""The Benchmark page's suite pieces: the Reproduce panel that queues a suite, the button that queues the extra
seeds the open claim parts need, and the live overview of one suite's progress (what each method and seed
uses, trained or reused, attacked or not)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components import cancel_button, status_badge
from app.executor_choice import executor_choice
from app.formatting import fmt_duration
from app.live import follow_run
from app.plain_text import markdown_text
from app.state import get_store
from engine.attacks.recipes import recipe_table
from engine.execution.executor import ExecutorSpec, state_text
from engine.limits import MAX_SEEDS
from engine.methods import registry
from engine.models.loading import known_models
from engine.reporting.benchmark import extra_seed_suites, too_many_seeds
from engine.store.runs import Run, RunError
from engine.suite.job import SuiteSpec, default_methods, estimate_seconds, submit_suite, suite_config, suite_items
from engine.user_text import seed_list


@st.cache_data(ttl=30, show_spinner=False)
def _estimate(home: str, spec: dict) -> dict[str, float | None]:
    return estimate_seconds(get_store(), SuiteSpec.from_dict(spec))


def reproduce_form() -> str | None:
    """Inputs for a suite, what it would cost, and the button that queues it; returns the new suite's id."""
    methods = st.multiselect("Methods", list(registry()), default=default_methods(), key="bench-methods",
                             help="Every method is trained once per seed with the same data and budget.")
    a, b, c, d = st.columns(4)
    seeds_text = a.text_input("Seeds", "0, 1, 2", key="bench-seeds", help="Comma-separated whole numbers.")
    train_size = b.number_input("Training examples", 16, 67349, 2000, step=500, key="bench-train")
    epochs = c.number_input("Epochs", 1, 20, 2, key="bench-epochs")
    model = d.selectbox("Model", list(known_models()), key="bench-model",
                        help="\n\n".join(f"**{k}**: {v}" for k, v in known_models().items()))
    recipes = [r["name"] for r in recipe_table() if r["available"]]
    e, f, g = st.columns(3)
    recipe = e.selectbox("Attack recipe", [*recipes, "none"], key="bench-recipe",
                         help="Attacks the first sentences of the SST-2 dev set with each trained model.")
    attack_n = f.number_input("Sentences to attack", 0, 872, 100, step=25, key="bench-attack-n",
                              help="0: no attacks (the attack columns stay empty).")
    reuse = g.checkbox("Reuse finished runs", True, key="bench-reuse",
                       help="A finished run with exactly this configuration (or attack) is used, not repeated.")
    config = None
    try:
        where = executor_choice("bench")
        spec = SuiteSpec(methods=methods, seeds=seed_list(seeds_text), train_size=int(train_size),
                         epochs=int(epochs), model=model, recipe=None if recipe == "none" else recipe,
                         attack_n=int(attack_n), reuse=reuse)
        config = suite_config(spec, where)
    except ValueError as err:   # SuiteError, ConfigError, SettingError: each says what to change
        st.error(f"This suite cannot run: {markdown_text(str(err))}", icon=":material/error:")
    else:
        st.info(_cost_text(spec, where), icon=":material/schedule:")
    if st.button("Run the suite", type="primary", disabled=config is None, icon=":material/play_arrow:",
                 key="bench-start"):
        try:
            run = submit_suite(get_store(), spec, where)
        except RunError as err:   # the queue is full
            st.error(f"Not queued: {markdown_text(str(err))}", icon=":material/block:")
            return None
        st.success(f"Queued suite {run.id}. It keeps going if you leave this page; follow it below.")
        return run.id
    return None


def extra_seeds_panel(report: dict) -> list[str]:
    """The seeds that would likely settle the inconclusive claim parts (their `seeds_needed`, if the true
    difference equals the observed one), and one button that queues them as look 2 of the two-look design: a
    suite per set of methods and settings, with new seed numbers, the same training settings and the same attack.
    Parts that need more seeds than a suite may run are listed with their figure. Returns the suites' ids."""
    look = report.get("look") or {}
    if look.get("number") == 2:
        if any(p["verdict"] == "inconclusive" for c in report["claims"] if c.get("source") == "methods"
               for p in c["parts"]):
            st.markdown("**No more seeds for these claims.** This report is look 2 of RobustLab's two-look design; "
                        "a third look would raise the false-positive rate above 5 %.")
        return []
    suites = extra_seed_suites(report)
    beyond = too_many_seeds(report)
    if beyond:
        st.markdown(f"**Open parts more seeds will not settle within one suite ({MAX_SEEDS} seeds at most):**")
        for line in beyond:
            st.markdown(f"- {markdown_text(line)}")
    if not suites:
        return []
    st.markdown("**More seeds for the open claims.** If the true differences equal the observed ones (and the spread "
                "over seeds stays as measured), these seeds would likely settle the inconclusive parts (power 0.8) "
                "at look 2, the one further look RobustLab's design allows: the report with them combines both "
                "looks and keeps the 5 % error rate.")
    for spec, new in suites:
        st.markdown(f"- {', '.join(spec.methods)}: new seeds {', '.join(map(str, new))} ({spec.model}, "
                    f"{spec.train_size} examples x {spec.epochs} epochs; the suite reuses seeds "
                    f"{', '.join(str(s) for s in spec.seeds if s not in new) or 'none'})")
    if not st.button("Queue the extra seeds", icon=":material/add_task:", key="bench-extra-seeds"):
        return []
    try:
        queued = [submit_suite(get_store(), spec).id for spec, _ in suites]
    except ValueError as err:
        st.error(f"These seeds cannot be queued: {markdown_text(str(err))}", icon=":material/error:")
        return []
    st.success(f"Queued {len(queued)} suite(s): {', '.join(queued)}. Each reuses the finished runs and trains only "
               "the new seeds; choose it under **Suite** to see the report with them (look 2 of 2).")
    return queued


def _cost_text(spec: SuiteSpec, where: ExecutorSpec) -> str:
    estimate = _estimate(str(get_store().home), spec.__dict__)
    known = [v for v in estimate.values() if v is not None]
    unknown = [m for m, v in estimate.items() if v is None]
    text = f"{len(spec.methods) * len(spec.seeds)} models ({len(spec.methods)} methods x {len(spec.seeds)} seeds), "
    if where.kind == "ray":
        return text + ("each a task on the Ray cluster, as many at once as its nodes have room for; their runs come "
                       "back into this store as each finishes.")
    text += "trained one after another in one background job so the machine is never oversubscribed. "
    if known:
        text += f"Training needs about {fmt_duration(sum(known))} on this machine, judged from earlier runs"
        text += f" (no earlier run of {', '.join(unknown)} to judge by)" if unknown else ""
        text += "; attacks add a little for each model."
    else:
        text += "No earlier runs of these methods on this model to estimate the time from."
    return text


def suite_overview(run_id: str) -> None:
    """Progress of one suite: a bar, a row per (method, seed), and Cancel while it runs."""
    follow_run(run_id, _overview_body, every=2.0)


def _overview_body(run: Run, live: bool) -> None:
    status = run.status
    state = status.get("status", "unknown")
    items = suite_items(run)
    top = st.columns([0.8, 0.2], vertical_alignment="center")
    trained = sum(i["train_status"] == "done" for i in items)
    top[0].markdown(f"**Suite `{run.id}`**: {trained} of {len(items)} models ready")
    with top[1]:
        status_badge(state)
    step, total = status.get("step") or 0, status.get("total_steps")
    if state == "queued":
        st.progress(0.0, text="Waiting for a free worker slot (one job trains at a time).")
    elif total:
        text = f"{step} / {total} steps" + (f" · now: {status['current']}" if status.get("current") else "")
        st.progress(min(step / total, 1.0), text=text)
    if state == "failed":
        st.error(f"The suite failed: {status.get('error', 'no error message was recorded')}")
    elif state == "cancelled":
        st.warning("The suite was cancelled; the runs it finished are kept and reported below.")
    table = pd.DataFrame([{"method": i["method"], "seed": i["seed"], "training": i["train_status"]
                           + (" (reused)" if i.get("reused") else ""), "attack": i.get("attack_status"),
                           "node": i.get("node") or "", "state": state_text(i),
                           "train run": i.get("train_run") or "", "error": i.get("error") or ""} for i in items])
    st.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * len(items), 330))
    if live:
        cancel_button(get_store(), run.id, "Cancel suite", f"cancel-suite-{run.id}",
                      "the current part stops at its next step; everything finished is kept.")
