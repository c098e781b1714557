"""Where a suite's or a recovery grid's items run: the one seam between what an item does and where.

A job made of items (a suite's (method, seed), a grid's cell) describes each item as an `Item`: its label,
its share of the progress bar, and `prepare`, which the job's own process calls just before the item starts
(reuse decisions, creating the item's run records in the store) and which returns the `Work`: a typed task (a
suite's `SuiteItem`, a grid's `GridCell`) whose `run` executes the item's child runs, each through its job kind.
The `local` executor calls `task.run` in this process, in the slot the job holds, item after item. The `ray`
executor (`engine.execution.ray_executor`) calls the very same `task.run` in a Ray task on some node of a cluster
and brings the run folders it wrote back into the store. Methods, training, evaluation and attacks never know which
one ran them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol

from engine.execution.jobs import PartProgress
from engine.execution.kinds import Progress
from engine.store.runs import Run, RunStore, process_identity
from engine.user_text import quoted

EXECUTORS = {"local": "this machine: items one after another in the job's worker slot",
             "ray": "a Ray cluster: each item a Ray task on some node"}
SHARED_HOME_VARIABLE = "ROBUSTLAB_SHARED_HOME"
THIS_MACHINE = "this machine"
# an item's `state` (its task's, not its runs'): queued, running, retrying (lost once), finished, failed, cancelled


class ExecutorError(ValueError):
    """An executor that cannot run (unknown kind, unreachable cluster, ray missing); the message says why."""


def shared_home_default() -> bool:
    """`ROBUSTLAB_SHARED_HOME=1`: the run store sits on a filesystem every cluster node mounts at the same path."""
    return os.environ.get(SHARED_HOME_VARIABLE, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class ExecutorSpec:
    """Where a job's items run, stored in the job's config under `executor`."""
    kind: str = "local"
    address: str = "auto"          # ray: `auto`, `host:6379` or `ray://host:10001`
    shared_home: bool = field(default_factory=shared_home_default)   # ray: tasks write in place, no archives
    cpus: int = 1                  # ray: CPU threads one item uses on a cluster without GPUs

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ExecutorSpec:
        return cls(**(config.get("executor") or {"kind": "local"}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        if self.kind not in EXECUTORS:
            raise ExecutorError(f"unknown executor {quoted(self.kind)}; choose {' or '.join(EXECUTORS)}")
        if self.kind == "ray" and not self.address.strip():
            raise ExecutorError("a Ray cluster needs an address: auto, host:6379 or ray://host:10001")
        if self.cpus < 1:
            raise ExecutorError(f"each item needs at least 1 CPU (got {self.cpus})")


Note = Callable[..., None]   # note(**fields): what an item records about itself while it runs


class ItemTask(Protocol):
    """What one item does, in whatever process runs it: a module-level dataclass, so a Ray task can carry it to
    another node."""

    def run(self, store: RunStore, should_stop: Callable[[], bool], progress: Progress, note: Note) -> dict[str, Any]:
        """Execute the item's runs (each through its job kind); returns the item's fields for the job's status."""

    def lost(self, state: str, reason: str) -> dict[str, Any]:
        """The item's fields when its task never came back (state failed or cancelled)."""


@dataclass
class Work:
    """An item ready to run: its task, the runs it writes (created beforehand, brought back from a node) and the
    finished runs it reads (sent to a node that does not share the store)."""
    task: ItemTask
    writes: list[str]
    reads: list[str]


@dataclass
class Item:
    """One item of a job: shown as `label`, `steps` of the job's progress, prepared just before it starts."""
    index: int
    label: str
    steps: int
    prepare: Callable[[], Work]


class Executor(Protocol):
    def run(self, store: RunStore, parent: Run, items: list[Item], should_stop: Callable[[], bool],
            progress: Progress | None, note: Callable[..., None], finished: Callable[[Item, dict], None]) -> None:
        """Run every item (until `should_stop`); `note(item, **fields)` while one runs, `finished(item, fields)`
        once its runs are in the store."""


class LocalExecutor:
    """Items one after another in this process, in the slot the job holds (`jobs.execute(..., slot_held=True)`)."""

    def run(self, store: RunStore, parent: Run, items: list[Item], should_stop: Callable[[], bool],
            progress: Progress | None, note: Callable[..., None], finished: Callable[[Item, dict], None]) -> None:
        total = sum(item.steps for item in items)
        offset = 0
        for item in items:
            if should_stop():
                break
            parent.set_status(current=item.label, step=offset)
            work = item.prepare()
            note(item, state="running", node=THIS_MACHINE)
            outcome = work.task.run(store, should_stop, PartProgress(parent, progress, offset, total),
                                    partial(note, item))
            note(item, state="finished")
            finished(item, outcome)
            offset += item.steps


def state_text(fields: dict[str, Any]) -> str:
    """An item's task state as an overview shows it, with "(retried)" once its task was lost and submitted again."""
    return (fields.get("state") or "queued") + (" (retried)" if fields.get("retried") else "")


def reserve(store: RunStore, config: dict[str, Any], kind: str = "train", parent: str | None = None) -> Run:
    """Record a run a job will execute later; it carries the job's process id, so until then it reads as
    queued, not as a run whose worker never started."""
    run = store.create(config, kind=kind, parent=parent)
    run.set_status(**process_identity())
    return run


def discard(store: RunStore, run_id: str | None) -> None:
    """Remove a reserved run that never started (its item stopped before it), as if it had never been recorded."""
    if run_id is not None:
        store.get(run_id).set_status("cancelled")
        store.delete(run_id)
