"""Streamlit glue shared by the method pages (ROSE, UEGR, Match-Tuning): choosing a run of the page's
method (or saying how to make one), redrawing while the run trains, reading its recorded arrays, and
finding the vanilla runs to compare with."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from app.components import job_panel, page_link, run_picker
from app.figures import has_series
from app.live import follow_run, is_active
from app.plain_text import markdown_text
from app.state import default_candidates, derived_marks_of, get_store, is_plain_default
from engine.methods import registry
from engine.store.runs import Run, RunError
from engine.training import flags as train_flags

REFRESH_SECONDS = 3.0


def train_command(method: str) -> str:
    """The exact CLI command that makes a run this page can show (MiniLM, 2,000 SST-2 examples)."""
    return (f"python -m engine train --method {method} --train-size 2000 --epochs 2 --seed 0 --json\n"
            f"# quicker, on the tiny model:\n"
            f"python -m engine train --method {method} --model tiny --train-size 200 --epochs 1")


def command_like(run: Run, method: str) -> str:
    """The CLI command for a run of `method` trained exactly like `run` (its whole config; its method settings
    only when `method` is the run's own)."""
    settings = run.config.get("settings") if method == run.config.get("method") else {}
    return train_flags.train_command(run.config, method=method, settings=settings) + " --json"


def choose_run(methods: tuple[str, ...], key: str) -> Run:
    """A picker over the runs of these methods (newest first, preselected), and the chosen run's settings in
    a caption. With no run to show, say how to make one and stop the page there."""
    run = _picked_run(methods, key)
    if run is None:
        st.stop()
    _settings_caption(run)
    return run


def _picked_run(methods: tuple[str, ...], key: str) -> Run | None:
    store = get_store()
    rows = [r for r in store.list(kind="train") if r.get("method") in methods]
    if not rows:
        names = " or ".join(f"`{m}`" for m in methods)
        st.info(f"There is no run of {names} in the run store `{store.home}` yet. Start one on the **Train** "
                f"page (choose the method there), or from a shell in the project folder:", icon=":material/info:")
        st.code(train_command(methods[0]), language="bash")
        page_link("train.py", "Open the Train page", icon=":material/model_training:")
        return None
    run_id = run_picker("Run", key=key, filter_fn=lambda r: r.get("method") in methods and r.get("kind") == "train",
                        default=next((r["id"] for r in default_candidates(rows)), None),
                        help="Runs of this page's method, newest first (the newest plain one preselected: not a "
                             "recovery-grid cell, a run on extra data or one that did not learn).")
    if not run_id:
        st.info("Choose a run above to see what the method did inside the model.")
        return None
    try:
        run = store.get(run_id)
    except RunError as err:
        st.error(markdown_text(str(err)))
        return None
    if damage := run.damage:
        st.error(markdown_text(f"This run is damaged: {damage}. Its records cannot be trusted; the Runs page shows "
                               "what can be read, and can export or delete it."), icon=":material/broken_image:")
        return None
    return run


def _settings_caption(run: Run) -> None:
    """The run's method settings in one line (defaults filled in)."""
    method = run.config.get("method")
    cls = registry().get(method)
    if cls is None:
        st.caption(f"Method `{method}` is not installed in this copy of RobustLab.")
        return
    chosen = run.config.get("settings") or {}
    parts = [f"{s.name} = {chosen.get(s.name, s.default)}" for s in cls.settings_spec]
    config = run.config
    st.caption(f"**{cls.title}** · " + " · ".join(parts) + f"  \nmodel {config.get('model')} · "
               f"{config.get('train_size')} examples · {config.get('epochs')} epochs · "
               f"batch {config.get('batch_size')} · lr {config.get('lr')} · seed {config.get('seed')}")


def show_run(run: Run, draw: Callable[[Run], None]) -> None:
    """The job panel while the run is active, then `draw(run)`: redrawn every few seconds while the run
    trains (the method writes its records every few seconds), once when it has finished."""
    if is_active(run):
        job_panel(run.id)
    follow_run(run.id, lambda current, live: draw(current), every=REFRESH_SECONDS)


@st.cache_data(max_entries=64, show_spinner=False)
def _read_npz(path: str, mtime: float) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def artifact(run: Run, name: str) -> dict[str, np.ndarray]:
    """A recorded artifact ({} when the run has not written it yet), re-read only when the file changes."""
    path = run.dir / "artifacts" / f"{name}.npz"
    try:
        return _read_npz(str(path), path.stat().st_mtime)
    except (FileNotFoundError, OSError, ValueError):
        return {}


TRAINED_ALIKE = ("dataset", "model", "seed", "train_size", "epochs", "batch_size")


def _finished_vanilla(run: Run) -> tuple[list[Run], list[Run]]:
    """The finished vanilla runs on `run`'s dataset, newest first and plain ones (`is_plain_default`) first: those
    trained like `run` (same dataset, model, seed, size, epochs, batch), and the others. A run of another dataset
    is never a baseline."""
    store = get_store()
    alike, others = [], []
    for row in store.list(kind="train", method="vanilla", status="done"):
        if row.get("dataset") != run.config.get("dataset"):
            continue
        try:
            other = store.get(row["id"])
        except RunError:
            continue
        same = all(other.config.get(k) == run.config.get(k) for k in TRAINED_ALIKE)
        (alike if same else others).append((other, is_plain_default(row)))
    plain_first = lambda found: [r for r, plain in found if plain] + [r for r, plain in found if not plain]  # noqa: E731
    return plain_first(alike), plain_first(others)


def vanilla_twin(run: Run) -> Run | None:
    """The newest finished vanilla run trained like `run`, preferring one that recorded its weight drift."""
    found, _ = _finished_vanilla(run)
    found = [r for r in found if not derived_marks_of({"id": r.id})]   # a healed or extra-data run is no twin
    with_drift = [r for r in found if (Path(r.dir) / "artifacts" / "drift.npz").exists()]
    return (with_drift or found or [None])[0]


def vanilla_runs_with(run: Run, split: str, name: str) -> list[Run]:
    """The finished vanilla runs on `run`'s dataset that recorded the scalar `split`/`name`: those trained like
    `run` first."""
    alike, others = _finished_vanilla(run)
    return [r for r in alike + others if has_series(r.metrics(), split, name)]


def step_slider(label: str, steps: np.ndarray, key: str, help: str | None = None) -> int:
    """A slider over the recorded steps; returns the index of the chosen one (the last by default)."""
    values = [int(s) for s in steps]
    if len(values) == 1:
        st.caption(f"{label}: {values[0]} (only one recorded so far)")
        return 0
    if key in st.session_state and st.session_state[key] not in values:
        del st.session_state[key]
    start = {} if key in st.session_state else {"value": values[-1]}
    chosen = st.select_slider(label, options=values, key=key, help=help, **start)
    return values.index(chosen)
