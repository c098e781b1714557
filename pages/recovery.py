# title: Corruption & recovery
# icon: :material/healing:
# section: Robustness
# order: 30
"""Corruption & recovery ("Healing Powers of BERT"): break layers of a pretrained encoder, fine-tune, and
watch how much comes back. Layout only; the grid runs as a job and every number comes from engine.recovery."""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from app.recovery import figures as figs  # noqa: E402
from app.components import cancel_button, page_link, run_picker, status_badge  # noqa: E402
from app.formatting import fmt_duration  # noqa: E402
from app.state import get_store  # noqa: E402
from engine import jobs  # noqa: E402
from engine.commands.recover import int_list  # noqa: E402
from engine.corruption import KINDS, model_layer_count  # noqa: E402
from engine.models import known_models  # noqa: E402
from engine.recovery import (GRID_POSITIONS, GridSpec, GridView, baseline_warning, bottom_vs_top,  # noqa: E402
                             curves_by_label, grid_config, heatmap_table, layers_by_label, load_grid)
from engine.runs import ACTIVE, RunError  # noqa: E402

ABOUT = """
**The study.** Han, Zhang and Simion (*Healing Powers of BERT*, 2024) broke parts of a pretrained BERT and then
fine-tuned it on a task, to see how much task fine-tuning repairs. Their findings: corrupted models **do not fully
recover**, recovery gets **worse the more is corrupted**, and corrupting the **bottom layers hurts more** than
corrupting the top ones: the lower layers hold basic linguistic features that a short task fine-tuning cannot rebuild.

**What a grid does here.** For every seed it fine-tunes the clean model once (the baseline), then, with exactly the
same data, steps and seed, one model per corrupted group: the bottom *k* or top *k* encoder layers (layer 0 is next to
the embeddings), a custom set, or the embeddings alone. Corruption kinds: the paper's (LayerNorm weights to 1 and
biases to 0, linear weights re-drawn with Kaiming initialisation, biases to 0), Gaussian noise on the weight
matrices, or zeroing a share of their entries. Dev accuracy is measured every few steps while each model trains, which
gives the recovery curves; the finished models are then compared layer by layer with the clean one and scored on
AdvGLUE-SST2.

**Metrics.** *Recovery ratio* = corrupted final accuracy / clean final accuracy of the same seed. *AUC* = area under
the recovery curve divided by the steps it spans (the mean accuracy along the run: higher means it healed sooner).
*Steps to 95 %* = the first evaluated step at which accuracy reached 95 % of the clean final accuracy (– if never).
All are averaged over seeds, with the sample standard deviation as the spread.
"""
METRICS = {"recovery_ratio": "recovery ratio", "final_accuracy": "final accuracy", "auc": "AUC",
           "steps_to_95": "steps to 95 %", "advglue_sst2_accuracy": "AdvGLUE-SST2"}
POSITION_HELP = "; ".join(f"**{k}**: {v}" for k, v in GRID_POSITIONS.items())


@st.cache_data(show_spinner=False)
def layer_count(model: str) -> int:
    return model_layer_count(model)


def is_grid(row: dict) -> bool:
    return row.get("kind") == "recover"


def fmt(mean, std, digits: int = 3) -> str:
    if mean is None:
        return "–"
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None else "")


st.title("Corruption & recovery")
st.caption("Break layers of a pretrained encoder, fine-tune it, and measure how much of the damage fine-tuning "
           "heals: the *Healing Powers of BERT* study, run on your machine.")
store = get_store()
grids = store.list(kind="recover")
with st.expander("About this study and its metrics", icon=":material/school:", expanded=not grids):
    st.markdown(ABOUT)

# ---------------------------------------------------------------- a new grid
with st.expander("Set up a new grid", icon=":material/tune:", expanded=not grids):
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**What to corrupt**")
        model = st.radio("Model", list(known_models()), horizontal=True, key="rec-model",
                         help="\n\n".join(f"**{k}**: {v}" for k, v in known_models().items()))
        layers_total = layer_count(model)
        positions = st.multiselect("Positions", list(GRID_POSITIONS), default=["bottom", "top"], key="rec-positions",
                                   help=POSITION_HELP)
        levels_text = st.text_input(f"Numbers of layers k for bottom/top (the model has {layers_total})",
                                    "1, 2, 3", key="rec-levels", help="Comma-separated, e.g. 1, 2, 3.")
        custom_text = st.text_input(f"Custom layer set (0 to {layers_total - 1})", "", key="rec-custom",
                                    help="Used by the custom position. Comma-separated layer indices, e.g. 1, 3.")
        embeddings = st.checkbox("Also corrupt the embeddings in every cell", key="rec-emb")
        kind = st.radio("Corruption", list(KINDS), key="rec-kind", format_func=lambda k: f"{k}: {KINDS[k]}")
        scale, fraction = 0.5, 0.5
        if kind == "noise":
            scale = st.number_input("Noise scale (std as a multiple of each matrix's RMS)", value=0.5, step=0.1,
                                    format="%g", key="rec-scale")
        elif kind == "zero":
            fraction = st.number_input("Fraction of each weight matrix to set to 0", value=0.5, step=0.05,
                                       format="%g", key="rec-fraction")
    with right:
        st.markdown("**Fine-tuning budget** (the same for every run)")
        seeds_text = st.text_input("Seeds", "0", key="rec-seeds", help="Comma-separated; each seed repeats the grid.")
        a, b = st.columns(2)
        train_size = a.number_input("Training examples", 16, 67349, 1000, step=100, key="rec-train")
        epochs = b.number_input("Epochs", 1, 20, 1, key="rec-epochs")
        batch_size = a.number_input("Batch size", 1, 256, 16, key="rec-batch")
        lr = b.number_input("Learning rate", 1e-6, 1e-2, 1e-4, format="%g", step=1e-5, key="rec-lr")
        eval_every = a.number_input("Evaluate every (steps)", 1, 1000, 8, key="rec-eval",
                                    help="Each evaluation is one point of the recovery curves.")
        dev_size = b.number_input("Dev examples per evaluation", 16, 872, 400, step=50, key="rec-dev",
                                  help="A fixed sample of the SST-2 dev set, so frequent evaluations stay cheap.")
        st.caption("Dataset: SST-2 (dev accuracy on a fixed sample of its dev set; robustness on AdvGLUE-SST2). "
                   "The defaults are a budget MiniLM learns in: with 1,000 examples and one epoch, batch 16 and "
                   "learning rate 1e-4 reach about 0.76 dev accuracy, while batch 32 and 5e-5 (32 steps) stay at "
                   "chance, and a clean baseline at chance makes every recovery ratio meaningless.")

    config = None
    try:
        spec = GridSpec(dataset="sst2", model=model, positions=positions, levels=int_list(levels_text, "k"),
                        custom_layers=int_list(custom_text, "the custom layer set"), embeddings=embeddings,
                        corruption_kind=kind, scale=float(scale), fraction=float(fraction),
                        seeds=int_list(seeds_text, "Seeds"), train_size=int(train_size), epochs=int(epochs),
                        batch_size=int(batch_size), lr=float(lr), eval_every=int(eval_every), dev_size=int(dev_size))
        config = grid_config(spec)
    except ValueError as err:   # GridError, CorruptionError, ConfigError: each says what to change
        st.error(f"This grid cannot run: {err}", icon=":material/error:")
    else:
        cells = config["cells"]
        clean = sum(c["position"] == "clean" for c in cells)
        st.info(f"{len(cells)} fine-tuning runs: {clean} clean baseline{'s' if clean > 1 else ''} and "
                f"{len(cells) - clean} corrupted, run one after another in one background job.",
                icon=":material/list_alt:")
    if st.button("Queue grid", type="primary", disabled=config is None, icon=":material/play_arrow:",
                 key="rec-queue"):
        run = jobs.submit(store, config, kind="recover")
        st.session_state["rec-grid"] = run.id
        st.success(f"Queued grid {run.id}. Follow it below; it keeps going if you leave this page.")

# ---------------------------------------------------------------- results of one grid
st.subheader("Results")
grids = store.list(kind="recover")   # again: a grid queued just now is in it
grid_id = None
if grids:
    grid_id = run_picker("Recovery grid", key="rec-grid", filter_fn=is_grid, default=grids[0]["id"])
else:
    st.info("No recovery grids yet. Set one up above: on the tiny model a small grid takes a minute or two; "
            "on MiniLM (bottom and top, k = 1, 2, 3, 1,000 examples) plan on tens of minutes on a CPU.")


def overview(view: GridView, live: bool) -> None:
    """Status, progress, cancel, and the state of every planned run."""
    status = view.status
    state = status.get("status", "unknown")
    spec = view.spec
    detail = {"noise": f" (scale {spec.scale:g})",
              "zero": f" (fraction {spec.fraction:g})"}.get(spec.corruption_kind, "")
    with st.container(border=True):
        top = st.columns([0.8, 0.2], vertical_alignment="center")
        top[0].markdown(f"**{spec.corruption_kind}{detail} corruption · {spec.model} · {spec.dataset} · "
                        f"seeds {', '.join(map(str, spec.seeds))} · {len(view.cells)} runs**  \n`{view.grid.id}`")
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
            cancel_button(store, view.grid.id, "Cancel grid", f"rec-cancel-{view.grid.id}",
                          "the running model stops at its next step; finished runs and every curve recorded so far "
                          "are kept.")
        elif state == "cancelled":
            st.warning(f"This grid was cancelled after {done} of {len(view.cells)} runs had finished; they are kept, "
                       "with the curves of the run that was stopped.")
        elif state == "failed":
            st.error(f"This grid failed: {status.get('error') or 'see the log of its runs'}. Finished runs are kept.")
        table = pd.DataFrame([{"run": c["label"], "seed": c["seed"], "status": c["status"],
                               "step": f"{c['step'] or 0} / {c['total_steps'] or '?'}",
                               "last dev accuracy": c["dev_accuracy"], "run id": c["run_id"] or ""}
                              for c in view.cells])
        with st.expander(f"The {len(view.cells)} runs of this grid", expanded=live):
            st.dataframe(table, hide_index=True, column_config={
                "last dev accuracy": st.column_config.NumberColumn(format="%.3f")})


def results(view: GridView, live: bool) -> None:
    curves = curves_by_label(view)
    if not curves:
        st.info("No evaluations recorded yet: the first curve points appear a few steps into the first run.")
        return
    st.plotly_chart(figs.recovery_curves_figure(curves), key=f"rec-curves-{live}")
    st.caption(figs.CAPTIONS["curves"])
    summary = view.summary
    warning = baseline_warning(view)
    if warning:
        st.warning(warning, icon=":material/warning:")
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
        st.markdown("**Bottom or top: which hurt more?**")
        verdicts = bottom_vs_top(summary)
        if not verdicts:
            st.caption("Needs a bottom and a top cell with the same k.")
        for v in verdicts:
            emb = " (+ embeddings)" if v["embeddings"] else ""
            verdict = {"bottom": "bottom hurt more, as the paper reports",
                       "top": "top hurt more, unlike the paper", "neither": "no difference"}[v["worse"]]
            st.markdown(f"- k = {v['k']}{emb}: recovery ratio bottom **{v['bottom']:.3f}**, top **{v['top']:.3f}**: "
                        f"{verdict}.")
        seeds = min((v["seeds"] for v in verdicts), default=0)
        if verdicts and seeds < 3:
            st.caption(f"Averaged over {seeds} seed{'s' if seeds != 1 else ''}: differences of a point or two are "
                       "within seed-to-seed noise; add seeds before drawing a conclusion.")

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

    if any(e.get("advglue_sst2_accuracy_mean") is not None for e in summary):
        st.plotly_chart(figs.advglue_figure(summary), key=f"rec-adv-{live}")
        st.caption(figs.CAPTIONS["advglue"])

    st.markdown("**Metrics** (mean ± sample standard deviation over seeds; finished runs only)")
    table = pd.DataFrame([{
        "group": e["label"], "k": e["layers"], "seeds": e["seeds"],
        "final accuracy": fmt(e["final_accuracy_mean"], e["final_accuracy_std"]),
        "recovery ratio": fmt(e["recovery_ratio_mean"], e["recovery_ratio_std"]),
        "AUC": fmt(e["auc_mean"], e["auc_std"]),
        "steps to 95 %": f"{fmt(e['steps_to_95_mean'], e['steps_to_95_std'], 0)} "
                         f"({e['reached_95']}/{e['seeds']} reached)",
        "AdvGLUE-SST2": fmt(e["advglue_sst2_accuracy_mean"], e["advglue_sst2_accuracy_std"]),
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


def show(grid: str, live: bool) -> None:
    try:
        view = load_grid(store, grid)
    except (RunError, ValueError) as err:
        st.error(f"Cannot show this grid: {err}")
        return
    overview(view, live)
    results(view, live)


@st.fragment(run_every=2.5)
def live_grid(grid: str) -> None:
    """Re-reads the grid every 2.5 s while it runs; redraws the whole page once when it ends."""
    try:
        state = store.get(grid).status.get("status")
    except RunError as err:
        st.error(str(err))
        return
    if state not in ACTIVE:
        st.rerun()
    show(grid, live=True)


if grid_id:
    try:
        active = store.get(grid_id).status.get("status") in ACTIVE
    except RunError as err:
        st.error(str(err))
    else:
        if active:
            live_grid(grid_id)
        else:
            show(grid_id, live=False)
