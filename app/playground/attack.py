"""The live attack: choose a recipe and budget (and, for a sentence pair, the segment to edit), attack the
sentence on each model in the background, follow the search, then show what changed and how the saliency
moved."""
from __future__ import annotations

import streamlit as st

from app.formatting import fmt_duration
from app.live import poll
from app.plain_text import markdown_text
from app.playground import text_views
from app.playground.attack_session import LiveAttack
from app.playground.model_choice import run_heading
from app.playground.models import explanation, loaded_model, textattack_status
from app.playground.prediction import probs_figure
from app.playground.sentence import put_in_editor
from app.playground.text_views import one_line, segment_title
from engine.attacks.attacker import DEFAULT_MAX_FRACTION, DEFAULT_MAX_QUERIES, Budget
from engine.attacks.recipes import RECIPES, AttackError, recipe_table
from engine.attacks.segments import DEFAULT_SEGMENT, SEGMENT_CHOICES
from engine.explain.attribution import EXPLAINERS, AttributionError, FittedText
from engine.models.architecture import ModelError
from engine.store.runs import RunError
from engine.user_text import shown

STATUS_TEXT = {"succeeded": ("The prediction flipped.", "green"), "failed": ("The model held.", "blue"),
               "skipped": ("Skipped.", "gray"), "cancelled": ("Cancelled.", "orange")}


def recipe_picker(key: str, only_available: bool = False) -> tuple[str, dict]:
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


def budget_inputs(key: str) -> tuple[int, float]:
    left, right = st.columns(2)
    queries = left.number_input("Max queries per model", min_value=0, max_value=100_000, value=DEFAULT_MAX_QUERIES,
                                step=100, key=f"{key}-queries",
                                help="How many times the attack may ask the model; it stops when they run out.")
    fraction = right.slider("Max share of words changed", 0.0, 1.0, DEFAULT_MAX_FRACTION, 0.05, key=f"{key}-fraction",
                            help="The attack may change at most this share of the words (at least one word).")
    return int(queries), float(fraction)


def segment_picker(names: tuple[str, str] | None, key: str) -> str | None:
    """For a sentence-pair model, which segment an attack edits (`first` or `second`; the second by default);
    None for a single-sentence model."""
    if names is None:
        return None
    shown = [markdown_text(segment_title(name)) for name in names]     # a CSV's column names: text, not Markdown
    by_title = dict(zip(shown, SEGMENT_CHOICES))
    picked = st.segmented_control("Segment to attack", shown, key=key,
                                  default=shown[SEGMENT_CHOICES.index(DEFAULT_SEGMENT)],
                                  help=f"The attack edits only this segment; the {shown[0]} or {shown[1]} it leaves "
                                       "stays exactly as it is.")
    return by_title.get(picked or "", DEFAULT_SEGMENT)


def attack_panel(run_ids: list[str], fitted: FittedText | None, gold: dict | None) -> None:
    """Choose a recipe and budget (and a pair's segment), attack the sentence live on each model, show what
    changed."""
    recipe, row = recipe_picker("pg-recipe")
    queries, fraction = budget_inputs("pg-budget")
    try:
        segment = segment_picker(loaded_model(run_ids[0]).segment_names, "pg-segment")
    except (ModelError, RunError) as err:
        st.error(markdown_text(str(err)), icon=":material/error:")
        return
    live: LiveAttack | None = st.session_state.get("pg-live")
    busy = live is not None and live.running
    if gold:
        st.caption(f"Attacking the {gold['source']} label **{markdown_text(gold['name'])}**; a model that already "
                   "gets it wrong is skipped. A typed sentence is attacked away from each model's own prediction.")
    clicked = st.button("Attack", type="primary", icon=":material/bolt:", key="pg-attack",
                        disabled=busy or not row["available"] or fitted is None,
                        help="Runs in the background; you can cancel it." if fitted else "Enter a sentence first.")
    if clicked:
        budget = Budget(queries, fraction)
        try:
            budget.check()
            models = {run_id: loaded_model(run_id) for run_id in run_ids}
        except (AttackError, ModelError, RunError) as err:
            st.error(markdown_text(str(err)), icon=":material/error:")
        else:
            st.session_state["pg-live"] = LiveAttack(models, fitted.input, recipe, budget,
                                                     gold["label"] if gold else None, segment).start()
    poll(lambda: st.session_state.get("pg-live"), lambda attack: attack.running, _attack_view, every=0.4)


def _attack_view(live: LiveAttack, going: bool) -> None:
    """The search as it goes (refreshed several times a second), then what it found."""
    if going:
        _live_view(live)
    else:
        attack_results(live)


def _live_view(live: LiveAttack) -> None:
    """Query counter, best perturbation so far and its probabilities, refreshed while the search runs."""
    snap = live.snapshot()
    ready, error = textattack_status()
    if error:
        st.error(f"TextAttack could not be imported: {markdown_text(error)}")
    elif not ready:
        st.caption(":material/hourglass_top: Loading TextAttack (only the first attack after start-up waits "
                   "for this)…")
    columns = st.columns(len(snap.runs), gap="large")
    for column, (run_id, state) in zip(columns, snap.runs.items()):
        with column:
            if len(snap.runs) > 1:
                st.markdown(f"**{run_heading(run_id)}**")
            progress = state.progress
            if state.outcome:
                st.success(f"{STATUS_TEXT[state.outcome.status][0]} {state.outcome.queries} queries.")
                continue
            if state.error:
                st.error(markdown_text(state.error))
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
                segments = live.models[run_id].segment_names
                if segments is None:
                    text_views.diff_view(live.text, progress.best_text, "Original", "Best perturbation so far")
                else:
                    attacked = SEGMENT_CHOICES.index(live.segment or DEFAULT_SEGMENT)
                    text_views.pair_diff_view(segments, attacked, live.text[1 - attacked], live.text[attacked],
                                              progress.best_text, "best perturbation so far")
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
    segments = next(iter(live.models.values())).segment_names
    where = "" if segments is None else \
        f" · editing the {segments[SEGMENT_CHOICES.index(live.segment or DEFAULT_SEGMENT)]} only"
    st.markdown(f"**Attack with {RECIPES[live.recipe].title}** on: _{markdown_text(shown(one_line(live.text), 120))}_"
                f"{markdown_text(where)} · {fmt_duration(snap.elapsed)}")
    columns = st.columns(len(snap.runs), gap="large")
    for column, (run_id, state) in zip(columns, snap.runs.items()):
        with column:
            if len(snap.runs) > 1:
                st.markdown(f"**{run_heading(run_id)}**")
            if state.error:
                st.error(markdown_text(state.error), icon=":material/error:")
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
        if outcome.segment_names is None:
            text_views.diff_view(outcome.original_text, outcome.perturbed_text)
        else:
            text_views.pair_diff_view(outcome.segment_names, outcome.attacked_segment, outcome.fixed_text,
                                      outcome.original_text, outcome.perturbed_text)
        st.plotly_chart(probs_figure(names, {"before": outcome.original_probs, "after": outcome.perturbed_probs}),
                        key=f"pg-ba-{run_id}", config={"displayModeBar": False})
    with right:
        how = st.session_state.get("pg-saliency-how", "ig")
        try:
            first = explanation(run_id, outcome.original_input, how, outcome.label)
            second = explanation(run_id, outcome.perturbed_input, how, outcome.label)
        except AttributionError as err:
            st.warning(markdown_text(str(err)))
        else:
            text_views.heatmap(first, label=f"{EXPLAINERS[how]} before, for {names[outcome.label]}")
            text_views.heatmap(second, label=f"{EXPLAINERS[how]} after, for {names[outcome.label]}")
            st.caption("Both maps explain the same class, so colours compare directly: see which words lost "
                       "their pull after the edit.")
        st.button("Edit the adversarial text", key=f"pg-use-{run_id}", icon=":material/edit_note:",
                  on_click=put_in_editor, args=(outcome.perturbed_input,),
                  help="Put it in the editor above to keep changing it by hand.")
