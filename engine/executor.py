"""Where a suite's or a recovery grid's items run: the one seam between what an item does and where.

A job made of items (a suite's (method, seed), a grid's cell) describes each item as an `Item`: its label,
its share of the progress bar, and `prepare`, which the job's own process calls just before the item starts
(reuse decisions, creating the item's run records in the store) and which returns the `Work`: a module-level
function and its arguments. The `local` executor calls that function in this process, in the slot the job
holds, item after item (the behaviour RobustLab always had). The `ray` executor (`engine.ray_executor`) calls
the very same function in a Ray task on some node of a cluster and brings the run folders it wrote back into
the store. Methods, training, evaluation and attacks never know which one ran them.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol

from engine.runs import Run, RunStore, process_identity
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


Progress = Callable[[int, int, float], None]
Note = Callable[..., None]   # note(**fields): what an item records about itself while it runs


@dataclass
class Work:
    """What one item does: `function(store, payload, should_stop, progress, note) -> fields`, module-level so a
    Ray task can call it on another node. `writes`: the runs it writes (created beforehand, brought back from a
    node); `reads`: finished runs it needs (sent to a node that does not share the store). `lost(state, reason)`:
    the item's fields when its task never came back (state failed or cancelled)."""
    function: Callable[[RunStore, dict, Callable[[], bool], Progress, Note], dict[str, Any]]
    payload: dict[str, Any]
    writes: list[str]
    reads: list[str]
    lost: Callable[[str, str], dict[str, Any]]


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
        from engine.jobs import PartProgress

        total = sum(item.steps for item in items)
        offset = 0
        for item in items:
            if should_stop():
                break
            parent.set_status(current=item.label, step=offset)
            work = item.prepare()
            note(item, state="running", node=THIS_MACHINE)
            outcome = work.function(store, work.payload, should_stop, PartProgress(parent, progress, offset, total),
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


def make_executor(spec: ExecutorSpec) -> Executor:
    """The executor a job's config names; `ray` connects to its cluster here (ExecutorError when it cannot)."""
    spec.check()
    if spec.kind == "local":
        return LocalExecutor()
    from engine.ray_executor import RayExecutor

    return RayExecutor.connect(spec)
