"""Following something that is still going (a queued or running job, a live attack): the one place that
knows how a page polls.

While it is going it is drawn inside a fragment that re-reads and redraws it every few seconds, without
rerunning the rest of the page; when it ends the whole page reruns once, so everything drawn below it
sees the finished state, and from then on it is drawn once per page run and polling stops.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from app.plain_text import markdown_text
from app.state import get_store
from engine.store.runs import ACTIVE, Run, RunError, RunStore

T = TypeVar("T")


def poll(read: Callable[[], T | None], going: Callable[[T], bool], draw: Callable[[T, bool], None],
         every: float) -> None:
    """Draw `read()` with `draw(state, live)`: re-read and redrawn every `every` seconds while `going(state)`
    (live=True), drawn once otherwise (live=False). `read` returns None when there is nothing to draw,
    after saying why itself."""
    state = read()
    if state is None:
        return
    if going(state):
        st.fragment(run_every=every)(_tick)(read, going, draw)
    else:
        draw(state, False)


def _tick(read: Callable[[], T | None], going: Callable[[T], bool], draw: Callable[[T, bool], None]) -> None:
    state = read()
    if state is None:
        return
    if not going(state):
        st.rerun()   # redraw the whole page once, with the finished (non-polling) view
    draw(state, True)


def follow_run(run_id: str, draw: Callable[[Run, bool], None], every: float) -> None:
    """Draw a run with `draw(run, live)`, polling it every `every` seconds while it is queued or running."""
    store = get_store()
    poll(lambda: run_or_warning(store, run_id), is_active, draw, every)


def is_active(run: Run) -> bool:
    """Queued or running."""
    return run.status.get("status") in ACTIVE


def run_or_warning(store: RunStore, run_id: str) -> Run | None:
    """The run, or None after a warning saying why not (deleted since the page last looked, say)."""
    try:
        return store.get(run_id)
    except RunError as err:
        st.warning(markdown_text(str(err)))
        return None
