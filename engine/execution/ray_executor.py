"""The `ray` executor: each item of a suite or grid is a Ray task that runs the item's own work function on some
node, the same function the local executor calls.

Storage. The SQLite index never leaves this machine. Without a shared filesystem a task rebuilds the runs it
needs in a temporary store on its node (the reserved records, and any finished run it reads), runs the work
there, and streams the folders it wrote back as a tar, chunk by chunk through the object store; this process
unpacks them into the store (`engine.store.archive`). With `shared_home` (`ROBUSTLAB_SHARED_HOME=1`) every node
mounts the store at the same path and the task writes in place, keeping a throwaway index of its own.

Faults. A task lost with its node or worker is submitted once more (Ray places it on a node still alive) and
the item says "retried"; a second loss fails the item, not the job. An exception inside the task (a node without
the project's packages) fails the item with its reason. Stopping cancels every outstanding task; finished
items are already in the store, so a re-run reuses them as a local re-run would.
"""
from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.execution.cluster import capacity_problem, connect, node_label, summary
from engine.execution.executor import ExecutorError, ExecutorSpec, Item, Progress, Work
from engine.paths import use_project_nltk_data
from engine.store.archive import ArchiveError, chunks, extract, new_archive_file, pack, pack_bytes, receive
from engine.store.runs import ACTIVE, NODE_INDEX_VARIABLE, Run, RunStore

POLL_SECONDS = 0.5


def item_task(work: Work, inputs: bytes | None, shared_home: str | None, cpus: int) -> Iterator[Any]:
    """The body of one item's Ray task. Yields, in order: the node it runs on, the item's fields, then (without
    a shared home) the archive of the runs it wrote, in chunks."""
    import ray
    import torch


    use_project_nltk_data()
    if not torch.cuda.is_available():
        torch.set_num_threads(cpus)
    context = ray.get_runtime_context()
    yield node_label(ray.util.get_node_ip_address(), context.get_node_id())
    with tempfile.TemporaryDirectory(prefix="robustlab-item-") as tmp:
        local = Path(tmp) / "runs"
        if shared_home:
            os.environ[NODE_INDEX_VARIABLE] = str(Path(tmp) / "index.sqlite")
            try:
                yield work.task.run(RunStore(shared_home), lambda: False, _quiet, _quiet)
            finally:
                os.environ.pop(NODE_INDEX_VARIABLE, None)
            return
        archive = Path(tmp) / "in.tar"
        archive.write_bytes(inputs or b"")
        extract(archive, local, [*work.reads, *work.writes])
        yield work.task.run(RunStore(local), lambda: False, _quiet, _quiet)
        yield from chunks(pack(local, work.writes, Path(tmp) / "out.tar"))


def _quiet(*_: Any, **__: Any) -> None:
    """Progress and notes inside a task: the suite's process follows the task itself."""


@dataclass
class Event:
    """What an item's driving thread tells the job's thread (the only one that writes the job's status)."""
    item: Item
    work: Work
    kind: str                          # note, finished or lost
    fields: dict[str, Any]
    archive: Path | None = None


class RayExecutor:
    """Items as Ray tasks on the cluster this process is connected to."""

    def __init__(self, spec: ExecutorSpec, ray, gpus: bool) -> None:
        self.spec, self.ray, self.gpus = spec, ray, gpus
        self.task = ray.remote(item_task)
        self.running: dict[int, Any] = {}
        self.stopping = False

    @classmethod
    def connect(cls, spec: ExecutorSpec) -> RayExecutor:
        """Connect, and refuse a cluster that cannot run one item now (before any item starts)."""
        ray = connect(spec.address)
        offer = summary(ray)
        problem = capacity_problem(offer, spec.cpus)
        if problem:
            ray.shutdown()
            raise ExecutorError(problem)
        return cls(spec, ray, offer["gpus"] >= 1)

    def resources(self) -> dict[str, Any]:
        """One GPU per item where the cluster has GPUs (training, evaluation and attack run on it), else the
        CPU threads the item uses."""
        return {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": self.spec.cpus}

    def run(self, store: RunStore, parent: Run, items: list[Item], should_stop: Callable[[], bool],
            progress: Progress | None, note: Callable[..., None], finished: Callable[[Item, dict], None]) -> None:
        events: queue.Queue[Event] = queue.Queue()
        total = sum(item.steps for item in items)
        done_steps = 0
        threads = []
        for item in items:
            if should_stop():
                break
            work = item.prepare()
            if not work.writes:   # everything reused: only its stored evaluations are checked, here
                finished(item, work.task.run(store, should_stop, _quiet, _quiet))
                done_steps += item.steps
                continue
            note(item, state="queued", node=None, retried=False)
            inputs = None if self.spec.shared_home else pack_bytes(store.home, [*work.reads, *work.writes])
            thread = threading.Thread(target=self._drive, args=(item, work, inputs, store, events), daemon=True)
            thread.start()
            threads.append(thread)
        parent.set_status(current=f"{len(threads)} items on the Ray cluster", step=done_steps, total_steps=total)
        pending = len(threads)
        while pending:
            if should_stop() and not self.stopping:
                self.cancel()
            try:
                event = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if event.kind == "note":
                note(event.item, **event.fields)
                continue
            pending -= 1
            refused = _bring_in(store, event) if event.kind == "finished" else None
            if event.kind == "finished" and refused is None:
                note(event.item, state="finished")
                finished(event.item, event.fields)
            else:
                state = "cancelled" if self.stopping and refused is None else "failed"
                reason = refused or event.fields["reason"]
                _close_runs(store, event.work.writes, state, reason)
                note(event.item, state=state, error=reason)
                finished(event.item, event.work.task.lost(state, reason))
            done_steps += event.item.steps
            parent.set_status(step=done_steps, current=f"{pending} items on the Ray cluster" if pending else None)
            if progress:
                progress(done_steps, total, 0.0)
        for thread in threads:
            thread.join(timeout=5)
        self.ray.shutdown()   # the next job connects afresh (its own code upload)

    def cancel(self) -> None:
        """Cancel every outstanding task (queued or running); finished items stay as they are."""
        self.stopping = True
        for task in list(self.running.values()):
            self.ray.cancel(task, force=True)

    def _drive(self, item: Item, work: Work, inputs: bytes | None, store: RunStore, events: queue.Queue) -> None:
        """Submit one item's task, follow it, and submit it once more if its node or worker is lost."""
        from ray import exceptions

        shared = str(store.home) if self.spec.shared_home else None
        for attempt in (1, 2):
            try:
                task = self.task.options(**self.resources(), max_retries=0).remote(work, inputs, shared,
                                                                                    self.spec.cpus)
                self.running[item.index] = task
                node = self.ray.get(next(task))
                events.put(Event(item, work, "note", {"state": "running", "node": node}))
                fields = self.ray.get(next(task))
                archive = None
                if shared is None:
                    handle, archive = new_archive_file(store.home)
                    try:
                        with os.fdopen(handle, "wb") as out:
                            for ref in task:
                                out.write(self.ray.get(ref))
                    except BaseException:   # lost mid-stream: no half archive stays in the store
                        archive.unlink(missing_ok=True)
                        raise
                events.put(Event(item, work, "finished", fields, archive))
                return
            except exceptions.RayTaskError as err:   # the item's own code raised: no second try would help
                cause = err.cause if getattr(err, "cause", None) is not None else err
                reason = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
                events.put(Event(item, work, "lost", {"reason": f"the task failed on the cluster: {reason}"}))
                return
            except (exceptions.RayError, StopIteration) as err:   # node or worker lost, task cancelled
                if self.stopping or attempt == 2:
                    what = "cancelled" if self.stopping else f"lost twice ({type(err).__name__})"
                    events.put(Event(item, work, "lost", {"reason": f"the task was {what}"}))
                    return
                events.put(Event(item, work, "note", {"state": "retrying", "retried": True,
                                                      "node": None, "lost": type(err).__name__}))
                time.sleep(1.0)
            except Exception as err:   # a fault of this process (its disk, a bug): the item fails, the job goes on
                events.put(Event(item, work, "lost", {"reason": f"following the task failed: {type(err).__name__}: "
                                                                f"{err}"}))
                return
            finally:
                self.running.pop(item.index, None)


def _bring_in(store: RunStore, event: Event) -> str | None:
    """Bring a finished item's runs into the store: unpack its archive, or re-index what it wrote in place. Why
    its archive was refused (the runs stay as they were), or None."""
    if event.archive is None:
        for run_id in event.work.writes:
            store.sync(run_id)
        return None
    try:
        receive(store, event.archive, event.work.writes)
    except ArchiveError as err:
        return f"its runs came back in an archive that was refused: {err}"
    except OSError as err:   # the store's own disk (full, read-only): this item fails, the job goes on
        return f"its runs could not be put into the store: {err.strerror or err}"
    finally:
        event.archive.unlink(missing_ok=True)
    return None


def _close_runs(store: RunStore, run_ids: list[str], state: str, reason: str) -> None:
    """Record the runs of an item whose task never came back as failed or cancelled, with the reason."""
    for run_id in run_ids:
        store.sync(run_id)
        run = Run(store.home / run_id)
        if run.dir.exists() and run.status.get("status") in ACTIVE:
            run.set_status(state, finished=time.time(), error=reason)
            run.log(reason)
            store.update_index(run)
