"""The Home page's panels: the quick start, what this machine has (device, models, datasets, NLTK data for
attacks), and the recent runs."""
from __future__ import annotations

import streamlit as st

from app.checks import NEVER_OFFLINE, SETUP_COMMAND, data_folder_help, minilm_status, nltk_status
from app.components import page_link, status_badge
from app.formatting import fmt_acc, fmt_time, run_label
from app.nav import discover
from app.plain_text import markdown_text
from app.state import dataset_availability, default_candidates, derived_marks_of, device_text, get_store, learning_of
from engine.data.registry import REGISTRY
from engine.models.loading import known_models
from engine.paths import data_dir


def quick_start() -> None:
    """Three steps, each linking to its page: train, compare runs, look inside and attack."""
    steps = st.columns(3)
    with steps[0], st.container(border=True, height="stretch"):
        st.markdown("**1 · Train**  \nPick a dataset, a model and a method, press **Train**. The tiny model "
                    "trains in under a minute; MiniLM on 2,000 sentences in a few minutes on a CPU.")
        page_link("train.py", "Go to Train", icon=":material/model_training:")
    with steps[1], st.container(border=True, height="stretch"):
        st.markdown("**2 · Compare runs**  \nOpen **Runs** to see training curves, dev accuracy and the "
                    "AdvGLUE accuracy (adversarial sentences of its task) of each run, side by side.")
        page_link("runs.py", "Go to Runs", icon=":material/table_view:")
    with steps[2], st.container(border=True, height="stretch"):
        st.markdown("**3 · Look inside and attack**  \nThe **Methods** pages show what each method changes "
                    "while training; the **Robustness** pages attack and explain a trained model.")
        sections = discover()
        for section in ("Methods", "Robustness"):
            if sections.get(section):
                first = sections[section][0]
                page_link(first.path.name, f"{section}: {first.title}", icon=first.icon)


def device_and_models() -> None:
    """The device training uses, and whether each known model is installed."""
    device_col, model_col = st.columns(2)
    with device_col:
        st.markdown(f"**Device:** {device_text()}")
        st.caption("Training and inference run here. On a CPU, use the tiny model for quick tries and MiniLM "
                   "for real results.")
    with model_col:
        minilm = minilm_status()
        st.markdown("**Models**")
        for name, description in known_models().items():
            if name == "minilm" and not minilm.present:
                st.error(f"`minilm` is missing: {minilm.detail}", icon=":material/error:")
            else:
                st.markdown(f":green[:material/check_circle:] `{name}`: {description}")
        st.caption("A local model folder or a Hugging Face hub id can also be typed on the Train page.")


def datasets_and_attack_data() -> None:
    """Which datasets are in the data folder, and which attack recipes the NLTK data lets run."""
    data_col, nltk_col = st.columns(2)
    with data_col:
        st.markdown("**Datasets**")
        found = dataset_availability()
        if not any(found.values()):
            st.error(f"No datasets found in the data folder `{data_dir()}`. {data_folder_help()}",
                     icon=":material/folder_off:")
        else:
            # GLUE's pair tasks are optional (their files are added by hand, `source` says which): their absence
            # is a note, not an error; only a missing core set (SST-2, AdvGLUE) is
            optional = [name for name, present in found.items() if not present and REGISTRY[name].source]
            for name, present in found.items():
                if name in optional:
                    continue
                mark = ":green[:material/check_circle:]" if present else ":red[:material/cancel:]"
                st.markdown(f"{mark} `{name}`: {REGISTRY[name].description}"
                            + ("" if present else f" (missing: expected `{data_dir() / REGISTRY[name].local_file}`)"))
            if any(not present and name not in optional for name, present in found.items()):
                st.warning(f"Some datasets are missing from `{data_dir()}`. {data_folder_help()}")
            if optional:
                st.caption(f"Optional, not in the data folder: {', '.join(optional)}. Each is a GLUE sentence-pair "
                           "file you add by hand (its file name is given on the Train page) to train on that task.")
        st.caption("Your own data: upload a CSV with a text and a label column on the Train page.")
    with nltk_col:
        st.markdown("**Attack data (NLTK)**")
        nltk = nltk_status()
        if not nltk.folder.exists():
            st.error(f"The NLTK data folder `{nltk.folder}` does not exist, so no TextAttack recipe can run. "
                     f"Build it with `{SETUP_COMMAND}`.", icon=":material/error:")
        elif nltk.missing:
            lines = "\n".join(f"- **{recipes}** unavailable: {why}" for recipes, why in nltk.unavailable().items())
            st.warning(f"Part of the NLTK data is missing in `{nltk.folder}`:\n{lines}\n\n"
                       f"Re-run `{SETUP_COMMAND}` to try again.")
        elif not nltk.ready:
            st.warning(f"`{nltk.folder}` has its corpora but no `.ready` marker: setup may still be running or "
                       f"was interrupted. Re-run `{SETUP_COMMAND}` if attacks fail.")
        else:
            st.markdown(f":green[:material/check_circle:] stopwords and WordNet are ready in `{nltk.folder}`: "
                        "character-level (DeepWordBug, Pruthi) and WordNet (PWWS) attacks can run.")
        st.caption(f"Never available offline: {NEVER_OFFLINE}.")


def recent_runs() -> None:
    """The six newest runs, each linking to its details."""
    rows = get_store().list()
    if not rows:
        st.info("No runs yet. Start with **Train**: the tiny model with 200 examples and 1 epoch finishes in "
                "well under a minute.")
    for row in rows[:6]:
        cols = st.columns([0.12, 0.58, 0.15, 0.15], vertical_alignment="center")
        with cols[0]:
            status_badge(row["status"])
        cols[1].markdown(markdown_text(run_label(row, learning_of(row), derived_marks_of(row))))
        cols[2].caption(fmt_time(row["created"]))
        with cols[3]:
            page_link("runs.py", "Details", icon=":material/open_in_new:", query_params={"run": row["id"]})
    if len(rows) > 6:
        best = max((r["dev_accuracy"] for r in default_candidates(rows) if r["dev_accuracy"] is not None), default=None)
        st.caption(f"{len(rows) - 6} more on the Runs page. Dev accuracy of the best plain "
                   "finished run (no recovery-grid cell, extra data or run that did not learn): "
                   f"{fmt_acc(best)}.")
