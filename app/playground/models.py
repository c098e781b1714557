"""Cached inference for the Playground: one shared, thread-safe model per run, and cached predictions
and explanations, so that retyping a sentence or switching tabs costs nothing.

The Playground loads its own `LoadedModel` (not `app.state.load_model`'s tuple): integrated gradients
hooks the embedding layer, and the lock inside `LoadedModel` keeps those hooks away from any other
forward pass, including another tab's attack on the same model.
"""
from __future__ import annotations

import threading

import streamlit as st

from engine.data.text_dataset import Input
from engine.explain.attribution import IG_STEPS, Explanation, explain
from engine.models.inference import LoadedModel
from engine.paths import runs_home


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _loaded(home: str, run_id: str) -> LoadedModel:
    from app.state import get_store
    from engine.models.device import pick_device

    return LoadedModel.from_run(get_store().get(run_id).dir, pick_device())


def loaded_model(run_id: str) -> LoadedModel:
    """The run's model, loaded once per process (raises ModelError/RunError with a message)."""
    return _loaded(str(runs_home()), run_id)


@st.cache_data(max_entries=1024, show_spinner=False)
def _probs(home: str, run_id: str, text: Input) -> list[float]:
    return loaded_model(run_id).probs([text])[0].tolist()


def probabilities(run_id: str, text: Input) -> list[float]:
    return _probs(str(runs_home()), run_id, text)


@st.cache_data(max_entries=512, show_spinner=False)
def _explanation(home: str, run_id: str, text: Input, how: str, target: int | None) -> Explanation:
    return explain(loaded_model(run_id), text, how, target, IG_STEPS)


def explanation(run_id: str, text: Input, how: str, target: int | None = None) -> Explanation:
    """Word-level saliency of `text` (a sentence, or a pair) for class `target` (default: the predicted class)."""
    return _explanation(str(runs_home()), run_id, text, how, target)


@st.cache_resource(show_spinner=False)
def _textattack_loader() -> dict:
    state = {"ready": False, "error": None}

    def load() -> None:
        try:
            from engine.attacks.wrapper import import_textattack

            import_textattack()
            state["ready"] = True
        except Exception as err:  # shown on the page; attacks then fail with the same error
            state["error"] = f"{type(err).__name__}: {err}"

    thread = threading.Thread(target=load, name="textattack-import", daemon=True)
    thread.start()
    state["thread"] = thread
    return state


def warm_up_textattack() -> None:
    """Start importing TextAttack in the background (it takes seconds), once per process."""
    _textattack_loader()


def textattack_status() -> tuple[bool, str | None]:
    """(imported yet, import error if any)."""
    state = _textattack_loader()
    return bool(state["ready"]), state["error"]
