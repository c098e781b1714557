"""What a page needs about one grid: everything read from the run store (also while it runs), and the
aggregates over seeds that its charts and tables draw.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.advglue import advglue_chance
from engine.data.splits import task_of
from engine.recovery.grid import GridError, GridSpec, cells_of
from engine.recovery.metrics import children, dev_curve, grid_rows, summarise_by_label
from engine.store.runs import Run, RunStore


@dataclass
class GridView:
    """Everything a page shows about one grid, read from the run store (works while it still runs)."""
    grid: Run
    spec: GridSpec
    num_layers: int
    status: dict[str, Any]
    cells: list[dict[str, Any]]                 # every planned cell with its run's progress, if it started, and
                                                # its task's node and state as the grid recorded them
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    curves: dict[str, tuple[list[int], list[float]]]   # run id -> dev accuracy curve
    analysis: dict[str, dict[str, np.ndarray]]         # run id -> recovery artifact


def load_grid(store: RunStore, grid_id: str) -> GridView:
    """Read one grid: its plan, its cell runs, their curves, metrics and probes."""
    grid = store.get(grid_id)
    config = grid.config
    if config.get("kind") != "recover":
        raise GridError(f"run {grid_id} is a {config.get('kind')} run, not a recovery grid")
    runs = children(store, grid)
    by_index = {r.config.get("recovery", {}).get("index"): r for r in runs}
    rows = grid_rows(store, grid)
    row_of = {r["run_id"]: r for r in rows}
    cells = []
    grid_status = grid.status.get("status")
    tasks = grid.status.get("cell_states") or []
    for index, cell in enumerate(cells_of(config)):
        child = by_index.get(index)
        task = tasks[index] if index < len(tasks) else {}
        where = {"node": task.get("node"), "state": task.get("state"), "retried": bool(task.get("retried"))}
        if child is None:
            state = "waiting" if grid_status in ("queued", "running") else "not run"
            cells.append({**cell.to_dict(), **where, "index": index, "run_id": None, "status": state,
                          "step": 0, "total_steps": None, "dev_accuracy": None})
        else:
            status = child.status
            curve = dev_curve(child)
            cells.append({**cell.to_dict(), **where, "index": index, "run_id": child.id,
                          "status": status.get("status"),
                          "step": status.get("step", 0), "total_steps": status.get("total_steps"),
                          "dev_accuracy": curve[1][-1] if curve[1] else None,
                          "final_accuracy": row_of[child.id]["final_accuracy"]})
    return GridView(grid=grid, spec=GridSpec.from_dict(config), num_layers=config.get("num_layers", 0),
                    status=grid.status, cells=cells, rows=rows, summary=summarise_by_label(rows),
                    curves={r.id: dev_curve(r) for r in runs},
                    analysis={r.id: a for r in runs if (a := r.artifact("recovery"))})



def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def curves_by_label(view: GridView) -> list[dict[str, Any]]:
    """Per cell label (in grid order), the dev-accuracy curve averaged over seeds at each evaluated step."""
    groups: dict[str, dict[str, Any]] = {}
    for cell in view.cells:
        if not cell["run_id"] or cell["run_id"] not in view.curves:
            continue
        group = groups.setdefault(cell["label"], {"label": cell["label"], "position": cell["position"],
                                                  "k": cell["k"], "points": {}, "runs": 0})
        group["runs"] += 1
        for step, value in zip(*view.curves[cell["run_id"]]):
            group["points"].setdefault(step, []).append(value)
    out = []
    for group in groups.values():
        steps = sorted(group["points"])
        stats = [_mean_std(group["points"][s]) for s in steps]
        out.append({"label": group["label"], "position": group["position"], "k": group["k"], "runs": group["runs"],
                    "steps": steps, "mean": [m for m, _ in stats], "std": [s for _, s in stats]})
    return out


def layers_by_label(view: GridView, key: str) -> list[dict[str, Any]]:
    """Per cell label, a per-layer probe (`cka`, `cka_start`, `drift`, `drift_relative`) averaged over seeds."""
    names_key = "drift_groups" if key.startswith("drift") else "layer_names"
    groups: dict[str, dict[str, Any]] = {}
    for cell in view.cells:
        probes = view.analysis.get(cell["run_id"] or "", {})
        if key not in probes:
            continue
        group = groups.setdefault(cell["label"], {"label": cell["label"], "position": cell["position"],
                                                  "k": cell["k"], "layers": list(cell["layers"]),
                                                  "embeddings": cell["embeddings"],
                                                  "names": [str(n) for n in probes[names_key]], "values": []})
        group["values"].append(np.asarray(probes[key], dtype=float))
    out = []
    for group in groups.values():
        values = np.stack(group.pop("values"))
        group.update(seeds=len(values), mean=values.mean(0).tolist(),
                     std=values.std(0, ddof=1).tolist() if len(values) > 1 else None)
        out.append(group)
    return out


def heatmap_table(summary: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Mean `metric` by group (rows: bottom, top, custom ..., embeddings) x level k (columns), clean left out."""
    def row_name(entry: dict) -> str:
        if entry["position"] == "custom":
            return entry["label"].removesuffix("+emb") + ("+emb" if entry["embeddings"] else "")
        return entry["position"] + ("+emb" if entry["embeddings"] and entry["position"] != "embeddings" else "")

    entries = [e for e in summary if e["position"] != "clean"]
    order = {"bottom": 0, "top": 1, "custom": 2, "embeddings": 3}
    rows = sorted({row_name(e): order.get(e["position"], 9) for e in entries}.items(), key=lambda kv: (kv[1], kv[0]))
    row_names = [name for name, _ in rows]
    levels = sorted({e["layers"] for e in entries})
    values: list[list[float | None]] = [[None] * len(levels) for _ in row_names]
    spread: list[list[float | None]] = [[None] * len(levels) for _ in row_names]
    for e in entries:
        i, j = row_names.index(row_name(e)), levels.index(e["layers"])
        values[i][j], spread[i][j] = e.get(f"{metric}_mean"), e.get(f"{metric}_std")
    return {"rows": row_names, "levels": levels, "values": values, "std": spread}


def bottom_vs_top(summary: list[dict[str, Any]], metric: str = "recovery_ratio") -> list[dict[str, Any]]:
    """For each k with both a bottom and a top cell (same embeddings choice): the mean `metric` of each, their
    raw dev accuracies, and which one is lower (`worse`; ties: "neither"). Descriptive only: whether bottom
    hurts more is judged per seed by `engine.recovery.claims`."""
    by_key = {(e["position"], e["layers"], e["embeddings"]): e for e in summary}
    out = []
    for (position, k, emb), bottom in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        top = by_key.get(("top", k, emb))
        if position != "bottom" or top is None:
            continue
        b, t = bottom.get(f"{metric}_mean"), top.get(f"{metric}_mean")
        if b is None or t is None:
            continue
        worse = "bottom" if b < t else "top" if t < b else "neither"
        out.append({"k": k, "embeddings": emb, "bottom": b, "top": t, "difference": t - b, "worse": worse,
                    "bottom_accuracy": bottom.get("final_accuracy_mean"),
                    "top_accuracy": top.get("final_accuracy_mean"),
                    "seeds": min(bottom["seeds"], top["seeds"])})
    return out


def chance_lines(view: GridView) -> dict[str, float]:
    """Where a model that always answers the majority class sits on the accuracy charts: `dev` (the dev
    set's majority-class rate) and `advglue` (that of the grid's task's AdvGLUE sentences, MNLI the mean over its
    two parts, when the grid scored them)."""
    out: dict[str, float] = {}
    dev = [r["chance_accuracy"] for r in view.rows if r["chance_accuracy"] is not None]
    if dev:
        out["dev"] = dev[0]
    if any(r["advglue_accuracy"] is not None for r in view.rows):
        chance = advglue_chance(grid_task(view))
        if chance is not None:
            out["advglue"] = chance
    return out


def grid_task(view: GridView) -> str:
    """The task the grid's runs learn (its dataset's), which its AdvGLUE numbers are on."""
    return task_of({"dataset": view.spec.dataset})
