"""The Playground's panels: model choice, sentence input, prediction with saliency, live attack, edit
history and batch attacks. Each function draws one part; the page only arranges them.

Per-tab state lives in `st.session_state` under `pg-*` keys; batch results live in the run store.
"""
from __future__ import annotations

import io
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.playground import text_views
from app.playground.attack_session import LiveAttack
from app.components import job_panel, run_picker, status_badge
from app.formatting import fmt_duration, run_title
from app.playground.models import explanation, loaded_model, probabilities, textattack_status
from app.state import get_store
from engine import jobs
from engine.attacks import (DEFAULT_MAX_FRACTION, DEFAULT_MAX_QUERIES, RECIPES, AttackError, Budget, batch_config,
                            find_cached, read_results, recipe_table)
from engine.attribution import METHODS, AttributionError, FittedText, fit_text
from engine.data import REGISTRY, DataError, load_dataset
from engine.paths import runs_home
from engine.models import ModelError
from engine.runs import ACTIVE, RunError, RunStore

EXAMPLE_SETS = {"SST-2 dev": "sst2-dev", "AdvGLUE-SST2": "advglue-sst2"}
TYPE = "Type or paste"
STATUS_TEXT = {"succeeded": ("The prediction flipped.", "green"), "failed": ("The model held.", "blue"),
               "skipped": ("Skipped.", "gray"), "cancelled": ("Cancelled.", "orange")}


def _trained(row: dict) -> bool:
    return row.get("kind", "train") == "train" and row.get("status") == "done"


@st.cache_data(ttl=10, show_spinner=False)
def _index_rows(home: str) -> dict[str, dict]:
    return {r["id"]: r for r in get_store().list()}


def _row(run_id: str) -> dict:
    """A run's index row (cached briefly: the live view redraws several times a second)."""
    return _index_rows(str(runs_home())).get(run_id, {"id": run_id})


def _short(run_id: str) -> str:
    """method · dataset · model · seed · id tail: a column header that tells two runs apart."""
    return f"{run_title(_row(run_id))} · {run_id.rsplit('-', 1)[-1]}"


def _tag(run_id: str) -> str:
    """method and id tail only: for legends and table columns."""
    return f"{_row(run_id).get('method') or 'run'} · {run_id.rsplit('-', 1)[-1]}"


# ---------------------------------------------------------------- models

def pick_models() -> list[str]:
    """One run, or two to compare; [] when no trained run exists yet."""
    rows = [r for r in get_store().list() if _trained(r)]
    if not rows:
        return []
    vanilla = [r for r in rows if r.get("method") == "vanilla"] or rows
    default = max(vanilla, key=lambda r: r.get("dev_accuracy") or 0.0)["id"]   # the best baseline first
    left, right = st.columns(2)
    with left:
        first = run_picker("Model", key="pg-run-a", filter_fn=_trained, default=default,
                           help="A finished training run. Its model answers every question on this page.")
    second = None
    with right:
        if any(r["id"] != first for r in rows):
            second = run_picker("Compare with (optional)", key="pg-run-b",
                                filter_fn=lambda r: _trained(r) and r["id"] != first,
                                help="A second run, e.g. ROSE beside vanilla: the same sentence, saliency and "
                                     "attack on both, side by side.")
        else:
            st.caption("Train a second model (for example ROSE) to compare two side by side: the same sentence, "
                       "saliency and attack on both.")
    return [r for r in (first, second) if r]


def offer_default_training(store: RunStore) -> None:
    """No trained model yet: one button trains the default (vanilla MiniLM on 2,000 SST-2 sentences)."""
    active = [r for r in store.list(kind="train") if r["status"] in ACTIVE]
    if active:
        st.info("A model is being trained. The playground opens as soon as it is done.")
        job_panel(active[0]["id"])
        return
    st.info("There is no trained model yet. Train the default one: vanilla fine-tuning of MiniLM on 2,000 SST-2 "
            "sentences (about two minutes on a CPU).", icon=":material/info:")
    if st.button("Train the default model", type="primary", icon=":material/model_training:", key="pg-train"):
        from engine.train import TrainConfig, environment

        try:
            jobs.submit(store, {**TrainConfig().to_dict(), "environment": environment()})
        except (RunError, OSError) as err:
            st.error(f"Could not start training: {err}")
            return
        st.rerun()   # the next run finds the queued job and shows its panel


# ---------------------------------------------------------------- the sentence

@st.cache_data(show_spinner=False)
def _examples(name: str) -> tuple[list[str], list[int], list[str]]:
    data = load_dataset(name)
    return data.texts, data.labels, data.label_names


def _use_example(name: str) -> None:
    """Selecting an example copies it into the editor and remembers its label."""
    index = st.session_state.get(f"pg-example-{name}")
    if index is None:
        return
    texts, labels, names = _examples(name)
    st.session_state["pg-text"] = texts[index]
    st.session_state["pg-gold"] = {"text": texts[index], "label": labels[index], "name": names[labels[index]],
                                   "source": next(k for k, v in EXAMPLE_SETS.items() if v == name)}


def sentence_input(run_id: str) -> tuple[FittedText | None, dict | None]:
    """The sentence to study, fitted to the model (control characters dropped, cut to its length), and
    its dataset label when it came from a dataset and is unedited."""
    source = st.segmented_control("Sentence", [TYPE, *EXAMPLE_SETS], default=TYPE, key="pg-source",
                                  help="Type your own sentence, or pick a real one (with its label) from SST-2 dev "
                                       "or the adversarial AdvGLUE-SST2 set.")
    if source in EXAMPLE_SETS:
        try:
            texts, labels, names = _examples(EXAMPLE_SETS[source])
        except DataError as err:
            st.error(str(err))
        else:
            st.selectbox(f"Example from {source}", range(len(texts)), index=None,
                         key=f"pg-example-{EXAMPLE_SETS[source]}", on_change=_use_example,
                         args=(EXAMPLE_SETS[source],), placeholder=f"Choose one of {len(texts)} sentences",
                         format_func=lambda i: f"#{i} · {names[labels[i]]} · {texts[i][:100]}")
    st.session_state.setdefault("pg-text", "it 's a charming and often affecting journey .")
    raw = st.text_area("Text", key="pg-text", height=90, max_chars=20_000,
                       help="Edit freely and press Ctrl+Enter: every version you try is kept in Edit history.")
    if not raw.strip():
        st.info("Type a sentence, or pick one from a dataset, to see what the model predicts and why.",
                icon=":material/edit:")
        return None, None
    try:
        model = loaded_model(run_id)
    except (ModelError, RunError) as err:
        st.error(str(err))
        return None, None
    fitted = fit_text(model.tokenizer, raw, model.max_length)
    for notice in fitted.notices():
        st.warning(notice, icon=":material/content_cut:")
    if not fitted.text.strip():
        st.info("Nothing readable is left once control characters are removed.")
        return None, None
    letters = [c for c in fitted.text if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) > len(letters) / 2:
        st.caption(":material/translate: The model was fine-tuned on English movie reviews; on other languages "
                   "its prediction says little (word pieces it never learned become [UNK]).")
    gold = st.session_state.get("pg-gold")
    if not gold or gold.get("text") != raw:
        gold = None
    return fitted, gold


# ---------------------------------------------------------------- prediction and saliency

def probs_figure(label_names: list[str], bars: dict[str, list[float]], height: int = 140) -> go.Figure:
    """Class probabilities as horizontal bars; several named series (before/after) side by side."""
    fig = go.Figure()
    colors = ["#2F6FB3", "#E8781A", "#7A5AC0"]
    for i, (name, probs) in enumerate(bars.items()):
        fig.add_trace(go.Bar(y=label_names, x=probs, orientation="h", name=name, marker_color=colors[i % 3],
                             text=[f"{p:.1%}" for p in probs], textposition="auto",
                             hovertemplate="%{y}: %{x:.2%}<extra>" + name + "</extra>"))
    fig.update_layout(height=height + 30 * (len(bars) - 1), margin=dict(l=0, r=10, t=4, b=4), barmode="group",
                      xaxis=dict(range=[0, 1], tickformat=".0%"), showlegend=len(bars) > 1,
                      legend=dict(orientation="h", y=-0.25), bargap=0.25)
    fig.update_yaxes(autorange="reversed")
    return fig


def saliency_choice() -> str:
    names = {v: k for k, v in METHODS.items()}
    chosen = st.segmented_control("Saliency", list(names), default=METHODS["ig"], key="pg-saliency",
                                  help="Integrated gradients (32 steps, from an all-[PAD] baseline) and gradient × "
                                       "input attribute the predicted class's probability to each word; attention "
                                       "shows where [CLS] looks in the last layer.")
    how = names.get(chosen or METHODS["ig"], "ig")
    st.session_state["pg-saliency-how"] = how
    return how


def predictions(run_ids: list[str], text: str, how: str, gold: dict | None) -> None:
    """Prediction, probabilities and saliency for each model, side by side; logs the edit history."""
    columns = st.columns(len(run_ids), gap="large")
    entry: dict[str, Any] = {"text": text, "probs": {}}
    for column, run_id in zip(columns, run_ids):
        with column:
            if len(run_ids) > 1:
                st.markdown(f"**{_short(run_id)}**")
            try:
                model = loaded_model(run_id)
                probs = probabilities(run_id, text)
            except (ModelError, RunError) as err:
                st.error(str(err))
                continue
            entry["probs"][run_id] = probs
            # one model: probabilities left, saliency right; two models: each column stacked
            left, right = st.columns([2, 3], gap="medium") if len(run_ids) == 1 else (st.container(), st.container())
            with left:
                _prediction(run_id, model.label_names, probs, gold)
            with right:
                try:
                    attribution = explanation(run_id, text, how)
                except AttributionError as err:
                    st.warning(str(err))
                    continue
                text_views.heatmap(attribution, label=f"{METHODS[how]} for {attribution.target_name} "
                                                      f"(hover for details)")
                _saliency_caption(attribution)
    _log_history(entry)


def _prediction(run_id: str, names: list[str], probs: list[float], gold: dict | None) -> None:
    top = max(range(len(probs)), key=probs.__getitem__)
    verdict = ""
    if gold:
        verdict = (" · :green[matches the label]" if gold["label"] == top else
                   f" · :red[wrong: the {gold['source']} label is {gold['name']}]")
    st.markdown(f"Prediction: **{names[top]}** ({probs[top]:.1%}){verdict}")
    st.plotly_chart(probs_figure(names, {"p": probs}, height=110), key=f"pg-probs-{run_id}",
                    config={"displayModeBar": False})


def _saliency_caption(attribution) -> None:
    if attribution.how == "attention":
        st.caption("Darker: more of [CLS]'s last-layer attention. Hover a word for its share.")
        return
    note = (f"Orange words push toward **{attribution.target_name}**, blue words away from it. Hover a word for "
            f"its score, the box for what the scores mean.")
    if attribution.completeness:
        c = attribution.completeness
        error = f"{c['error']:+.4f}" if abs(c["error"]) >= 1e-3 else f"{c['error']:+.1e}"
        note += f" Completeness error {error} ({c['relative_error']:.2%} of the change in output)."
    st.caption(note)


def _change(before: str, after: str) -> str:
    """The edit between two versions, or `new sentence` when most words differ."""
    import difflib

    from engine.attacks import diff_summary

    if difflib.SequenceMatcher(None, before.split(), after.split()).ratio() < 0.5:
        return "(new sentence)"
    return diff_summary(before, after) or "(same words)"


def _log_history(entry: dict) -> None:
    """Keep each new version of the sentence; the same text seen by another model joins its version."""
    history = st.session_state.setdefault("pg-history", [])
    if not entry["probs"]:
        return
    if history and history[-1]["text"] == entry["text"]:
        history[-1]["probs"].update(entry["probs"])
        return
    history.append(entry)
    del history[:-200]


def history_panel(run_ids: list[str]) -> None:
    """Every version of the sentence predicted in this tab, with its probabilities (counterfactuals)."""
    history = [h for h in st.session_state.get("pg-history", []) if any(r in h["probs"] for r in run_ids)]
    st.caption("Edit the sentence above and press Ctrl+Enter: each version is kept here with what each model "
               "made of it, so you can see which word changes move the prediction.")
    if not history:
        st.info("Nothing predicted yet.")
        return
    names = loaded_model(run_ids[0]).label_names
    positive = len(names) - 1
    rows = []
    for i, h in enumerate(history):
        row = {"#": i + 1, "change from previous": _change(history[i - 1]["text"], h["text"]) if i else "(first)",
               "text": h["text"]}
        for run_id in run_ids:
            p = h["probs"].get(run_id)
            row[f"p({names[positive]}) · {_tag(run_id)}"] = None if p is None else round(p[positive], 4)
        rows.append(row)
    fig = go.Figure()
    for run_id in run_ids:
        points = [(i + 1, h["probs"][run_id][positive]) for i, h in enumerate(history) if run_id in h["probs"]]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                 name=_tag(run_id), hovertemplate="version %{x}: %{y:.1%}<extra></extra>"))
    fig.add_hline(y=0.5, line=dict(dash="dash", width=1, color="gray"), annotation_text="decision boundary",
                  annotation_position="bottom right")
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=36, b=0), yaxis=dict(range=[0, 1], tickformat=".0%",
                      title=f"p({names[positive]})"), xaxis=dict(title="version", dtick=1),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    st.plotly_chart(fig, key="pg-history-fig")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="pg-history-table")
    if st.button("Clear history", key="pg-history-clear", icon=":material/delete_sweep:"):
        st.session_state["pg-history"] = history[-1:]
        st.rerun()


# ---------------------------------------------------------------- live attack

def _recipe_picker(key: str, only_available: bool = False) -> tuple[str, dict]:
    table = {row["name"]: row for row in recipe_table()}
    names = [n for n in table if table[n]["available"] or not only_available]
    name = st.selectbox("Recipe", names, key=key,
                        format_func=lambda n: table[n]["title"] + ("" if table[n]["available"] else
                                                                   " — unavailable offline"),
                        help="Every TextAttack recipe RobustLab knows. Those whose resources (embeddings, "
                             "language models) are not on this machine are listed but cannot run.")
    row = table[name]
    st.caption(f"{row['summary']} Edits {row['edits']}.")
    if not row["available"]:
        st.warning(f"{row['title']} cannot run here: it {row['reason']}. It runs once those resources are installed.",
                   icon=":material/cloud_off:")
    return name, row


def _budget_inputs(key: str) -> tuple[int, float]:
    left, right = st.columns(2)
    queries = left.number_input("Max queries per model", min_value=0, max_value=100_000, value=DEFAULT_MAX_QUERIES,
                                step=100, key=f"{key}-queries",
                                help="How many times the attack may ask the model; it stops when they run out.")
    fraction = right.slider("Max share of words changed", 0.0, 1.0, DEFAULT_MAX_FRACTION, 0.05, key=f"{key}-fraction",
                            help="The attack may change at most this share of the words (at least one word).")
    return int(queries), float(fraction)


def attack_panel(run_ids: list[str], fitted: FittedText | None, gold: dict | None) -> None:
    """Choose a recipe and budget, attack the sentence live on each model, show what changed."""
    recipe, row = _recipe_picker("pg-recipe")
    queries, fraction = _budget_inputs("pg-budget")
    live: LiveAttack | None = st.session_state.get("pg-live")
    busy = live is not None and live.running
    if gold:
        st.caption(f"Attacking the {gold['source']} label **{gold['name']}**; a model that already gets it wrong "
                   "is skipped. A typed sentence is attacked away from each model's own prediction.")
    clicked = st.button("Attack", type="primary", icon=":material/bolt:", key="pg-attack",
                        disabled=busy or not row["available"] or fitted is None,
                        help="Runs in the background; you can cancel it." if fitted else "Enter a sentence first.")
    if clicked:
        budget = Budget(queries, fraction)
        try:
            budget.check()
            models = {run_id: loaded_model(run_id) for run_id in run_ids}
        except (AttackError, ModelError, RunError) as err:
            st.error(str(err), icon=":material/error:")
        else:
            live = LiveAttack(models, fitted.text, recipe, budget, gold["label"] if gold else None).start()
            st.session_state["pg-live"] = live
            busy = True
    if live is None:
        return
    if busy:
        _live_view()
    else:
        attack_results(live)


@st.fragment(run_every=0.4)
def _live_view() -> None:
    """Query counter, best perturbation so far and its probabilities, refreshed while the search runs."""
    live: LiveAttack | None = st.session_state.get("pg-live")
    if live is None:
        return
    snap = live.snapshot()
    if not snap.running:
        st.rerun()
    ready, error = textattack_status()
    if error:
        st.error(f"TextAttack could not be imported: {error}")
    elif not ready:
        st.caption(":material/hourglass_top: Loading TextAttack (only the first attack after start-up waits "
                   "for this)…")
    columns = st.columns(len(snap.runs), gap="large")
    for column, (run_id, state) in zip(columns, snap.runs.items()):
        with column:
            if len(snap.runs) > 1:
                st.markdown(f"**{_short(run_id)}**")
            progress = state.progress
            if state.outcome:
                st.success(f"{STATUS_TEXT[state.outcome.status][0]} {state.outcome.queries} queries.")
                continue
            if state.error:
                st.error(state.error)
                continue
            if state.started is None:
                st.caption("Waiting for the first model to finish…")
                continue
            m1, m2 = st.columns(2)
            m1.metric("Queries", progress.queries if progress else 0,
                      help=f"of at most {live.budget.max_queries}")
            m2.metric("Elapsed", f"{progress.elapsed:.1f} s" if progress else "…")
            if progress and progress.best_text:
                names = live.models[run_id].label_names
                text_views.diff_view(live.text, progress.best_text, "Original", "Best perturbation so far")
                st.plotly_chart(probs_figure(names, {"original": progress.original_probs,
                                                     "best so far": progress.best_probs}),
                                key=f"pg-live-probs-{run_id}", config={"displayModeBar": False})
            else:
                st.caption("Ranking words by importance…")
    st.button("Cancel", icon=":material/stop_circle:", key="pg-cancel", on_click=live.cancel,
              disabled=snap.cancelled)


def attack_results(live: LiveAttack) -> None:
    """Per model: what happened, original against adversarial text, probabilities and saliency before/after."""
    snap = live.snapshot()
    st.markdown(f"**Attack with {RECIPES[live.recipe].title}** on: _{live.text[:120]}_"
                + ("…" if len(live.text) > 120 else "") + f" · {fmt_duration(snap.elapsed)}")
    columns = st.columns(len(snap.runs), gap="large")
    for column, (run_id, state) in zip(columns, snap.runs.items()):
        with column:
            if len(snap.runs) > 1:
                st.markdown(f"**{_short(run_id)}**")
            if state.error:
                st.error(state.error, icon=":material/error:")
                continue
            outcome = state.outcome
            if outcome is None:
                st.warning("Not attacked: the attack was cancelled before this model's turn.")
                continue
            _outcome_view(run_id, outcome, live.models[run_id].label_names, wide=len(snap.runs) == 1)


def _outcome_view(run_id: str, outcome, names: list[str], wide: bool) -> None:
    """One model's attack result: the edits, probabilities before and after, saliency before and after."""
    title, color = STATUS_TEXT[outcome.status]
    st.markdown(f":{color}-badge[{outcome.status}] {title}  \n"
                f"{outcome.queries} queries · {outcome.words_changed} of {outcome.words_total} words changed "
                f"({outcome.fraction_changed:.0%}) · {outcome.seconds:.2f} s")
    if outcome.message:
        st.caption(outcome.message[:1].upper() + outcome.message[1:] + ".")
    if outcome.status == "skipped":
        return
    left, right = st.columns(2, gap="large") if wide else (st.container(), st.container())
    with left:
        text_views.diff_view(outcome.original_text, outcome.perturbed_text)
        st.plotly_chart(probs_figure(names, {"before": outcome.original_probs, "after": outcome.perturbed_probs}),
                        key=f"pg-ba-{run_id}", config={"displayModeBar": False})
    with right:
        how = st.session_state.get("pg-saliency-how", "ig")
        try:
            first = explanation(run_id, outcome.original_text, how, outcome.label)
            second = explanation(run_id, outcome.perturbed_text, how, outcome.label)
        except AttributionError as err:
            st.warning(str(err))
        else:
            text_views.heatmap(first, label=f"{METHODS[how]} before, for {names[outcome.label]}")
            text_views.heatmap(second, label=f"{METHODS[how]} after, for {names[outcome.label]}")
            st.caption("Both maps explain the same class, so colours compare directly: see which words lost "
                       "their pull after the edit.")
        st.button("Edit the adversarial text", key=f"pg-use-{run_id}", icon=":material/edit_note:",
                  on_click=_load_text, args=(outcome.perturbed_text,),
                  help="Put it in the editor above to keep changing it by hand.")


def _load_text(text: str) -> None:
    st.session_state["pg-text"] = text


# ---------------------------------------------------------------- batch attacks

def batch_panel(store: RunStore, run_id: str) -> None:
    """Start a recipe over N examples of a dataset as a background job; show any attack run's results."""
    st.caption(f"Attacks the first N sentences of a dataset against **{_short(run_id)}** in a background worker. "
               "It keeps running if you leave the page; an identical attack that already ran is reused.")
    with st.form("pg-batch-form", border=True):
        recipe, _ = _recipe_picker("pg-batch-recipe", only_available=True)
        left, right = st.columns(2)
        dataset = left.selectbox("Dataset", list(EXAMPLE_SETS.values()), key="pg-batch-dataset",
                                 format_func=lambda n: REGISTRY[n].description)
        n = right.number_input("Examples (N)", min_value=1, max_value=872, value=50, step=10, key="pg-batch-n")
        queries, fraction = _budget_inputs("pg-batch-budget")
        submitted = st.form_submit_button("Start batch attack", icon=":material/play_arrow:", type="primary")
    if submitted:
        try:
            config = batch_config(run_id, recipe, dataset, int(n), Budget(queries, fraction))
            cached = find_cached(store, config)
            if cached is not None:
                st.info("This exact attack already ran on this model; showing its results.")
                st.session_state["pg-batch-run"] = cached.id
            else:
                st.session_state["pg-batch-run"] = jobs.submit(store, config, kind="attack", parent=run_id).id
        except (AttackError, DataError, RunError) as err:
            st.error(str(err), icon=":material/error:")
    rows = store.list(kind="attack", parent=run_id)
    if not rows:
        st.info("No batch attacks on this model yet.")
        return
    ids = [r["id"] for r in rows]
    if st.session_state.get("pg-batch-run") in ids:
        st.session_state["pg-batch-pick"] = st.session_state.pop("pg-batch-run")
    labels = {r["id"]: _attack_label(store, r) for r in rows}
    chosen = st.selectbox("Batch attacks on this model", ids, key="pg-batch-pick", format_func=labels.__getitem__)
    run = store.get(chosen)
    if run.status.get("status") in ACTIVE:
        job_panel(run.id)
    batch_results(run)


def _attack_label(store: RunStore, row: dict) -> str:
    config = store.get(row["id"]).config
    return (f"{config.get('recipe')} · {config.get('dataset')} · N={config.get('n')} · "
            f"{row['status']} · {row['id'].rsplit('-', 1)[-1]}")


def batch_results(run) -> None:
    """Summary numbers, a table of every example with its diff, and CSV export."""
    records = read_results(run)
    status = run.status.get("status")
    if not records:
        if status not in ACTIVE:
            status_badge(status)
            st.info(run.status.get("error") or "This attack recorded no examples.")
        return
    from engine.attacks import AttackOutcome, summarize

    summary = run.results if status == "done" and run.results else _summary_of(records, summarize, AttackOutcome)
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
    shown = [c for c in ("index", "status", "label", "diff", "original", "perturbed", "queries", "fraction_changed")
             if c in table]
    event = st.dataframe(table[shown], hide_index=True, key=f"pg-batch-table-{run.id}", on_select="rerun",
                         selection_mode="single-row",
                         column_config={"fraction_changed": st.column_config.NumberColumn("words changed",
                                                                                           format="percent"),
                                        "diff": st.column_config.TextColumn("edits", width="medium"),
                                        "original": st.column_config.TextColumn(width="large"),
                                        "perturbed": st.column_config.TextColumn(width="large")})
    picked = event.selection.rows if event and event.selection else []
    if picked:
        record = records[picked[0]]
        text_views.diff_view(record["original"], record["perturbed"])
    else:
        st.caption("Select a row to see its edits highlighted.")
    csv_path = run.dir / "results.csv"
    data = csv_path.read_bytes() if csv_path.exists() else _csv_bytes(table)
    st.download_button("Download CSV", data, file_name=f"{run.id}.csv", mime="text/csv",
                       icon=":material/download:", key=f"pg-batch-csv-{run.id}")


def _summary_of(records: list[dict], summarize, outcome_cls) -> dict:
    """Summary numbers from the per-example records of a run still going (or cancelled)."""
    outcomes = [outcome_cls(recipe="", original_text=r["original"], perturbed_text=r["perturbed"], label=0,
                            label_source="gold", status=r["status"], original_probs=[], perturbed_probs=[],
                            queries=r["queries"], words_changed=r["words_changed"], words_total=r["words_total"],
                            seconds=r["seconds"]) for r in records]
    return summarize(outcomes)


def _csv_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")
