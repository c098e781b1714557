"""Jobs: runs execute in worker processes (`python -m engine run RUN_DIR`), never in the page's thread.

A worker waits its turn for one of `ROBUSTLAB_MAX_JOBS` slots (default 1: a 2-core machine trains one
model at a time), oldest queued run first. Slots are `flock`s, so a killed worker frees its slot at
once. SIGTERM asks a worker to stop at the next step and keep what it recorded.
"""
from __future__ import annotations

import fcntl
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.paths import PROJECT_ROOT, use_project_nltk_data
from engine.runs import ACTIVE, Run, RunError, RunStore, pid_alive, write_json

# kind of run -> "module:function(run, should_stop, progress) -> results dict"
JOB_KINDS: dict[str, str] = {"train": "engine.train:run_job", "attack": "engine.attacks.batch:run_job",
                             "recover": "engine.recovery.grid:run_job", "suite": "engine.suite:run_job",
                             "behaviour": "engine.behaviour.runner:run_job"}


class StopFlag:
    """Set by SIGTERM/SIGINT (or a caller); the loops poll it between steps."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def set(self, *_: Any) -> None:
        self.stopped = True

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        return self


class PartProgress:
    """One part's progress as its parent job's (a grid's cell, a suite's run): the parent's status.json,
    throttled to once a second, and the caller's callback, both offset by the parts done before."""

    def __init__(self, parent: Run, progress: Callable | None, offset: int, total: int) -> None:
        self.parent, self.progress, self.offset, self.total = parent, progress, offset, total
        self.last = 0.0

    def __call__(self, step: int, total: int, value: float) -> None:
        now = time.time()
        if now - self.last > 1.0 or step == total:
            self.parent.set_status(step=self.offset + step, total_steps=self.total)
            self.last = now
        if self.progress:
            self.progress(self.offset + step, self.total, value)


def max_jobs() -> int:
    return max(1, int(os.environ.get("ROBUSTLAB_MAX_JOBS", "1")))


def submit(store: RunStore, config: dict, kind: str = "train", parent: str | None = None) -> Run:
    """Record a queued run and start its worker in a session of its own (it outlives the app)."""
    if kind not in JOB_KINDS:
        raise RunError(f"unknown job kind {kind!r}")
    run = store.create(config, kind=kind, parent=parent)
    env = {**os.environ, "ROBUSTLAB_HOME": str(store.home)}
    use_project_nltk_data()
    env.setdefault("NLTK_DATA", os.environ["NLTK_DATA"])
    with open(run.dir / "worker.out", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "engine", "run", str(run.dir)], cwd=PROJECT_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    run.set_status(pid=proc.pid)
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it, so it never lingers as a zombie
    return run


def cancel(store: RunStore, run_id: str) -> str:
    """Ask a queued or running run to stop; returns its status afterwards."""
    run = store.get(run_id)
    status = run.status
    if status.get("status") not in ACTIVE:
        return status.get("status", "unknown")
    pid = status.get("pid")
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        run.log("cancel requested")
        return "cancelling"
    run.set_status("cancelled", finished=time.time())
    store.update_index(run)
    return "cancelled"


def _older_queued_exists(store: RunStore, run: Run) -> bool:
    mine = run.status.get("created", 0)
    for row in store.list(status="queued"):
        if row["id"] != run.id and row["created"] < mine:
            return True
    return False


def acquire_slot(store: RunStore, run: Run, should_stop: Callable[[], bool], poll: float = 1.0) -> int | None:
    """Block until this run may start; returns the open lock file descriptor, or None if stopped first."""
    lock_dir = store.home / ".slots"
    lock_dir.mkdir(exist_ok=True)
    while not should_stop():
        if not _older_queued_exists(store, run):
            for slot in range(max_jobs()):
                fd = os.open(lock_dir / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
        time.sleep(poll)
    return None


def execute(store: RunStore, run: Run, should_stop: Callable[[], bool],
            progress: Callable[..., None] | None = None, slot_held: bool = False) -> dict:
    """Run one job to its end in this process: wait for a slot, dispatch on kind, record the outcome.

    `slot_held`: a job made of other jobs (a recovery grid, a suite) runs its parts in the slot it holds.
    """
    run.set_status(pid=os.getpid(), host=socket.gethostname())
    slot = None if slot_held else acquire_slot(store, run, should_stop)
    if slot is None and not slot_held:
        run.set_status("cancelled", finished=time.time())
        run.log("cancelled while queued")
        store.update_index(run)
        return {"run_id": run.id, "status": "cancelled"}
    try:
        config = run.config
        module, func = JOB_KINDS[config.get("kind", "train")].split(":")
        job = getattr(importlib.import_module(module), func)
        run.set_status("running", started=time.time())
        store.update_index(run)
        results = job(run, should_stop, progress)
        results = {"run_id": run.id, "status": "done", **results}   # the final status: a kill before the next
        write_json(run.dir / "results.json", results)                # line still leaves a finished run
        run.set_status(results["status"], finished=time.time())
    except Exception as err:
        run.log("failed:\n" + traceback.format_exc())
        results = {"run_id": run.id, "status": "failed", "error": f"{type(err).__name__}: {err}"}
        run.set_status("failed", finished=time.time(), error=results["error"])
    finally:
        if slot is not None:
            os.close(slot)
    store.update_index(run)
    return results


def worker_main(run_dir: str) -> int:
    """Entry point of `python -m engine run RUN_DIR`."""
    path = Path(run_dir).resolve()
    store = RunStore(path.parent)
    run = store.get(path.name)
    flag = StopFlag().install()
    results = execute(store, run, flag)
    return 0 if results.get("status") in ("done", "cancelled") else 1
