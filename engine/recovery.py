"""The corruption-then-recovery experiment: a grid of corrupted fine-tuning runs and what they show.

A grid is one `recover` run. Its job runs the cells one after another in its own worker process (it
holds the single job slot, so it never waits on runs it started itself): for each seed, first the clean
baseline, then every corrupted cell. Each cell is an ordinary `train` run with `corruption` set and
`parent` = the grid, so its dev-accuracy curve is recorded every `eval_every` steps while it trains, and
the Runs page, evaluation and attacks work on it as on any other run. After a cell finishes, the job
records per-layer CKA against the clean model of the same seed and per-layer weight drift from the
corrupted starting point (artifact `recovery`). Cancelling the grid stops the running cell (its curve so
far is kept), starts no more, and keeps every finished cell.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engine.corruption import CorruptionError, KINDS, check_spec, group_layers
from engine.runs import Run, RunStore

GRID_POSITIONS: dict[str, str] = {
    "bottom": "the k layers next to the embeddings",
    "top": "the k layers next to the classifier",
    "custom": "a set of layers you pick",
    "embeddings": "the embeddings only (no encoder layer)",
}
MAX_CELLS = 120
PROBE_SIZE = 128          # dev sentences whose hidden states CKA compares
TARGET_SHARE = 0.95       # "steps to 95 %": the first evaluation at >= 95 % of clean accuracy


class GridError(ValueError):
    """A recovery grid that cannot run; the message says what to change."""


# ---------------------------------------------------------------- the grid

@dataclass(frozen=True)
class Cell:
    """One run of a grid: where the corruption goes (nothing for the clean baseline) and the seed."""
    position: str          # bottom, top, custom, embeddings, or clean
    k: int                 # number of corrupted encoder layers (the level)
    layers: tuple[int, ...]
    embeddings: bool
    seed: int

    @property
    def clean(self) -> bool:
        return self.position == "clean"

    @property
    def label(self) -> str:
        """The cell without its seed: `bottom-2`, `top-1+emb`, `custom 1,3`, `embeddings`, `clean`."""
        if self.position in ("clean", "embeddings"):
            return self.position
        base = f"custom {','.join(map(str, self.layers))}" if self.position == "custom" else f"{self.position}-{self.k}"
        return base + ("+emb" if self.embeddings else "")

    def corruption_spec(self, spec: "GridSpec") -> dict[str, Any] | None:
        """The `TrainConfig.corruption` of this cell (None for the clean baseline), seeded by the cell's seed."""
        if self.clean:
            return None
        return {"layers": list(self.layers), "embeddings": self.embeddings, **spec.corruption_fields(),
                "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "k": self.k, "layers": list(self.layers),
                "embeddings": self.embeddings, "seed": self.seed, "label": self.label}


@dataclass
class GridSpec:
    """What a person picks on the page (or on the command line) for one grid."""
    dataset: str = "sst2"
    model: str = "minilm"
    positions: list[str] = field(default_factory=lambda: ["bottom", "top"])
    levels: list[int] = field(default_factory=lambda: [1, 2, 3])
    custom_layers: list[int] = field(default_factory=list)
    embeddings: bool = False          # also corrupt the embeddings in every bottom/top/custom cell
    corruption_kind: str = "reinit"   # not `kind`: that key of a run config is the job kind
    scale: float = 0.5                # noise: std as a multiple of each matrix's RMS
    fraction: float = 0.5             # zero: share of each weight matrix set to 0
    seeds: list[int] = field(default_factory=lambda: [0])
    train_size: int | None = 1000
    epochs: int = 1
    batch_size: int = 16              # with 1,000 examples and 1 epoch: 63 steps. MiniLM at batch 32 and lr 5e-5
    lr: float = 1e-4                  # (32 steps) stayed at chance (dev 0.52); batch 16 and lr 1e-4 reach ~0.76
    eval_every: int = 8               # steps between dev evaluations: the points of the recovery curves
    dev_size: int | None = 400        # dev examples per evaluation (a fixed sample; keeps evaluations cheap)
    max_length: int = 128
    device: str = "auto"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "GridSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def corruption_fields(self) -> dict[str, Any]:
        kind = self.corruption_kind
        return {"kind": kind, **({"scale": self.scale} if kind == "noise" else {}),
                **({"fraction": self.fraction} if kind == "zero" else {})}

    def check(self, num_layers: int) -> None:
        """Refuse an impossible grid before anything is queued; all problems in one message."""
        problems: list[str] = []
        unknown = [p for p in self.positions if p not in GRID_POSITIONS]
        if unknown:
            problems.append(f"unknown position {unknown[0]!r}; choose from {', '.join(GRID_POSITIONS)}")
        if not self.positions:
            problems.append("the grid is empty: choose at least one position (bottom, top, custom or embeddings)")
        if any(p in ("bottom", "top") for p in self.positions):
            if not self.levels:
                problems.append("the grid is empty: bottom/top need at least one number of layers k")
            for k in self.levels:
                try:
                    group_layers("bottom", int(k), num_layers)
                except CorruptionError as err:
                    problems.append(str(err))
                    break
        if "custom" in self.positions:
            if not self.custom_layers:
                problems.append("a custom position needs at least one layer to corrupt")
            bad = [i for i in self.custom_layers if not 0 <= int(i) < num_layers]
            if bad:
                problems.append(f"custom layer {bad[0]} does not exist: the model has {num_layers} layers, "
                                f"numbered 0..{num_layers - 1}")
        if not self.seeds:
            problems.append("the grid is empty: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            problems.append("each seed should appear once")
        if self.corruption_kind not in KINDS:
            problems.append(f"corruption kind must be one of {', '.join(KINDS)} (got {self.corruption_kind!r})")
        elif self.corruption_kind == "noise" and not self.scale > 0:
            problems.append(f"noise scale must be > 0 (got {self.scale:g})")
        elif self.corruption_kind == "zero" and not 0 <= self.fraction <= 1:
            problems.append(f"the fraction of weights to zero must be in [0, 1] (got {self.fraction:g})")
        if self.dev_size is not None and self.dev_size < 1:
            problems.append(f"dev size must be at least 1 (got {self.dev_size})")
        if problems:
            raise GridError("; ".join(problems))
        cells = self.cells(num_layers)
        if len(cells) > MAX_CELLS:
            raise GridError(f"the grid has {len(cells)} runs; keep it at {MAX_CELLS} or fewer "
                            f"(fewer seeds, levels or positions)")
        for cell in cells:
            config = self.train_config(cell)
            config.check()          # ConfigError names a bad training setting
            if cell.corruption_spec(self) is not None:
                check_spec(cell.corruption_spec(self), num_layers)

    def cells(self, num_layers: int) -> list[Cell]:
        """Every run of the grid in the order it runs: per seed, the clean baseline first."""
        out: list[Cell] = []
        emb = bool(self.embeddings)
        for seed in self.seeds:
            seed = int(seed)
            out.append(Cell("clean", 0, (), False, seed))
            for position in dict.fromkeys(self.positions):   # each position once, in the order given
                if position in ("bottom", "top"):
                    for k in sorted({int(k) for k in self.levels}):
                        out.append(Cell(position, k, tuple(group_layers(position, k, num_layers)), emb, seed))
                elif position == "custom":
                    layers = tuple(sorted({int(i) for i in self.custom_layers}))
                    out.append(Cell("custom", len(layers), layers, emb, seed))
                elif position == "embeddings":
                    out.append(Cell("embeddings", 0, (), True, seed))
        return out

    def train_config(self, cell: Cell):
        """The TrainConfig of one cell: identical for every cell but the seed and the corruption."""
        from engine.train_config import TrainConfig

        return TrainConfig(dataset=self.dataset, model=self.model, method="vanilla", train_size=self.train_size,
                           epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=cell.seed,
                           max_length=self.max_length, eval_every=self.eval_every, dev_size=self.dev_size,
                           device=self.device, corruption=cell.corruption_spec(self))


def grid_config(spec: GridSpec) -> dict[str, Any]:
    """Check a grid and return the config its `recover` run stores (with the model's layer count)."""
    from engine.corruption import model_layer_count

    num_layers = model_layer_count(spec.model)
    spec.check(num_layers)
    cells = spec.cells(num_layers)
    return {**spec.to_dict(), "num_layers": num_layers, "cells": [c.to_dict() for c in cells],
            "seed": spec.seeds[0] if len(spec.seeds) == 1 else None}


def submit_grid(store: RunStore, spec: GridSpec) -> Run:
    """Queue a whole grid (clean baselines included) as one background job."""
    from engine import jobs

    return jobs.submit(store, grid_config(spec), kind="recover")


def cells_of(config: dict[str, Any]) -> list[Cell]:
    return [Cell(c["position"], c["k"], tuple(c["layers"]), c["embeddings"], c["seed"])
            for c in config.get("cells", [])]


# ---------------------------------------------------------------- the job

def _train_cell(store: RunStore, grid: Run, spec: GridSpec, cell: Cell, index: int,
                should_stop: Callable[[], bool], progress: Callable) -> tuple[Run, dict[str, Any]]:
    """Record one cell as a child run of the grid and train it in this process, in the grid's slot."""
    from engine.jobs import execute
    from engine.train import environment

    child = store.create({**spec.train_config(cell).to_dict(), "environment": environment(),
                          "recovery": {**cell.to_dict(), "grid": grid.id, "index": index}},
                         kind="train", parent=grid.id)
    grid.log(f"cell {index + 1}: {cell.label} seed {cell.seed} -> run {child.id}")
    results = execute(store, child, should_stop, progress, slot_held=True)
    if results.get("status") == "failed":
        grid.log(f"cell {cell.label} seed {cell.seed} failed: {results.get('error')}")
    return child, results


def run_job(run: Run, should_stop: Callable[[], bool], progress: Callable | None = None) -> dict[str, Any]:
    """The `recover` job kind: train every cell of the grid in order, then analyse each against its clean run."""
    from engine.jobs import PartProgress
    from engine.train import load_splits

    config = run.config
    spec = GridSpec.from_dict(config)
    cells = cells_of(config)
    store = RunStore(run.dir.parent)
    first = spec.train_config(cells[0])
    steps_per_cell = math.ceil(len(load_splits(first).train) / spec.batch_size) * spec.epochs
    total = steps_per_cell * len(cells)
    run.set_status(step=0, total_steps=total, cells_total=len(cells), cells_done=0)
    run.log(f"recovery grid: {len(cells)} runs of {steps_per_cell} steps; {spec.corruption_kind} corruption; "
            f"seeds {spec.seeds}")
    clean: dict[int, Run] = {}
    outcomes: list[str] = []
    errors: list[str] = []
    for index, cell in enumerate(cells):
        if should_stop():
            break
        run.set_status(current=f"{cell.label} seed {cell.seed}")
        ticker = PartProgress(run, progress, index * steps_per_cell, total)
        child, results = _train_cell(store, run, spec, cell, index, should_stop, ticker)
        outcomes.append(results.get("status", "failed"))
        if results.get("error"):
            errors.append(f"{cell.label} seed {cell.seed}: {results['error']}")
        if results.get("status") == "done":
            if cell.clean:
                clean[cell.seed] = child
            if not should_stop():
                try:
                    analyse_cell(child, clean.get(cell.seed))
                except Exception as err:  # the run itself is fine; say why its probes are missing
                    child.log(f"recovery analysis failed: {type(err).__name__}: {err}")
        run.set_status(cells_done=outcomes.count("done"))
        if results.get("status") != "cancelled":
            run.set_status(step=(index + 1) * steps_per_cell)
    rows = grid_rows(store, run)
    stopped = should_stop() or len(outcomes) < len(cells) or "cancelled" in outcomes
    status = "cancelled" if stopped else ("failed" if outcomes and all(o == "failed" for o in outcomes) else "done")
    run.log(f"grid {status}: {outcomes.count('done')} of {len(cells)} runs finished")
    if status == "failed":
        run.set_status(error=f"every run failed; the first: {errors[0]}" if errors else "every run failed")
    return {"status": status, **({"errors": errors} if errors else {}), "cells_total": len(cells),
            "cells_done": outcomes.count("done"),
            "rows": rows, "summary": summarise(rows), "clean": clean_baselines(rows)}


# ---------------------------------------------------------------- metrics

def dev_curve(run: Run) -> tuple[list[int], list[float]]:
    """Dev accuracy at each evaluation recorded while the run trained (step-sorted)."""
    points = {int(r["step"]): float(r["value"]) for r in run.metrics()
              if r.get("split") == "dev" and r.get("name") == "accuracy"}
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def area_under_curve(steps: list[int], values: list[float]) -> float | None:
    """Trapezoid area under accuracy-vs-step, divided by the steps it spans: the mean accuracy along the run."""
    if not steps:
        return None
    if len(steps) == 1:
        return float(values[0])
    return float(np.trapezoid(values, steps) / (steps[-1] - steps[0]))


def steps_to_reach(steps: list[int], values: list[float], target: float | None) -> int | None:
    """The first evaluated step whose accuracy is at least `target`; None if it never gets there."""
    if target is None:
        return None
    return next((s for s, v in zip(steps, values) if v >= target), None)


def _row(child: Run, clean_final: dict[int, dict]) -> dict[str, Any]:
    config, results, status = child.config, child.results, child.status
    cell = config.get("recovery", {})
    steps, values = dev_curve(child)
    done = status.get("status") == "done"
    final = results.get("dev_accuracy") if done else None
    seed = config.get("seed")
    base = clean_final.get(seed, {})
    clean_acc = base.get("dev_accuracy")
    target = TARGET_SHARE * clean_acc if clean_acc is not None else None
    return {"run_id": child.id, "label": cell.get("label"), "position": cell.get("position"),
            "layers": cell.get("k"), "layer_set": cell.get("layers"), "embeddings": cell.get("embeddings"),
            "kind": (config.get("corruption") or {}).get("kind", "none"), "seed": seed,
            "status": status.get("status"), "steps": status.get("step"), "total_steps": status.get("total_steps"),
            "final_accuracy": final, "clean_accuracy": clean_acc,
            "recovery_ratio": final / clean_acc if final is not None and clean_acc else None,
            "auc": area_under_curve(steps, values) if done else None,
            "steps_to_95": steps_to_reach(steps, values, target) if done else None,
            "advglue_sst2_accuracy": results.get("advglue_sst2_accuracy") if done else None,
            "clean_advglue_sst2_accuracy": base.get("advglue_sst2_accuracy"),
            "index": cell.get("index")}


def children(store: RunStore, grid: Run) -> list[Run]:
    """The grid's cell runs in the order they ran."""
    runs = [store.get(r["id"]) for r in store.list(parent=grid.id)]
    return sorted(runs, key=lambda r: r.config.get("recovery", {}).get("index", 0))


def grid_rows(store: RunStore, grid: Run) -> list[dict[str, Any]]:
    """One row per cell run that exists so far (clean baselines included), with its recovery metrics."""
    runs = children(store, grid)
    clean_final = {r.config.get("seed"): r.results for r in runs
                   if r.config.get("recovery", {}).get("position") == "clean" and r.status.get("status") == "done"}
    return [_row(r, clean_final) for r in runs]


def clean_baselines(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The clean baseline of each seed: run id, dev and AdvGLUE accuracy."""
    return {str(r["seed"]): {"run_id": r["run_id"], "final_accuracy": r["final_accuracy"],
                             "advglue_sst2_accuracy": r["advglue_sst2_accuracy"], "status": r["status"]}
            for r in rows if r["position"] == "clean"}


SUMMARY_METRICS = ("final_accuracy", "recovery_ratio", "auc", "steps_to_95", "advglue_sst2_accuracy")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation over seeds of each metric, per cell label (finished runs only).

    `steps_to_95` is averaged over the seeds that reached 95 %; `reached_95` counts them.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["status"] == "done":
            groups.setdefault(row["label"], []).append(row)
    out = []
    for label, members in groups.items():
        first = members[0]
        entry: dict[str, Any] = {"label": label, "position": first["position"], "layers": first["layers"],
                                 "embeddings": first["embeddings"], "seeds": len(members)}
        for metric in SUMMARY_METRICS:
            values = [m[metric] for m in members if m[metric] is not None]
            entry[f"{metric}_mean"] = float(np.mean(values)) if values else None
            entry[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        entry["reached_95"] = sum(m["steps_to_95"] is not None for m in members)
        out.append(entry)
    return out


# ---------------------------------------------------------------- inside the models: CKA and drift

def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same N items (N x D1, N x D2): 1 = same up to rotation/scale."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")


def hidden_states(model, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 32) -> list[np.ndarray]:
    """Token vectors (padding dropped) at the embeddings output and after each layer: L+1 arrays of (T, H)."""
    import torch

    from engine.data import TextDataset, encode_dataset, iter_batches

    device = next(model.parameters()).device
    encoded = encode_dataset(tokenizer, TextDataset("probe", texts, [0] * len(texts)), max_length)
    batches = [np.arange(i, min(i + batch_size, len(texts))) for i in range(0, len(texts), batch_size)]
    chunks: list[list[np.ndarray]] = []
    model.eval()
    with torch.no_grad():
        for batch in iter_batches(encoded, batches, tokenizer.pad_token_id, device):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        output_hidden_states=True)
            keep = batch["attention_mask"].bool()
            chunks.append([h[keep].float().cpu().numpy() for h in out.hidden_states])
    return [np.concatenate(layer) for layer in zip(*chunks)]


def _group(name: str) -> str:
    if ".embeddings." in f".{name}":
        return "embeddings"
    if ".layer." in name:
        return f"layer {int(name.split('.layer.')[1].split('.')[0])}"
    return "head"


def weight_drift(start, trained) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per group (embeddings, layer 0..L-1, head): ||theta_trained - theta_start|| and that over ||theta_start||."""
    before = dict(start.named_parameters())
    squares: dict[str, list[float]] = {}
    for name, param in trained.named_parameters():
        if name not in before:
            continue
        a = before[name].detach().float().cpu()
        b = param.detach().float().cpu()
        entry = squares.setdefault(_group(name), [0.0, 0.0])
        entry[0] += float((b - a).pow(2).sum())
        entry[1] += float(a.pow(2).sum())
    order = sorted(squares, key=lambda g: (g != "embeddings", g == "head",
                                           int(g.split()[1]) if g.startswith("layer") else 0))
    absolute = np.array([math.sqrt(squares[g][0]) for g in order])
    relative = np.array([math.sqrt(squares[g][0]) / math.sqrt(squares[g][1]) if squares[g][1] > 0 else np.nan
                         for g in order])
    return order, absolute, relative


def starting_point(config: dict[str, Any], num_labels: int):
    """Rebuild a run's model as it was before its first step: pretrained encoder, seeded head, corruption."""
    from engine.corruption import corrupt
    from engine.models import build_classifier

    model = build_classifier(config["model"], num_labels, config["seed"])
    if config.get("corruption"):
        corrupt(model, config["corruption"])
    return model


def probe_texts(config: dict[str, Any]) -> list[str]:
    """A fixed sample of the run's dev set whose hidden states CKA compares (the same for every cell)."""
    from engine.data import DEV_SET, load_dataset, split_train_dev

    dataset = config["dataset"]
    if dataset.startswith("csv:"):
        dev = split_train_dev(load_dataset(dataset), config.get("dev_fraction", 0.1), config["seed"])[1]
    else:
        dev = load_dataset(DEV_SET.get(dataset, dataset))
    return dev.sample(PROBE_SIZE, 0).texts


def analyse_cell(run: Run, clean: Run | None) -> dict[str, np.ndarray]:
    """Per-layer CKA with the clean fine-tuned model (after and before fine-tuning) and weight drift; saved
    as the run's `recovery` artifact. Without a finished clean run of the same seed, drift only."""
    from engine.device import pick_device
    from engine.models import load_trained

    device = pick_device(run.config.get("device", "auto"))
    model, tokenizer, _ = load_trained(run.dir, device)
    start = starting_point(run.config, model.config.num_labels).to(device)
    groups, absolute, relative = weight_drift(start, model)
    arrays: dict[str, np.ndarray] = {"drift_groups": np.array(groups), "drift": absolute, "drift_relative": relative}
    if clean is not None:
        texts = probe_texts(run.config)
        length = run.config.get("max_length", 128)
        reference = hidden_states(load_trained(clean.dir, device)[0], tokenizer, texts, length)
        after = hidden_states(model, tokenizer, texts, length)
        before = hidden_states(start, tokenizer, texts, length)
        arrays.update(layer_names=np.array(["embeddings"] + [f"layer {i}" for i in range(len(after) - 1)]),
                      cka=np.array([linear_cka(a, c) for a, c in zip(after, reference)]),
                      cka_start=np.array([linear_cka(b, c) for b, c in zip(before, reference)]),
                      probe_tokens=np.array(len(reference[0])), clean_run=np.array(clean.id))
    run.write_artifact("recovery", arrays)
    return arrays


# ---------------------------------------------------------------- what a page needs

@dataclass
class GridView:
    """Everything a page shows about one grid, read from the run store (works while it still runs)."""
    grid: Run
    spec: GridSpec
    num_layers: int
    status: dict[str, Any]
    cells: list[dict[str, Any]]                 # every planned cell with its run's progress, if it started
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
    for index, cell in enumerate(cells_of(config)):
        child = by_index.get(index)
        if child is None:
            state = "waiting" if grid_status in ("queued", "running") else "not run"
            cells.append({**cell.to_dict(), "index": index, "run_id": None, "status": state,
                          "step": 0, "total_steps": None, "dev_accuracy": None})
        else:
            status = child.status
            curve = dev_curve(child)
            cells.append({**cell.to_dict(), "index": index, "run_id": child.id, "status": status.get("status"),
                          "step": status.get("step", 0), "total_steps": status.get("total_steps"),
                          "dev_accuracy": curve[1][-1] if curve[1] else None,
                          "final_accuracy": row_of[child.id]["final_accuracy"]})
    return GridView(grid=grid, spec=GridSpec.from_dict(config), num_layers=config.get("num_layers", 0),
                    status=grid.status, cells=cells, rows=rows, summary=summarise(rows),
                    curves={r.id: dev_curve(r) for r in runs},
                    analysis={r.id: a for r in runs if (a := r.artifact("recovery"))})


def list_grids(store: RunStore) -> list[dict[str, Any]]:
    """Index rows of every recovery grid, newest first."""
    return store.list(kind="recover")


# ---------------------------------------------------------------- aggregates over seeds, for the charts

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
    """For each k with both a bottom and a top cell (same embeddings choice): which one recovered less.

    `worse` is the position with the lower mean `metric` (ties: "neither"); the paper expects "bottom".
    """
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
                    "seeds": min(bottom["seeds"], top["seeds"])})
    return out


def baseline_warning(view: GridView, margin: float = 0.1) -> str | None:
    """A message when the clean baselines barely beat chance: then no recovery ratio means anything."""
    import json

    clean = [r for r in view.rows if r["position"] == "clean" and r["final_accuracy"] is not None]
    if not clean:
        return None
    try:
        labels = len(json.loads((view.grid.dir.parent / clean[0]["run_id"] / "model" / "config.json")
                                .read_text())["id2label"])
    except (OSError, KeyError, ValueError):
        labels = 2
    mean = float(np.mean([r["final_accuracy"] for r in clean]))
    if mean >= 1 / labels + margin:
        return None
    return (f"The clean baseline reached only {mean:.3f} dev accuracy (chance is {1 / labels:.2f}): it did not learn "
            f"the task in this budget, so recovery ratios and the bottom-versus-top comparison mean nothing. Give it "
            f"more steps or a higher learning rate (with 1,000 SST-2 examples and one epoch, MiniLM needs about batch "
            f"16 and learning rate 1e-4).")
