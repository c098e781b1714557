"""Jobs: runs execute in worker processes (`python -m engine run RUN_DIR`), never in the page's thread.

A queued run is a row, not a process. `ROBUSTLAB_MAX_JOBS` slots (default 1: a 2-core machine trains one model
at a time) are `flock`s; `dispatch`, under a lock of its own, starts a worker for the oldest queued run while a
slot is free and hands the worker that slot's lock, so a killed worker frees its slot at once. It runs when a run
is submitted or cancelled, when a worker ends, and when the app reconciles the store, so nothing polls. A
foreground job (the CLI) waits for its turn in its own process. Cancel sends SIGTERM (stop at the next step,
keeping what was recorded) to the recorded worker only if it is still that process (PID and start time), and
SIGKILL once `ROBUSTLAB_CANCEL_GRACE` seconds have passed without it ending.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.execution.kinds import job_kind
from engine.paths import PROJECT_ROOT, use_project_nltk_data
from engine.store.runs import ACTIVE, Run, RunError, RunStore, process_identity, worker_alive, write_json
from engine.user_text import quoted

# a dispatched worker finds the slot lock it was handed under this file descriptor
SLOT_FD_VARIABLE = "ROBUSTLAB_SLOT_FD"
FOREGROUND_POLL_SECONDS = 1.0
# how long a dispatcher called as a worker ends waits for that worker's slot lock to be released by the system
SETTLE_SECONDS = 2.0


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


def _setting(name: str, default: str, kind: type) -> float:
    """A numeric setting from the environment; RunError naming the variable when it is not a number."""
    text = os.environ.get(name, default)
    try:
        return kind(text)
    except ValueError:
        raise RunError(f"{name}={quoted(text)} is not a number; unset it or give one "
                       f"(default {default})") from None


def max_jobs() -> int:
    """How many jobs run at once (`ROBUSTLAB_MAX_JOBS`, default 1)."""
    return max(1, int(_setting("ROBUSTLAB_MAX_JOBS", "1", int)))


def max_queued() -> int:
    """How many runs may wait for a slot at once (`ROBUSTLAB_MAX_QUEUED`, default 50); `submit` refuses more."""
    return max(1, int(_setting("ROBUSTLAB_MAX_QUEUED", "50", int)))


def cancel_grace() -> float:
    """Seconds a worker has to stop after Cancel's SIGTERM before it is killed (`ROBUSTLAB_CANCEL_GRACE`, 10)."""
    return max(0.0, _setting("ROBUSTLAB_CANCEL_GRACE", "10", float))


# ---------------------------------------------------------------- the queue

def _slot_dir(store: RunStore) -> Path:
    folder = store.home / ".slots"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def _dispatcher_lock(store: RunStore) -> Iterator[None]:
    """One dispatcher at a time per store (across processes): the queue is read and a slot handed out as one step."""
    fd = os.open(_slot_dir(store) / "dispatch.lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _free_slot(store: RunStore) -> int | None:
    """An open, locked slot file descriptor, or None when every slot is held."""
    for slot in range(max_jobs()):
        fd = os.open(_slot_dir(store) / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    return None


def waiting_runs(store: RunStore) -> list[Run]:
    """Runs waiting for a slot, oldest first: queued for the dispatcher, or a foreground job whose process still
    waits. Runs a job reserved for itself (a suite's) are not waiting: they run in that job's slot."""
    waiting = []
    for row in reversed(store.list(status="queued")):
        run = Run(store.home / row["id"])
        status = run.status
        if status.get("status") != "queued":
            continue
        if (status.get("waiting") == "dispatch" and not status.get("pid")) or \
                (status.get("waiting") == "foreground" and worker_alive(status)):
            waiting.append(run)
    return waiting


def dispatch(store: RunStore, settle: float = 0.0) -> list[str]:
    """Start a worker for each of the oldest queued runs while a slot is free; returns the runs started. A
    foreground job first in line stops it: that job takes the next slot itself. Called just after a worker ended
    (the system releases its slot's lock a moment after the process is gone), `settle` (`SETTLE_SECONDS`) tries
    again for up to that long while a queued run finds every slot held."""
    deadline = time.time() + settle
    started: list[str] = []
    while True:
        with _dispatcher_lock(store):
            more, _, blocked = _dispatch_locked(store, None)
        started += more
        if not blocked or time.time() >= deadline:
            return started
        time.sleep(0.1)


def _dispatch_locked(store: RunStore, me: Run | None) -> tuple[list[str], int | None, bool]:
    """The queue walk, under the dispatcher lock: start dispatched runs in order; when `me` (a foreground run) is
    reached with a slot free, return that slot to it. The flag says a dispatched run found no free slot."""
    started = []
    for run in waiting_runs(store):
        foreground = run.status.get("waiting") == "foreground"
        if foreground and (me is None or run.id != me.id):
            break
        slot = _free_slot(store)
        if slot is None:
            return started, None, not foreground
        if foreground:
            return started, slot, False
        try:
            _start_worker(store, run, slot)
        finally:
            os.close(slot)   # the worker holds the lock now (its copy of the descriptor)
        started.append(run.id)
    return started, None, False


def _start_worker(store: RunStore, run: Run, slot: int) -> None:
    """A worker process for `run` in a session of its own (it outlives whoever dispatched it), holding `slot`."""
    env = {**os.environ, "ROBUSTLAB_HOME": str(store.home), SLOT_FD_VARIABLE: str(slot)}
    use_project_nltk_data()
    env.setdefault("NLTK_DATA", os.environ["NLTK_DATA"])
    try:
        with open(run.dir / "worker.out", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "engine", "run", str(run.dir)], cwd=PROJECT_ROOT, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=(slot,))
    except OSError as err:
        run.set_status("failed", finished=time.time(), error=f"could not start a worker: {err}", waiting=None)
        store.update_index(run)
        return
    run.set_status(waiting=None, **process_identity(proc.pid))
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it, so it never lingers as a zombie


def submit(store: RunStore, config: dict, kind: str = "train", parent: str | None = None) -> Run:
    """Record a queued run and let the dispatcher start it when a slot is free. RunError when the queue is full;
    the kind's own `check` (a ValueError) refuses an impossible config before anything is recorded."""
    job_kind(kind).check(config)   # a kind no package declares (RunError), or a config its kind refuses
    with _dispatcher_lock(store):   # counting and recording as one step: two submits never pass the cap together
        queued = len(waiting_runs(store))
        if queued >= max_queued():
            raise RunError(f"{queued} run(s) already wait for a slot, the most ROBUSTLAB_MAX_QUEUED allows; "
                           "wait for some to finish or cancel some, then submit again")
        run = store.create(config, kind=kind, parent=parent)
        run.set_status(waiting="dispatch")
        _dispatch_locked(store, None)   # a fresh submit: no slot is being released, nothing to wait for
    return run


# ---------------------------------------------------------------- stopping

def _signal(status: dict, sig: int) -> bool:
    """Send `sig` to the run's recorded worker if it is still that process; SIGKILL takes the worker's own
    process group (a worker we started leads one) and never a group it merely belongs to. False if it is gone."""
    if not worker_alive(status):
        return False
    pid = status["pid"]
    try:
        if sig == signal.SIGKILL and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def cancel(store: RunStore, run_id: str) -> str:
    """Ask a queued or running run to stop; returns its status afterwards ("cancelling" while its worker stops).
    A worker still running `cancel_grace()` seconds after the first Cancel is killed: by a timer in this process,
    or by the next `cancel` or `reconcile` when this process ended first."""
    run = store.get(run_id)
    with _dispatcher_lock(store):   # a queued run is either started or cancelled, never both
        status = run.status
        if status.get("status") not in ACTIVE:
            return status.get("status", "unknown")
        if not worker_alive(status):
            run.set_status("cancelled", finished=time.time(), waiting=None)
            run.log("cancelled while queued")
            store.update_index(run)
            return "cancelled"
    if status.get("kill_after") is not None:
        return "cancelled" if escalate(store, run) else "cancelling"
    _signal(status, signal.SIGTERM)
    run.set_status(kill_after=time.time() + cancel_grace())
    run.log("cancel requested")
    timer = threading.Timer(cancel_grace() + 0.1, _after_grace, (store, run))
    timer.daemon = True
    timer.start()
    return "cancelling"


def escalate(store: RunStore, run: Run) -> bool:
    """Kill a worker that outlived its Cancel's grace period; True when it was killed (the run is then cancelled)."""
    status = run.status
    if status.get("status") not in ACTIVE or status.get("kill_after") is None or time.time() < status["kill_after"]:
        return False
    why = f"stopped by force: the worker did not stop within {cancel_grace():g} s of Cancel"
    if not worker_alive(status):
        return False
    run.set_status(kill_sent=why)   # before the kill: a reconcile that sees the worker gone records the same
    if not _signal(status, signal.SIGKILL):
        return False
    deadline = time.time() + 5
    while worker_alive(status) and time.time() < deadline:
        time.sleep(0.05)
    run.set_status("cancelled", finished=time.time(), error=why)
    run.log("killed: the worker did not stop after cancel")
    store.update_index(run)
    dispatch(store, settle=SETTLE_SECONDS)
    return True


def _after_grace(store: RunStore, run: Run) -> None:
    """Cancel's follow-up: kill the worker if it still runs; if it died without calling the dispatcher (a SIGTERM
    before its handler was installed), record that and let the queue move on."""
    if not escalate(store, run):
        dispatch(store, settle=SETTLE_SECONDS if store.reconcile() else 0.0)


def reconcile(store: RunStore) -> list[str]:
    """Record runs whose worker is gone as failed, kill workers that outlived a Cancel, and start queued runs on
    free slots (a worker killed from outside never called the dispatcher); returns the runs marked failed."""
    failed = store.reconcile()
    for row in store.list(status="running") + store.list(status="queued"):
        escalate(store, Run(store.home / row["id"]))
    dispatch(store, settle=SETTLE_SECONDS if failed else 0.0)   # a worker found dead may still hold its slot
    return failed


# ---------------------------------------------------------------- running a job

def _wait_for_slot(store: RunStore, run: Run, should_stop: Callable[[], bool]) -> int | None:
    """A foreground job's turn: the open slot lock once every older waiting run has started, or None if stopped."""
    run.set_status(waiting="foreground")
    while not should_stop():
        with _dispatcher_lock(store):
            _, slot, _ = _dispatch_locked(store, run)
        if slot is not None:
            run.set_status(waiting=None)
            return slot
        time.sleep(FOREGROUND_POLL_SECONDS)
    return None


def execute(store: RunStore, run: Run, should_stop: Callable[[], bool],
            progress: Callable[..., None] | None = None, slot_held: bool = False, slot: int | None = None) -> dict:
    """Run one job to its end in this process: take a slot, run it as its kind runs, record the outcome.

    `slot_held`: a job made of other jobs (a recovery grid, a suite) runs its parts in the slot it holds.
    `slot`: the slot lock a dispatched worker was handed; without either, this process waits for its turn.
    """
    run.set_status(**process_identity())
    if not slot_held and slot is None:
        slot = _wait_for_slot(store, run, should_stop)
        if slot is None:
            run.set_status("cancelled", finished=time.time(), waiting=None)
            run.log("cancelled while queued")
            store.update_index(run)
            return {"run_id": run.id, "status": "cancelled"}
    try:
        config = run.config
        kind = job_kind(config.get("kind", "train"))
        run.set_status("running", started=time.time())
        store.update_index(run)
        results = kind.run(run, should_stop, progress)
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
    if slot is not None:
        dispatch(store, settle=SETTLE_SECONDS)   # the slot is free (or about to be): the next queued run starts
    return results


def worker_main(run_dir: str) -> int:
    """Entry point of `python -m engine run RUN_DIR`: a worker the dispatcher started, holding the slot it was
    handed. A run cancelled before its worker got going ends here."""
    path = Path(run_dir).resolve()
    store = RunStore(path.parent)
    flag = StopFlag().install()
    slot = os.environ.pop(SLOT_FD_VARIABLE, None)
    slot_fd = int(slot) if slot and slot.isdigit() else None
    with _dispatcher_lock(store):   # free once the dispatcher that started this worker has recorded it
        pass
    run = store.get(path.name)
    if run.status.get("status") != "queued":
        if slot_fd is not None:
            os.close(slot_fd)
            dispatch(store, settle=SETTLE_SECONDS)
        return 0
    results = execute(store, run, flag, slot=slot_fd)
    return 0 if results.get("status") in ("done", "cancelled") else 1
