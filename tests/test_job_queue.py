"""The job queue and the processes it touches: queued runs are rows started by one dispatcher, a worker is
signalled only while it is still the recorded process, Cancel ends a worker that ignores SIGTERM, run ids never
collide, and a parent is not deleted under a child still working on it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from queue_util import slots_held, wait_for

from engine.execution import jobs
from engine.store import runs
from engine.store.runs import WORKER_GONE, RunError, RunStore, process_identity, process_start, stale_reason
from engine.training.config import TrainConfig

TINY = dict(model="tiny", train_size=16, epochs=1, batch_size=16, dev_size=16, eval_every=1)


def workers_of(home: Path, active_only: bool = False) -> list[int]:
    """PIDs of worker processes (`python -m engine run RUN_DIR`) of this store; `active_only`: of runs not yet
    finished (a worker that has finished its run may still be exiting when the next one starts)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        folders = [Path(arg) for arg in cmdline if arg.startswith(str(home))]
        if "engine" in cmdline and "run" in cmdline and folders:
            if not active_only or runs.Run(folders[0]).status.get("status") in runs.ACTIVE:
                found.append(proc.info["pid"])
    return found


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A process this test started, in a session of its own, that some run will claim as its worker."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- process identity

def test_a_reused_pid_reads_as_a_dead_worker_and_is_never_signalled(run_home, sleeper):
    """The run's worker died and its PID now belongs to another process (one that started at another time)."""
    store = RunStore(run_home)
    run = store.create({"method": "vanilla"})
    identity = process_identity(sleeper.pid)
    run.set_status("running", **{**identity, "pid_started": identity["pid_started"] - 1})
    assert stale_reason(run.status) == WORKER_GONE
    assert jobs.cancel(store, run.id) == "failed"        # opening it records the dead worker; nothing is sent
    time.sleep(0.3)
    assert sleeper.poll() is None, "cancel signalled a process that is not the run's worker"
    assert store.get(run.id).status["error"] == WORKER_GONE
    store.delete(run.id)                                  # no longer "running for ever"
    assert sleeper.poll() is None


def test_the_recorded_worker_reads_as_alive(run_home, sleeper):
    store = RunStore(run_home)
    run = store.create({"method": "vanilla"})
    run.set_status("running", **process_identity(sleeper.pid))
    assert stale_reason(run.status) is None and store.get(run.id).status["status"] == "running"
    assert process_start(sleeper.pid) == run.status["pid_started"]


@pytest.mark.parametrize("escalation", ["timer", "next cancel"])
def test_cancel_kills_a_worker_that_ignores_sigterm(run_home, monkeypatch, escalation):
    """SIGTERM first; once the grace period has passed, SIGKILL: by the timer of the process that cancelled, or
    (when that process ended first, like `python -m engine cancel`) by the next cancel."""
    monkeypatch.setenv("ROBUSTLAB_CANCEL_GRACE", "1")
    if escalation == "next cancel":
        monkeypatch.setattr(jobs.threading, "Timer", lambda *args, **kwargs: threading.Thread(target=lambda: None))
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"],
                                stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert stubborn.stdout.readline().strip() == b"ready"
        store = RunStore(run_home)
        run = store.create({"method": "vanilla"})
        run.set_status("running", **process_identity(stubborn.pid))
        assert jobs.cancel(store, run.id) == "cancelling"
        time.sleep(0.5)
        assert stubborn.poll() is None and run.status["status"] == "running"   # it ignored SIGTERM
        if escalation == "next cancel":
            time.sleep(0.7)
            assert jobs.cancel(store, run.id) == "cancelled"
        wait_for(lambda: stubborn.poll() is not None, timeout=10)
        assert stubborn.returncode == -signal.SIGKILL
        wait_for(lambda: store.get(run.id).status["status"] == "cancelled", timeout=10)
        assert "did not stop within 1 s of Cancel" in store.get(run.id).status["error"]
    finally:
        stubborn.kill()
        stubborn.wait()


# ---------------------------------------------------------------- ids and deleting

def test_run_ids_never_collide_even_with_the_same_second_and_random_bits(run_home, monkeypatch):
    store = RunStore(run_home)
    drawn = iter(["aaaaaaaa", "aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(runs.time, "strftime", lambda *_: "20261207-120000")
    monkeypatch.setattr(runs.secrets, "token_hex", lambda n: next(drawn))
    first, second = store.create({"method": "vanilla"}), store.create({"method": "vanilla"})
    assert (first.id, second.id) == ("20261207-120000-vanilla-aaaaaaaa", "20261207-120000-vanilla-bbbbbbbb")
    assert first.config["run_id"] == first.id and second.config["run_id"] == second.id


def test_many_creates_in_the_same_second_give_distinct_runs(run_home, monkeypatch):
    """1,000 runs created by 4 threads within one second (by the clock the ids are made from)."""
    monkeypatch.setattr(runs.time, "strftime", lambda *_: "20261207-120000")
    store = RunStore(run_home)
    made: list[str] = []
    errors: list[BaseException] = []

    def create_many() -> None:
        try:
            for _ in range(250):
                made.append(store.create({"method": "vanilla"}).id)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=create_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(made)) == 1000
    assert {row["id"] for row in store.list()} == set(made)


def test_a_parent_is_not_deleted_while_a_child_works_on_it(run_home):
    store = RunStore(run_home)
    parent = store.create({"method": "vanilla"})
    parent.set_status("done")
    store.update_index(parent)
    child = store.create({"target": parent.id}, kind="attack", parent=parent.id)
    child.set_status("running", **process_identity())
    with pytest.raises(RunError, match=f"still working on it \\({child.id}\\); cancel them first"):
        store.delete(parent.id)
    assert parent.dir.exists()
    child.set_status("done")
    store.update_index(child)
    store.delete(parent.id)
    assert not parent.dir.exists()


# ---------------------------------------------------------------- the queue

def test_the_queue_is_capped_with_a_clear_refusal(run_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_MAX_QUEUED", "2")
    store = RunStore(run_home)
    config = TrainConfig(**TINY).to_dict()
    with slots_held(run_home):
        queued = [jobs.submit(store, config), jobs.submit(store, config)]
        with pytest.raises(RunError, match=r"2 run\(s\) already wait for a slot, the most ROBUSTLAB_MAX_QUEUED"):
            jobs.submit(store, config)
        assert len(store.list()) == 2 and all(run.status.get("pid") is None for run in queued)
        assert workers_of(run_home) == []
        assert [jobs.cancel(store, run.id) for run in queued] == ["cancelled", "cancelled"]
    assert jobs.dispatch(store) == [] and workers_of(run_home) == []
    monkeypatch.setenv("ROBUSTLAB_MAX_QUEUED", "lots")
    with pytest.raises(RunError, match="ROBUSTLAB_MAX_QUEUED='lots' is not a number"):
        jobs.submit(store, config)


@pytest.mark.slow
def test_queued_runs_are_rows_and_one_worker_runs_per_slot(run_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_MAX_JOBS", "1")
    store = RunStore(run_home)
    submitted = [jobs.submit(store, TrainConfig(**{**TINY, "seed": seed}).to_dict()) for seed in range(3)]
    with_pid = [run.id for run in submitted if run.status.get("pid")]
    assert with_pid == [submitted[0].id], "only the oldest run got a worker"
    most = 0
    while not all(run.status["status"] in ("done", "failed", "cancelled") for run in submitted):
        most = max(most, len(workers_of(run_home, active_only=True)))
        time.sleep(0.2)
    assert [run.status["status"] for run in submitted] == ["done"] * 3, [(run.status, run.log_text())
                                                                          for run in submitted]
    assert most == 1, [run.status for run in submitted]
    starts = [run.status["started"] for run in submitted]
    ends = [run.status["finished"] for run in submitted]
    assert starts == sorted(starts) and all(ends[i] <= starts[i + 1] for i in range(2)), "one at a time, oldest first"


@pytest.mark.slow
def test_a_killed_worker_frees_its_slot_for_the_next_run(run_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_MAX_JOBS", "1")
    store = RunStore(run_home)
    long = jobs.submit(store, TrainConfig(**{**TINY, "train_size": 512, "epochs": 5}).to_dict())
    short = jobs.submit(store, TrainConfig(**TINY).to_dict())
    wait_for(lambda: long.status["status"] == "running", about=lambda: f"for the first run to start: {long.status}")
    assert short.status["status"] == "queued" and not short.status.get("pid")
    os.kill(long.status["pid"], signal.SIGKILL)
    wait_for(lambda: not runs.worker_alive(long.status), timeout=10)
    jobs.reconcile(store)                         # what the app does (at start, and while it shows a queued run)
    assert store.get(long.id).status["status"] == "failed"
    wait_for(lambda: store.get(short.id).status["status"] == "done",
             about=lambda: f"for the next run: {short.status} {short.log_text()} {workers_of(run_home)}")


def test_the_train_page_says_when_the_queue_is_full(run_home, monkeypatch):
    from apptest_util import no_exception, page, texts

    monkeypatch.setenv("ROBUSTLAB_MAX_QUEUED", "1")
    at = no_exception(page("train.py").run())
    at.radio(key="train-model").set_value("tiny")
    at.number_input(key="train-size").set_value(32)
    with slots_held(run_home):
        at.button(key="train-start").click().run()
        first = no_exception(at).session_state["train-run-id"]
        at.button(key="train-start").click().run()
        assert any(e.startswith("Not started: 1 run(s) already wait for a slot") for e in texts(at, "error"))
        assert [row["id"] for row in RunStore(run_home).list()] == [first]
        assert jobs.cancel(RunStore(run_home), first) == "cancelled"


def test_a_worker_gone_after_cancel_reads_cancelled_not_failed(run_home):
    """Cancel asked, then the worker is gone before it recorded its end (killed by the Cancel's own escalation
    while a page reconciles the store at that moment): the run is cancelled, never "failed"."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(ended.pid)
    ended.wait()
    store = RunStore(run_home)
    cancelled, crashed = store.create({"method": "vanilla"}), store.create({"method": "vanilla"})
    cancelled.set_status("running", kill_after=time.time() - 1, **identity)
    crashed.set_status("running", **identity)
    assert store.get(cancelled.id).status["status"] == "cancelled"
    assert store.get(crashed.id).status["status"] == "failed"
