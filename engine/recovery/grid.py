"""The corruption-then-recovery experiment: a grid of corrupted fine-tuning runs and what they show.

A grid is one `recover` run. Its job hands the cells to an executor (`engine.execution.executor`): on this machine they
run one after another in its own worker process (it holds the single job slot, so it never waits on runs it
started itself), for each seed first the clean baseline, then every corrupted cell; on a Ray cluster each cell
is a task on some node. Each cell is an ordinary `train` run with `corruption` set and `parent` = the grid,
so its dev-accuracy curve is recorded every `eval_every` steps while it trains, and the Runs page, evaluation
and attacks work on it as on any other run. After a cell finishes (and the clean run of its seed), the
job records per-layer CKA against the clean model of the same seed and per-layer weight drift from the
corrupted starting point (artifact `recovery`). Cancelling the grid stops the running cell (its curve so
far is kept), starts no more, and keeps every finished cell.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.execution.executor import ExecutorSpec, Item, Work, reserve
from engine.execution.executors import make_executor
from engine.execution.jobs import execute
from engine.limits import MAX_SEED, MAX_SEEDS
from engine.models.corruption import INITS, KINDS, CorruptionError, check_spec, group_layers, model_layer_count
from engine.models.folder import check_model_folder
from engine.recovery.analysis import analyse_cell
from engine.recovery.metrics import clean_baselines, grid_rows, summarise_by_label
from engine.store.runs import Run, RunStore
from engine.training.config import TrainConfig, default_lr
from engine.user_text import quoted

if TYPE_CHECKING:
    from engine.execution.executor import ExecutorSpec, Work

GRID_POSITIONS: dict[str, str] = {
    "bottom": "the k layers next to the embeddings",
    "top": "the k layers next to the classifier",
    "custom": "a set of layers you pick",
    "embeddings": "the embeddings only (no encoder layer)",
}
MAX_CELLS = 120


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

    def corruption_spec(self, spec: GridSpec) -> dict[str, Any] | None:
        """The `TrainConfig.corruption` of this cell (None for the clean baseline), seeded by the cell's seed."""
        if self.clean:
            return None
        return {"layers": list(self.layers), "embeddings": self.embeddings, **spec.corruption_fields(),
                "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "k": self.k, "layers": list(self.layers),
                "embeddings": self.embeddings, "seed": self.seed, "label": self.label}



# Fine-tuning budgets the grid form offers (training examples, epochs): "does not fully recover" is read at the end
# of the budget, so a longer one separates "recovers slowly" from "does not recover". The first is GridSpec's
# default (the budget MiniLM's clean model converges in, docs/defaults.md); the others are RobustLab's choice of
# about 4x and 16x as many optimiser steps at batch 32 (504 and 2,000 against 126).
BUDGETS = {
    "default": (2000, 2),
    "4x longer": (2000, 8),
    "16x longer": (8000, 8),
}


def budget_steps(train_size: int | None, epochs: int, batch_size: int) -> int | None:
    """Optimiser steps of one run of the grid (the training loop's ceil(examples / batch) x epochs); None for the
    whole training set, whose size the grid does not know before it loads it."""
    if train_size is None:
        return None
    return math.ceil(train_size / batch_size) * epochs

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
    init: str = "kaiming-normal"      # reinit: how weight matrices are re-drawn (engine.models.corruption.INITS)
    seeds: list[int] = field(default_factory=lambda: [0])
    train_size: int | None = 2000     # 2,000 x 2 at MiniLM's default rate: clean dev 0.845 (seed 0); 2,000 x 1
    epochs: int = 2                   # stays under 0.80 at every rate tried (docs/defaults.md)
    batch_size: int = 32
    lr: float | None = None           # None: the model's default rate (engine.training.config.default_lr)
    eval_every: int = 8               # steps between dev evaluations: the points of the recovery curves
    dev_size: int | None = 400        # dev examples per evaluation (a fixed sample; keeps evaluations cheap)
    max_length: int = 128
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.lr is None:   # written as the number, so the grid's config records the rate used
            self.lr = default_lr(self.model)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GridSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def corruption_fields(self) -> dict[str, Any]:
        kind = self.corruption_kind
        return {"kind": kind, **({"init": self.init} if kind == "reinit" else {}),
                **({"scale": self.scale} if kind == "noise" else {}),
                **({"fraction": self.fraction} if kind == "zero" else {})}

    def check(self, num_layers: int) -> None:
        """Refuse an impossible grid before anything is queued; all problems in one message."""
        problems: list[str] = []
        unknown = [p for p in self.positions if p not in GRID_POSITIONS]
        if unknown:
            problems.append(f"unknown position {quoted(unknown[0])}; choose from {', '.join(GRID_POSITIONS)}")
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
        if len(self.seeds) > MAX_SEEDS:
            problems.append(f"{len(self.seeds):,} seeds; a grid takes at most {MAX_SEEDS}")
        if any(not 0 <= int(seed) <= MAX_SEED for seed in self.seeds):
            problems.append(f"seeds must be whole numbers in 0..{MAX_SEED:,}")
        if len(set(self.seeds)) != len(self.seeds):
            problems.append("each seed should appear once")
        if self.corruption_kind not in KINDS:
            problems.append(f"corruption kind must be one of {', '.join(KINDS)} (got {quoted(self.corruption_kind)})")
        elif self.corruption_kind == "reinit" and self.init not in INITS:
            problems.append(f"re-initialisation must be one of {', '.join(INITS)} (got {quoted(self.init)})")
        elif self.corruption_kind == "noise" and not 0 < self.scale < math.inf:
            problems.append(f"noise scale must be > 0 and finite (got {self.scale:g})")
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
        return TrainConfig(dataset=self.dataset, model=self.model, method="vanilla", train_size=self.train_size,
                           epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=cell.seed,
                           max_length=self.max_length, eval_every=self.eval_every, dev_size=self.dev_size,
                           device=self.device, corruption=cell.corruption_spec(self))


def grid_config(spec: GridSpec, where: ExecutorSpec | None = None) -> dict[str, Any]:
    """Check a grid and return the config its `recover` run stores (with the model's layer count and where its
    cells run; default: this machine)."""
    check_model_folder(spec.model)   # remote code, pickle weights, too large: refused before the layers are read
    num_layers = model_layer_count(spec.model)
    spec.check(num_layers)
    where = where or ExecutorSpec()
    where.check()
    cells = spec.cells(num_layers)
    return {**spec.to_dict(), "num_layers": num_layers, "cells": [c.to_dict() for c in cells],
            "seed": spec.seeds[0] if len(spec.seeds) == 1 else None, "executor": where.to_dict()}



def cells_of(config: dict[str, Any]) -> list[Cell]:
    return [Cell(c["position"], c["k"], tuple(c["layers"]), c["embeddings"], c["seed"])
            for c in config.get("cells", [])]


# ---------------------------------------------------------------- the job

def _prepare_cell(store: RunStore, grid: Run, spec: GridSpec, cell: Cell, index: int) -> Work:
    """Record one cell as a child run of the grid (the grid's process, just before the cell starts)."""
    from engine.training.train import environment

    child = reserve(store, {**spec.train_config(cell).to_dict(), "environment": environment(),
                            "recovery": {**cell.to_dict(), "grid": grid.id, "index": index}},
                    kind="train", parent=grid.id)
    grid.log(f"cell {index + 1}: {cell.label} seed {cell.seed} -> run {child.id}")
    return Work(GridCell(child.id), writes=[child.id], reads=[])


@dataclass(frozen=True)
class GridCell:
    """One cell as the executor runs it: its `train` run, recorded with its corruption before it starts."""
    run_id: str

    def run(self, store: RunStore, should_stop: Callable[[], bool], progress: Callable,
            note: Callable[..., None]) -> dict[str, Any]:
        """Train the cell, in whatever process runs it (the grid's, in its slot, or a Ray task on some node)."""
        results = execute(store, store.get(self.run_id), should_stop, progress, slot_held=True)
        return {"run": self.run_id, "status": results.get("status", "failed"), "error": results.get("error")}

    def lost(self, state: str, reason: str) -> dict[str, Any]:
        return {"run": self.run_id, "status": state, "error": reason}


def run_job(run: Run, should_stop: Callable[[], bool], progress: Callable | None = None) -> dict[str, Any]:
    """The `recover` job kind: hand every cell of the grid to the executor (in order here; all at once on a
    cluster), then analyse each finished cell against the clean run of its seed once that one has finished."""
    from engine.training.train import load_splits

    config = run.config
    spec = GridSpec.from_dict(config)
    cells = cells_of(config)
    store = RunStore(run.dir.parent)
    executor = make_executor(ExecutorSpec.from_config(config))   # a cluster that cannot run says so first
    first = spec.train_config(cells[0])
    steps_per_cell = math.ceil(len(load_splits(first).train) / spec.batch_size) * spec.epochs
    total = steps_per_cell * len(cells)
    states = [{"label": cell.label, "seed": cell.seed, "state": "queued"} for cell in cells]
    run.set_status(step=0, total_steps=total, cells_total=len(cells), cells_done=0, cell_states=states)
    run.log(f"recovery grid: {len(cells)} runs of {steps_per_cell} steps; {spec.corruption_kind} corruption"
            f"{f' ({spec.init})' if spec.corruption_kind == 'reinit' else ''}; "
            f"seeds {spec.seeds}")
    clean: dict[int, Run | None] = {}          # seed -> its finished clean run (None: the clean run failed)
    waiting: list[Run] = []                    # finished cells whose clean run has not finished yet
    outcomes: list[str] = []
    errors: list[str] = []

    def note(item: Item, **fields: Any) -> None:
        states[item.index].update(fields)
        run.set_status(cell_states=states)

    def finished(item: Item, fields: dict[str, Any]) -> None:
        cell = cells[item.index]
        note(item, status=fields["status"], run=fields["run"])
        outcomes.append(fields["status"])
        if fields.get("error"):
            errors.append(f"{cell.label} seed {cell.seed}: {fields['error']}")
            run.log(f"cell {cell.label} seed {cell.seed} failed: {fields['error']}")
        child = store.get(fields["run"])
        if cell.clean and fields["status"] in ("done", "failed"):
            clean[cell.seed] = child if fields["status"] == "done" else None
        if fields["status"] == "done":
            waiting.append(child)
        for done in [c for c in waiting if c.config["recovery"]["seed"] in clean]:
            waiting.remove(done)
            if not should_stop():
                try:
                    analyse_cell(done, clean[done.config["recovery"]["seed"]])
                except Exception as err:  # the run itself is fine; say why its probes are missing
                    done.log(f"recovery analysis failed: {type(err).__name__}: {err}")
        run.set_status(cells_done=outcomes.count("done"))
        if fields["status"] != "cancelled":
            run.set_status(step=(len(outcomes) - outcomes.count("cancelled")) * steps_per_cell)

    plan: list[Item] = []
    for index, cell in enumerate(cells):
        item = Item(index, f"{cell.label} seed {cell.seed}", steps_per_cell, prepare=lambda: None)
        item.prepare = partial(_prepare_cell, store, run, spec, cell, index)
        plan.append(item)
    executor.run(store, run, plan, should_stop, progress, note, finished)
    rows = grid_rows(store, run)
    stopped = should_stop() or len(outcomes) < len(cells) or "cancelled" in outcomes
    status = "cancelled" if stopped else ("failed" if outcomes and all(o == "failed" for o in outcomes) else "done")
    run.log(f"grid {status}: {outcomes.count('done')} of {len(cells)} runs finished")
    if status == "failed":
        run.set_status(error=f"every run failed; the first: {errors[0]}" if errors else "every run failed")
    return {"status": status, **({"errors": errors} if errors else {}), "cells_total": len(cells),
            "cells_done": outcomes.count("done"),
            "rows": rows, "summary": summarise_by_label(rows), "clean": clean_baselines(rows)}
