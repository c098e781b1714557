"""Short, readable text for runs and numbers, shared by tables, pickers and captions (no Streamlit here)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def short_dataset(name: str | None) -> str:
    """`csv:/long/path/3fa2c1-reviews.csv` -> `upload reviews`; registry names stay as they are."""
    if not name:
        return "?"
    if name.startswith("csv:"):
        stem = Path(name[4:]).stem
        return "upload " + (stem.split("-", 1)[1] if "-" in stem else stem)
    return name


def short_model(name: str | None) -> str:
    """A model folder path shows as its last folder name; names and hub ids stay."""
    if not name:
        return "?"
    return Path(name).name if "/" in name and Path(name).is_absolute() else name


def fmt_acc(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def fmt_time(epoch_seconds: float | None) -> str:
    if not epoch_seconds:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch_seconds))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


STALE_SECONDS = 15   # a running job's progress older than this says when it was last updated


def progress_point(status: dict, rows: list[dict], rows_written: float | None) -> tuple[int, float | None]:
    """The furthest step a job has reached and when it got there (a Unix time): its status's step, or the
    last step of the logged scalars the curves are drawn from (`rows`, written at `rows_written`) when those
    are further along, as they are between two status updates."""
    step, reached = status.get("step") or 0, status.get("updated")
    logged = max((int(r["step"]) for r in rows if r.get("step") is not None), default=0)
    if logged > step and rows_written is not None:
        step, reached = logged, rows_written
    return step, reached


def progress_text(status: dict, step: int, total: int, reached: float | None, now: float) -> str:
    """`step 8 / 10 · loss 0.6931 · 1m 20s elapsed, about 20s to go …`: the estimate is the pace up to `reached`
    (when `step` was reached) applied to the steps left, less the time since, so it never grows while the job
    is quiet; a step reached long ago says so."""
    parts = [f"step {step} / {total}"]
    if status.get("current"):  # jobs made of several parts say which one they are on
        parts.append(str(status["current"]))
    if status.get("train_loss") is not None:
        parts.append(f"loss {status['train_loss']:.4f}")
    started = status.get("started")
    if started and step and reached and status.get("status") == "running":
        quiet = max(now - reached, 0.0)
        left = (reached - started) / step * (total - step) - quiet
        to_go = f"about {fmt_duration(left)} to go" if left > 0 else "should finish any moment"
        parts.append(f"{fmt_duration(now - started)} elapsed, {to_go} (plus the final evaluation)")
        if quiet >= STALE_SECONDS:
            parts.append(f"last update {fmt_duration(quiet)} ago")
    return " · ".join(parts)


def _what(row: dict) -> list[str]:
    what = row.get("method") or row.get("kind") or "run"
    if row.get("kind") not in (None, "train"):
        what = f"{row['kind']} · {what}" if row.get("method") not in (None, row["kind"]) else row["kind"]
    elif row.get("parent"):  # a train run inside a recovery grid: corrupted or its clean baseline
        what = f"{what} (recovery grid)"
    parts = [what, short_dataset(row.get("dataset")), short_model(row.get("model"))]
    if row.get("seed") is not None:
        parts.append(f"seed {row['seed']}")
    return parts


def run_title(row: dict) -> str:
    """What a run was, without its id: method, dataset, model, seed."""
    return " · ".join(_what(row))


def learning_mark(learning: dict | None) -> str:
    """`did not learn (chance 0.509)` for a run whose `learning_status` says it did not learn; else ''."""
    if not learning or learning.get("learned") is not False:
        return ""
    return f"did not learn (chance {learning['chance_accuracy']:.3f})"


def learned_text(learning: dict | None) -> str | None:
    """The Runs table's `learned` cell: yes, no, or None when it cannot be told (not a finished train run)."""
    if not learning or learning.get("learned") is None:
        return None
    return "yes" if learning["learned"] else "no"


def _layers_text(layers: list) -> str:
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(str(layer) for layer in layers)


def _budget_text(config: dict) -> str:
    """`2,000 x 2`: the training examples and epochs of a run (`all` when it trained on the whole set)."""
    size = config.get("train_size")
    return f"{f'{size:,}' if isinstance(size, int) else 'all'} x {config.get('epochs', '?')}"


def derived_marks(config: dict, results: dict | None = None) -> list[str]:
    """What makes a run something other than a plain model, in words from its config: a recovery-grid cell
    (`top-1 corrupted (reinit layer 5), healed 2,000 x 2`, or the grid's clean baseline) and training on extra
    data (`trained on +120 extra examples`, counted from results' `n_train` less the sampled `train_size`).
    [] for a plain run."""
    marks = []
    corruption, cell = config.get("corruption"), config.get("recovery") or {}
    if isinstance(corruption, dict):
        where = [part for part in (_layers_text(corruption.get("layers") or []) if corruption.get("layers") else "",
                                   "embeddings" if corruption.get("embeddings") else "") if part]
        label = f"{cell['label']} " if isinstance(cell, dict) and cell.get("label") else ""
        marks.append(f"{label}corrupted ({corruption.get('kind', 'corruption')} {' + '.join(where) or '?'}), "
                     f"healed {_budget_text(config)}")
    elif cell or config.get("parent") and config.get("kind", "train") == "train":
        marks.append(f"clean baseline of a recovery grid, {_budget_text(config)}")
    if config.get("extra_data"):
        n_train, size = (results or {}).get("n_train"), config.get("train_size")
        extra = n_train - size if isinstance(n_train, int) and isinstance(size, int) and n_train > size else None
        marks.append(f"trained on +{extra:,} extra examples" if extra else
                     f"trained on extra examples ({Path(str(config['extra_data'])).name})")
    return marks


def run_label(row: dict, learning: dict | None = None, marks: list[str] | None = None) -> str:
    """One line that tells runs apart in a picker: method, dataset, model, seed, dev accuracy (and, with the
    run's `learning_status`, whether it stayed at chance), id. `marks` (`derived_marks`) say what a derived run
    is: they follow the method, so a healed or extra-data run never reads as a plain one."""
    parts = _what(row)
    parts[1:1] = marks or []
    if row.get("damage"):
        parts.append("damaged")
    if row.get("dev_accuracy") is not None:
        parts.append(f"dev {row['dev_accuracy']:.3f}")
        if mark := learning_mark(learning):
            parts.append(mark)
    elif row.get("status") not in (None, "done", "damaged"):
        parts.append(row["status"])
    parts.append(row.get("id", "?"))
    return " · ".join(parts)


def distinct_labels(rows: list[dict]) -> dict[str, str]:
    """Short legend labels for runs shown together: only what differs between them, plus the id's tail.

    Three seeds of one setup become `seed 0 · d535`, `seed 1 · dea3`, ... instead of three long lines.
    """
    parts = {
        "what": lambda r: _what(r)[0],
        "dataset": lambda r: short_dataset(r.get("dataset")),
        "model": lambda r: short_model(r.get("model")),
        "seed": lambda r: "" if r.get("seed") is None else f"seed {r['seed']}",
    }
    varying = [get for get in parts.values() if len({get(r) for r in rows}) > 1] or [parts["what"]]
    return {r["id"]: " · ".join([p for get in varying if (p := get(r))] + [r["id"].rsplit("-", 1)[-1]])
            for r in rows}
