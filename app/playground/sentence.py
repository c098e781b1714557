"""The sentence the Playground studies: typed, or picked (with its label) from the model's own data (its dev
sentences, and for SST-2 the adversarial AdvGLUE-SST2 set), and fitted to the model. A sentence-pair model
gets two boxes, named as its task names its segments (premise and hypothesis, ...)."""
from __future__ import annotations

import streamlit as st

from app.formatting import short_dataset
from app.plain_text import markdown_text
from app.playground.models import loaded_model
from app.playground.text_views import segment_title
from app.state import get_store
from engine.data.text_dataset import DataError, Input
from engine.explain.attribution import FittedText, fit_input
from engine.models.architecture import ModelError
from engine.paths import runs_home
from engine.store.runs import RunError
from engine.training.evaluate import eval_set, own_sets

TYPE = "Type or paste"
SET_TITLES = {"sst2-dev": "SST-2 dev", "advglue-sst2": "AdvGLUE-SST2", "advglue-rte": "AdvGLUE-RTE",
              "advglue-qnli": "AdvGLUE-QNLI", "advglue-qqp": "AdvGLUE-QQP", "advglue-mnli": "AdvGLUE-MNLI",
              "advglue-mnli-mm": "AdvGLUE-MNLI mismatched"}
FIRST_PAIR = ("A man is playing a guitar on a small stage.", "A person is performing music.")


def set_title(name: str, dataset: str | None) -> str:
    """A set's short name: `SST-2 dev`, or `held-out dev of upload news` for the split held out of a CSV."""
    if name == "heldout":
        return f"held-out dev of {short_dataset(dataset)}"
    return SET_TITLES.get(name, short_dataset(name))


def example_sets(run_id: str) -> dict[str, str]:
    """{title: set name} of the run's own sets, its dev set first."""
    config = get_store().get(run_id).config
    return {set_title(name, config.get("dataset")): name for name in own_sets(config)}


@st.cache_data(show_spinner=False)
def _examples(home: str, run_id: str, name: str) -> tuple[list[Input], list[int]]:
    config = get_store().get(run_id).config
    data = eval_set(config, name, loaded_model(run_id).label_names)
    return data.inputs, data.labels


def _example_key(run_id: str, name: str) -> str:
    return f"pg-example-{run_id}-{name}" if name == "heldout" else f"pg-example-{name}"   # a split is the run's own


def _use_example(run_id: str, name: str, title: str) -> None:
    """Selecting an example copies it into the editor and remembers its label."""
    index = st.session_state.get(_example_key(run_id, name))
    if index is None:
        return
    texts, labels = _examples(str(runs_home()), run_id, name)
    put_in_editor(texts[index])
    st.session_state["pg-gold"] = {"text": texts[index], "label": labels[index], "source": title,
                                   "name": loaded_model(run_id).label_names[labels[index]],
                                   "dataset": get_store().get(run_id).config.get("dataset")}


def put_in_editor(given: Input) -> None:
    """Show a sentence in the text box, or a pair in the two boxes (before they are drawn)."""
    if isinstance(given, tuple):
        st.session_state["pg-text"], st.session_state["pg-text-b"] = given
    else:
        st.session_state["pg-text"] = given


def _example_line(given: Input) -> str:
    return given[:100] if isinstance(given, str) else f"{given[0][:60]} ‖ {given[1][:60]}"


def _example_picker(run_id: str) -> None:
    """Its own sets as sources beside typing; the chosen set's sentences, each with its label name."""
    try:
        sets = example_sets(run_id)
    except RunError as err:
        st.error(markdown_text(str(err)))
        return
    adversarial = ", or the adversarial AdvGLUE-SST2 set" if "advglue-sst2" in sets.values() else ""
    source = st.segmented_control("Sentence", [TYPE, *sets], default=TYPE, key="pg-source",
                                  help="Type your own sentence, or pick a real one (with its label) from the model's "
                                       f"own data: its dev sentences{adversarial}.")
    if source not in sets:
        return
    name = sets[source]
    try:
        texts, labels = _examples(str(runs_home()), run_id, name)
        names = loaded_model(run_id).label_names
    except (DataError, ModelError, RunError) as err:
        st.error(markdown_text(str(err)))
        return
    st.selectbox(f"Example from {source}", range(len(texts)), index=None, key=_example_key(run_id, name),
                 on_change=_use_example, args=(run_id, name, source),
                 placeholder=f"Choose one of {len(texts)} sentences",
                 format_func=lambda i: f"#{i} · {names[labels[i]]} · {_example_line(texts[i])}")


def _typed(model) -> Input | None:
    """The typed sentence, or for a pair model both typed segments; None (with a hint) when one is empty."""
    names = model.segment_names
    if names is None:
        st.session_state.setdefault("pg-text", "it 's a charming and often affecting journey .")
        raw = st.text_area("Text", key="pg-text", height=90, max_chars=20_000,
                           help="Edit freely and press Ctrl+Enter: every version you try is kept in Edit history.")
        if raw.strip():
            return raw
        st.info("Type a sentence, or pick one from a dataset, to see what the model predicts and why.",
                icon=":material/edit:")
        return None
    st.session_state.setdefault("pg-text", FIRST_PAIR[0])
    st.session_state.setdefault("pg-text-b", FIRST_PAIR[1])
    left, right = st.columns(2)
    shown = [markdown_text(name) for name in names]      # a CSV's column names: text, not Markdown
    first = left.text_area(segment_title(shown[0]), key="pg-text", height=90, max_chars=20_000,
                           help=f"The first segment of the pair. This model reads {shown[0]} and {shown[1]} "
                                "together; edit either and press Ctrl+Enter.")
    second = right.text_area(segment_title(shown[1]), key="pg-text-b", height=90, max_chars=20_000,
                             help="The second segment of the pair (what an attack edits by default).")
    empty = [name for name, text in zip(shown, (first, second)) if not text.strip()]
    if empty:
        st.info(f"Type the {' and the '.join(empty)}, or pick a pair from a dataset: this model reads "
                f"{shown[0]} and {shown[1]} together.", icon=":material/edit:")
        return None
    return first, second


def sentence_input(run_id: str) -> tuple[FittedText | None, dict | None]:
    """The sentence (or sentence pair) to study, fitted to the model (control characters dropped, cut to its
    length), and its dataset label when it came from a dataset and is unedited."""
    _example_picker(run_id)
    try:
        model = loaded_model(run_id)
    except (ModelError, RunError) as err:
        st.error(markdown_text(str(err)))
        return None, None
    raw = _typed(model)
    if raw is None:
        return None, None
    fitted = fit_input(model.tokenizer, raw, model.max_length)
    for notice in fitted.notices():
        st.warning(markdown_text(notice), icon=":material/content_cut:")
    if not fitted.text.strip() or (fitted.text_b is not None and not fitted.text_b.strip()):
        st.info("Nothing readable is left once control characters are removed.")
        return None, None
    letters = [c for c in fitted.text + (fitted.text_b or "") if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) > len(letters) / 2:
        st.caption(":material/translate: The model was fine-tuned on English text; on other languages its "
                   "prediction says little (word pieces it never learned become [UNK]).")
    gold = st.session_state.get("pg-gold")
    if not gold or gold.get("text") != raw or gold.get("dataset") != get_store().get(run_id).config.get("dataset"):
        gold = None   # edited, or a label of another dataset's sentence
    return fitted, gold
