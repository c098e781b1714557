"""The ODE stability page's three parts: the test equation (no model), probes of trained runs, and two models
carrying a sentence and its perturbed copy through their layers. The numbers come from engine.probe.ode."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components import page_link, run_picker
from app.dataset_context import context_dataset, of_dataset
from app.formatting import learning_mark, run_title, short_dataset
from app.ode import figures as figs
from app.plain_text import markdown_text
from app.state import default_candidates, derived_marks_of, get_store, learning_of, load_model
from engine.data.advglue import run_advglue
from engine.data.registry import load_dataset
from engine.data.text_dataset import DataError
from engine.models.architecture import ModelError
from engine.models.inference import label_names_for, segment_names_for
from engine.paths import runs_home
from engine.probe import ode
from engine.store.runs import RunError

EULER_METHODS = ("vanilla", "ex-bert", "im-bert")


@st.cache_data(show_spinner=False, max_entries=64)
def cached_probe(home: str, run_id: str) -> dict:
    """The run's stored probe (computed and stored with the run the first time)."""
    return ode.probe_run(get_store(), run_id)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_divergence(home: str, run_id: str, clean: str, perturbed: str) -> dict:
    model, tokenizer, _ = load_model(run_id)
    return {**ode.divergence(model, tokenizer, clean, perturbed),
            "label_names": label_names_for(get_store().get(run_id).dir)}


@st.cache_data(show_spinner=False)
def advglue_sentences() -> list[str]:
    return load_dataset("advglue-sst2").texts


def prediction(probs, label_names: list[str]) -> str:
    """'positive (0.93)': the run's own class name (a CSV run's named labels too), 'class 2' only for a class the
    run never named."""
    k = int(probs.argmax())
    name = label_names[k] if k < len(label_names) else f"class {k}"
    return f"{markdown_text(name)} ({float(probs[k]):.3f})"


def short_label(row: dict) -> str:
    """method · dataset · seed · id tail, with what a derived run is (a recovery-grid cell, extra data, no
    learning) so that it never reads as a plain model."""
    marks = [*derived_marks_of(row), *filter(None, [learning_mark(learning_of(row))])]
    return " · ".join([str(row.get("method") or row.get("kind")), *marks, short_dataset(row.get("dataset")),
                       f"seed {row.get('seed')}", row["id"][-4:]])


def trained(row: dict) -> bool:
    return row.get("kind") == "train" and row.get("status") == "done"


def euler_steps() -> None:
    """x' = lambda x stepped by explicit and implicit Euler: the two growth factors, the trajectories and the
    stability regions, for the h and lambda chosen on sliders."""
    st.markdown("The simplest ODE, **x′ = λx**, has the exact solution e^(λt): it decays when Re λ < 0. Step it "
                "with step size h and see which scheme keeps that decay.")
    c = st.columns(4)
    h = c[0].slider("step size h", 0.05, 3.0, 0.5, 0.05, key="ode-h")
    lam_re = c[1].slider("Re λ", -6.0, 2.0, -5.0, 0.1, key="ode-re")
    lam_im = c[2].slider("Im λ", -6.0, 6.0, 0.0, 0.1, key="ode-im")
    steps = c[3].slider("steps", 1, 40, 12, 1, key="ode-steps")
    lam = complex(lam_re, lam_im)
    z = h * lam
    try:
        traj = ode.euler_trajectories(h, lam, steps)
    except ValueError as err:
        st.error(f"{markdown_text(str(err))}. Move h or λ a little.")
    else:
        m = st.columns(3)
        m[0].metric("h·λ", f"{z.real:.3g} {z.imag:+.3g}i")
        ef, imf = float(traj["explicit_factor"]), float(traj["implicit_factor"])
        m[1].metric("explicit factor |1 + hλ|", f"{ef:.3g}", "stable: shrinks" if ef <= 1 else "unstable: grows",
                    delta_color="green" if ef <= 1 else "red", delta_arrow="off")
        m[2].metric("implicit factor 1/|1 − hλ|", f"{imf:.3g}", "stable: shrinks" if imf <= 1 else "unstable: grows",
                    delta_color="green" if imf <= 1 else "red", delta_arrow="off")
        magnitude = st.toggle("plot |x| on a log scale instead of Re x", key="ode-mag")
        st.plotly_chart(figs.trajectory_figure(traj, magnitude), key="ode-traj")
        st.caption(figs.CAPTIONS["trajectories"])
        st.plotly_chart(figs.stability_figure(ode.stability_grid(), z), key="ode-regions")
        st.caption(figs.CAPTIONS["regions"])


def model_probes() -> None:
    """Perturbation growth, layer amplification and solver residuals of the chosen trained runs (each probed
    once and stored with the run), and a summary table."""
    st.markdown("Pick trained runs (vanilla, EX-BERT, IM-BERT, or any other). Each is probed once on 16 "
                "AdvGLUE-SST2 sentences (a sentence-pair run: 16 pairs of its own task, AdvGLUE's where there are "
                "some) and the result is stored with the run.")
    store = get_store()
    rows = {r["id"]: r for r in store.list() if trained(r)}
    asked = [r for r in st.query_params.get("runs", "").split(",") if r in rows]   # ?runs=ID,ID links here
    latest = {}   # the newest run of each Euler method, all of one dataset (SST-2 unless a link names another)
    mine = of_dataset(list(rows.values()), context_dataset(list(rows.values()), asked))
    for r in default_candidates(mine):   # never a recovery-grid cell, a run on extra data or one at chance
        if r.get("method") in EULER_METHODS:
            latest.setdefault(r["method"], r["id"])      # list() is newest first
    chosen = run_picker("Runs to compare", key="ode-runs", filter_fn=trained, multi=True,
                        default=asked or list(latest.values()))
    probes, results, residuals = {}, {}, {}
    for run_id in chosen:
        row = rows.get(run_id, {"id": run_id})
        label = short_label(row)
        try:
            with st.spinner(f"Probing {run_title(row)} (a few seconds, once)…"):
                probes[label] = cached_probe(str(runs_home()), run_id)
            run = store.get(run_id)
        except (ModelError, RunError, DataError, ValueError) as err:
            st.error(f"Cannot probe {markdown_text(str(label))}: {markdown_text(str(err))}")
            continue
        # the run's own task's AdvGLUE accuracy, read alike from an old results.json (`run_advglue`)
        results[label] = {**run.results, "advglue_accuracy": run_advglue(run.config, run.results)[1]}
        art = run.artifact("im_residual")
        if art:
            residuals[label] = art
    if chosen and probes:
        colors = figs.run_colors(probes)
        absolute = st.toggle("absolute growth ||Δx_l|| / ||δ|| instead of scale-free", key="ode-growth-absolute",
                             help="Absolute growth also falls when a model's hidden states are smaller overall, "
                                  "so two models can rank either way on it; the scale-free view divides that out.")
        st.plotly_chart(figs.growth_figure(probes, colors, scale_free=not absolute), key="ode-growth")
        st.caption(figs.CAPTIONS["growth_absolute" if absolute else "growth"])
        st.plotly_chart(figs.amplification_figure(probes, colors), key="ode-amp")
        st.caption(figs.CAPTIONS["amplification"])
        if residuals:
            st.plotly_chart(figs.residual_figure(residuals), key="ode-res")
            st.caption(figs.CAPTIONS["residual"])
        else:
            st.info("No IM-BERT run among the chosen ones, so there is no implicit solver residual to show.")
        st.dataframe(pd.DataFrame(figs.summary_rows(probes, results)), hide_index=True)
    elif not chosen:
        st.info("Choose one or more trained runs above. To train IM-BERT or its control, pick `im-bert` or "
                "`ex-bert` on the Train page.")
        page_link("train.py", "Go to Train", icon=":material/model_training:")


def live_sentences() -> None:
    """Two models, a sentence and a perturbed copy (typed, or an AdvGLUE-SST2 sentence with typos): how far
    the copy drifts layer by layer, and each model's predictions."""
    st.markdown("Type a sentence and a perturbed copy (or take an AdvGLUE-SST2 sentence and a typo'd copy) and "
                "compare how two models carry the difference through their layers.")
    store = get_store()
    trained_runs = [r for r in store.list() if trained(r)]
    runs = [r for r in trained_runs if segment_names_for(store.home / r["id"]) is None]
    if len(runs) < len(trained_runs):
        st.caption("Sentence-pair runs are not offered here: this panel carries one typed sentence through a model, "
                   "and a pair model reads two segments together. Part 2 probes their layers on pairs.")
    if not runs:
        st.info(f"No trained {'single-sentence ' if trained_runs else ''}runs yet: train one on the Train page first.")
    else:
        ids = [r["id"] for r in runs]
        names = {r["id"]: short_label(r) for r in runs}
        plain = [r["id"] for r in default_candidates(runs)]   # what may be preselected: no derived run
        picked = [r for r in st.session_state.get("ode-runs") or [] if r in ids]
        c = st.columns(2)
        first_default = next(iter([*picked[:1], *plain]), None)
        first = c[0].selectbox("Model A", ids, index=None if first_default is None else ids.index(first_default),
                               format_func=names.__getitem__, key="ode-live-a", placeholder="Choose a run")
        others = [r for r in [*picked[1:], *plain] if r != first]
        second_default = others[0] if others else first
        second = c[1].selectbox("Model B", ids, index=None if second_default is None else ids.index(second_default),
                                format_func=names.__getitem__, key="ode-live-b", placeholder="Choose a run")
        if first is None or second is None:
            st.info("Choose two models above (the same one twice is fine).")
            return
        source = st.radio("Sentences", ["Type my own", "AdvGLUE-SST2 sentence with typos"], horizontal=True,
                          key="ode-live-source")
        if source == "Type my own":
            clean = st.text_input("Sentence", "a gripping and genuinely funny film", key="ode-live-clean")
            perturbed = st.text_input("Perturbed copy", "a griping and genuinley funny film", key="ode-live-pert")
        else:
            try:
                pool = advglue_sentences()
            except DataError as err:
                st.error(markdown_text(str(err)))
                pool = []
            if pool:
                k = st.selectbox("AdvGLUE-SST2 sentence", range(len(pool)), key="ode-live-adv",
                                 format_func=lambda i: f"{i}: {figs.shorten(pool[i], 90)}")
                n_typos = st.slider("typos", 1, 5, 2, key="ode-live-typos")
                clean = pool[k]
                perturbed = st.text_input("Typo'd copy (edit freely)", ode.typo_copy(clean, n_typos, seed=k),
                                          key=f"ode-live-typo-{k}-{n_typos}")
            else:
                clean = perturbed = ""
        outcome = {}
        for run_id in dict.fromkeys([first, second]):
            try:
                outcome[names[run_id]] = cached_divergence(str(runs_home()), run_id, clean, perturbed)
            except (ModelError, RunError) as err:
                st.error(f"Cannot load the model of {markdown_text(str(names[run_id]))}: {markdown_text(str(err))}")
            except ValueError as err:
                st.error(markdown_text(str(err)))
                break
        if outcome:
            st.plotly_chart(figs.divergence_figure(outcome), key="ode-div")
            st.caption(figs.CAPTIONS["divergence"])
            cols = st.columns(len(outcome))
            for col, (label, r) in zip(cols, outcome.items()):
                with col:
                    st.markdown(f"**{label}**")
                    st.markdown(f"clean: **{prediction(r['probs_clean'], r['label_names'])}**  \n"
                                f"perturbed: **{prediction(r['probs_perturbed'], r['label_names'])}**")
                    st.caption("tokens: " + " ".join(r["tokens_clean"]) + "  \nperturbed: " +
                               " ".join(r["tokens_perturbed"]))
