"""The sentence the Playground studies: typed, or picked (with its label) from SST-2 dev or AdvGLUE-SST2,
and fitted to the model."""
from __future__ import annotations

import streamlit as st

from app.plain_text import markdown_text
from app.playground.models import loaded_model
from engine.attribution import FittedText, fit_text
from engine.data import DataError, load_dataset
from engine.models import ModelError
from engine.runs import RunError

EXAMPLE_SETS = {"SST-2 dev": "sst2-dev", "AdvGLUE-SST2": "advglue-sst2"}
TYPE = "Type or paste"


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
        st.error(markdown_text(str(err)))
        return None, None
    fitted = fit_text(model.tokenizer, raw, model.max_length)
    for notice in fitted.notices():
        st.warning(markdown_text(notice), icon=":material/content_cut:")
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
