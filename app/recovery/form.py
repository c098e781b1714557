"""The form that sets up a corruption-and-recovery grid: what to corrupt, the fine-tuning budget, what the
grid will run, and the button that queues it."""
from __future__ import annotations

import streamlit as st

from app.executor_choice import executor_choice
from app.plain_text import markdown_text
from app.state import get_store
from engine.execution import jobs
from engine.models.corruption import INITS, KINDS, REINIT_SOURCE, model_layer_count
from engine.models.loading import known_models
from engine.recovery.grid import BUDGETS, GRID_POSITIONS, GridSpec, budget_steps, grid_config
from engine.store.runs import RunError
from engine.training.config import default_lr_text
from engine.user_text import int_list

POSITION_HELP = "; ".join(f"**{k}**: {v}" for k, v in GRID_POSITIONS.items())


@st.cache_data(show_spinner=False)
def layer_count(model: str) -> int:
    return model_layer_count(model)


def new_grid_form() -> None:
    """Inputs for a grid in two columns, what it would run (or why it cannot), and Queue grid."""
    left, right = st.columns(2, gap="large")
    with left:
        corruption = _corruption_inputs()
    with right:
        budget = _budget_inputs(corruption["model"])
    config = None
    try:
        where = executor_choice("rec")
        spec = GridSpec(dataset="sst2", model=corruption["model"], positions=corruption["positions"],
                        levels=int_list(corruption["levels"], "k"),
                        custom_layers=int_list(corruption["custom"], "the custom layer set"),
                        embeddings=corruption["embeddings"], corruption_kind=corruption["kind"],
                        init=corruption["init"],
                        scale=float(corruption["scale"]), fraction=float(corruption["fraction"]),
                        seeds=int_list(budget["seeds"], "Seeds"), train_size=int(budget["train_size"]),
                        epochs=int(budget["epochs"]), batch_size=int(budget["batch_size"]), lr=float(budget["lr"]),
                        eval_every=int(budget["eval_every"]), dev_size=int(budget["dev_size"]))
        config = grid_config(spec, where)
    except ValueError as err:   # GridError, CorruptionError, ConfigError: each says what to change
        st.error(f"This grid cannot run: {markdown_text(str(err))}", icon=":material/error:")
    else:
        cells = config["cells"]
        clean = sum(c["position"] == "clean" for c in cells)
        st.info(f"{len(cells)} fine-tuning runs: {clean} clean baseline{'s' if clean > 1 else ''} and "
                f"{len(cells) - clean} corrupted, "
                + ("each a task on the Ray cluster." if where.kind == "ray" else
                   "run one after another in one background job."),
                icon=":material/list_alt:")
    if st.button("Queue grid", type="primary", disabled=config is None, icon=":material/play_arrow:",
                 key="rec-queue"):
        try:
            run = jobs.submit(get_store(), config, kind="recover")
        except RunError as err:   # the queue is full
            st.error(f"Not queued: {markdown_text(str(err))}", icon=":material/block:")
            return
        st.session_state["rec-grid"] = run.id
        st.success(f"Queued grid {run.id}. Follow it below; it keeps going if you leave this page.")


def _corruption_inputs() -> dict:
    """What to corrupt, as typed (the layer lists still text)."""
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
    kind = st.radio("Corruption", list(KINDS), key="rec-kind", format_func=lambda k: f"{k}: {KINDS[k]}",
                    help=f"**reinit**: {REINIT_SOURCE} **noise** and **zero** are RobustLab's own variants, not "
                         "the paper's.")
    scale, fraction, init = 0.5, 0.5, "kaiming-normal"
    if kind == "reinit":
        init = st.radio("Re-initialise weight matrices with", list(INITS), horizontal=True, key="rec-init",
                        format_func=lambda k: f"{k}: {INITS[k]}",
                        help="The summary the recipe follows says only \"Kaiming\". kaiming-normal draws with the "
                             "ReLU gain; linear-default draws as a freshly built nn.Linear does, at a sixth of "
                             "that variance.")
    elif kind == "noise":
        scale = st.number_input("Noise scale (std as a multiple of each matrix's RMS)", value=0.5, step=0.1,
                                format="%g", key="rec-scale")
    elif kind == "zero":
        fraction = st.number_input("Fraction of each weight matrix to set to 0", value=0.5, step=0.05,
                                   format="%g", key="rec-fraction")
    return {"model": model, "positions": positions, "levels": levels_text, "custom": custom_text,
            "embeddings": embeddings, "kind": kind, "init": init, "scale": scale, "fraction": fraction}


def _budget_inputs(model: str) -> dict:
    """The fine-tuning budget every run of the grid shares, as typed (the seeds still text); the learning
    rate starts at `model`'s default."""
    st.markdown("**Fine-tuning budget** (the same for every run)")
    seeds_text = st.text_input("Seeds", "0", key="rec-seeds", help="Comma-separated; each seed repeats the grid.")
    budget = GridSpec(model=model)
    preset = st.radio("Budget", list(BUDGETS), horizontal=True, key="rec-budget",
                      format_func=lambda name: f"{name} ({BUDGETS[name][0]:,} x {BUDGETS[name][1]})",
                      help="\"Does not fully recover\" is read at the end of the budget: a longer one tells "
                           "\"recovers slowly\" from \"does not recover\". Examples and epochs below start at the "
                           "budget chosen; change them for any other.")
    examples_default, epochs_default = BUDGETS[preset]
    suffix = "" if preset == "default" else f"-{preset.replace(' ', '-')}"   # a new budget starts its own inputs
    a, b = st.columns(2)
    train_size = a.number_input("Training examples", 16, 67349, examples_default, step=100,
                                key=f"rec-train{suffix}")
    epochs = b.number_input("Epochs", 1, 20, epochs_default, key=f"rec-epochs{suffix}")
    batch_size = a.number_input("Batch size", 1, 256, budget.batch_size, key="rec-batch")
    lr = b.number_input("Learning rate", 1e-6, 1e-2, budget.lr, format="%g", step=1e-5, key=f"rec-lr-{budget.lr:g}",
                        help=f"Defaults to the model's rate ({default_lr_text()}).")
    eval_every = a.number_input("Evaluate every (steps)", 1, 1000, budget.eval_every, key="rec-eval",
                                help="Each evaluation is one point of the recovery curves.")
    dev_size = b.number_input("Dev examples per evaluation", 16, 872, budget.dev_size, step=50, key="rec-dev",
                              help="A fixed sample of the SST-2 dev set, so frequent evaluations stay cheap.")
    steps = budget_steps(int(train_size), int(epochs), int(batch_size))
    st.caption(f"Every run of the grid takes {steps:,} optimiser steps ({int(train_size):,} examples / batch "
               f"{int(batch_size)}, x {int(epochs)} epoch(s)); the Healing verdict is read after them.")
    st.caption("Dataset: SST-2 (dev accuracy on a fixed sample of its dev set; robustness on AdvGLUE-SST2). "
               "The defaults are a budget MiniLM converges in: 2,000 examples for two epochs at its default "
               "learning rate bring the clean baseline to about 0.84 dev accuracy, while one epoch stays under "
               "0.80 at every rate tried. A clean baseline that has not converged confounds \"did not recover\" "
               "with \"did not finish learning\".")
    return {"seeds": seeds_text, "train_size": train_size, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "eval_every": eval_every, "dev_size": dev_size}
