"""Recovery grids written straight into a run store, shaped as the `recover` job stores them (the grid run,
one child train run per cell with its results and dev curve), so the Healing claim and the Recovery page can
be tested on accuracies chosen by hand without training anything.

Import it as `recovery_util` (see apptest_util for why not `tests.recovery_util`)."""
from __future__ import annotations

from collections.abc import Callable

from engine.recovery.grid import GridSpec
from engine.store.runs import Run, RunStore, write_json

DEV_CHANCE = 444 / 872        # the SST-2 dev set's majority-class rate
NUM_LAYERS = 6                # MiniLM's layer count: levels up to 3 from the bottom and from the top


def fake_grid(store: RunStore, accuracy: Callable[[str, int, int], float | None], seeds: list[int],
              levels: list[int] = (1, 2, 3), positions: list[str] = ("bottom", "top"),
              status: str = "done", **budget) -> Run:
    """A recovery grid whose cell (position, k, seed) finished with dev accuracy `accuracy(position, k, seed)`
    (the clean baseline is position "clean", k 0); None there records the cell as failed."""
    spec = GridSpec(positions=list(positions), levels=list(levels), seeds=list(seeds),
                    **{"train_size": 2000, "epochs": 2, "lr": 2e-4, "batch_size": 32, **budget})
    cells = spec.cells(NUM_LAYERS)
    grid = store.create({**spec.to_dict(), "num_layers": NUM_LAYERS, "cells": [c.to_dict() for c in cells],
                         "seed": None}, kind="recover")
    for index, cell in enumerate(cells):
        child = store.create({**spec.train_config(cell).to_dict(),
                              "recovery": {**cell.to_dict(), "grid": grid.id, "index": index}},
                             kind="train", parent=grid.id)
        acc = accuracy(cell.position, cell.k, cell.seed)
        child.append_metrics([{"step": step, "split": "dev", "name": "accuracy",
                               "value": DEV_CHANCE if acc is None else DEV_CHANCE + (acc - DEV_CHANCE) * share}
                              for step, share in ((8, 0.5), (16, 1.0))])
        if acc is None:
            child.set_status("failed", error="synthetic failure")
        else:
            write_json(child.dir / "results.json", {"status": "done", "dev_set": "sst2-dev", "dev_accuracy": acc,
                                                    "chance_accuracy": DEV_CHANCE})
            child.set_status("done")
        store.update_index(child)
    grid.set_status(status)
    store.update_index(grid)
    return grid
