"""The Ray executor's fault paths without a cluster: an item's task that raises fails that item at once (no
second try), a task lost once is submitted again and finishes, a task lost twice fails its item, and stopping
turns a lost task into a cancelled item. Only `ray` itself is a stand-in (it raises Ray's real exception
classes); the executor's retry logic, its events and the closing of the item's runs are the real code."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ray import exceptions

from engine.execution.executor import ExecutorSpec, Item, Work
from engine.execution.ray_executor import RayExecutor
from engine.store.runs import Run, RunStore

pytestmark = pytest.mark.timeout(60)
Outcome = Exception | str   # what one submission of the task does: raise this, "ok", or "hang" until cancelled


class ScriptedRay:
    """Ray as the executor uses it (remote, options, get, cancel, shutdown); the n-th submission of the task
    plays the n-th outcome of the script. A hanging task raises Ray's TaskCancelledError once cancelled."""

    def __init__(self, script: list[Outcome]) -> None:
        self.script, self.submissions, self.cancelled = list(script), 0, threading.Event()

    def remote(self, _function: Any) -> ScriptedRay:   # ray.remote(item_task) -> the task
        return self

    def options(self, **_: Any) -> ScriptedTask:
        return ScriptedTask(self)

    def get(self, ref: Any) -> Any:
        if ref == "hang":
            self.cancelled.wait(timeout=30)
            ref = exceptions.TaskCancelledError()
        if isinstance(ref, Exception):
            raise ref
        return ref

    def cancel(self, *_: Any, **__: Any) -> None:
        self.cancelled.set()

    def shutdown(self) -> None:
        pass


class ScriptedTask:
    def __init__(self, ray: ScriptedRay) -> None:
        self.ray = ray

    def remote(self, *_: Any) -> Iterator[Any]:
        if self.ray.submissions == len(self.ray.script):
            raise AssertionError("the task was submitted more often than the script plays")
        outcome = self.ray.script[self.ray.submissions]
        self.ray.submissions += 1
        return iter(["node 127.0.0.1", {"answer": 42}] if outcome == "ok" else [outcome])


class LosableTask:
    """An item task whose work the stand-in never runs; when lost, its fields say how."""

    def run(self, *_):
        return {}

    def lost(self, state, reason):
        return {"state": state, "reason": reason}


def run_one_item(run_home, script: list[Outcome], stop: bool = False) -> tuple[ScriptedRay, dict, list, Run]:
    """One item writing one reserved run, through the executor's `run`; returns the stand-in, what `finished`
    got, every note, and the item's run. `stop`: the job is stopped once the item's task is submitted."""
    store = RunStore(run_home)
    parent = store.create({"method": "suite"}, kind="suite")
    child = store.create({"method": "vanilla"}, parent=parent.id)
    ray = ScriptedRay(script)
    executor = RayExecutor(ExecutorSpec(kind="ray", shared_home=True), ray, gpus=False)
    work = Work(task=LosableTask(), writes=[child.id], reads=[])
    item = Item(index=0, label="vanilla seed 0", steps=1, prepare=lambda: work)
    got, notes = {}, []
    executor.run(store, parent, [item], lambda: stop and ray.submissions > 0, None,
                 lambda _item, **fields: notes.append(fields), lambda _item, fields: got.update(fields))
    return ray, got, notes, store.get(child.id)


def task_error(cause: Exception) -> exceptions.RayTaskError:
    return exceptions.RayTaskError("item_task", "Traceback (most recent call last): ...", cause)


def test_an_item_whose_task_raises_fails_at_once_with_the_cause(run_home):
    ray, got, notes, child = run_one_item(run_home, [task_error(ModuleNotFoundError("No module named 'torch'"))])
    assert ray.submissions == 1, "an exception inside the task is not retried: a second try would raise it again"
    assert got == {"state": "failed",
                   "reason": "the task failed on the cluster: ModuleNotFoundError: No module named 'torch'"}
    assert child.status["status"] == "failed" and "No module named 'torch'" in child.status["error"]
    assert not any(n.get("retried") for n in notes)


def test_a_fault_of_the_driver_itself_fails_the_item_instead_of_hanging_the_job(run_home):
    ray, got, _, child = run_one_item(run_home, [])
    assert got == {"state": "failed", "reason": "following the task failed: AssertionError: the task was submitted "
                                                "more often than the script plays"}
    assert child.status["status"] == "failed"


def test_a_task_lost_once_is_submitted_again_and_finishes(run_home, monkeypatch):
    monkeypatch.setattr("engine.execution.ray_executor.time.sleep", lambda _: None)
    ray, got, notes, _ = run_one_item(run_home, [exceptions.WorkerCrashedError(), "ok"])
    assert ray.submissions == 2
    assert got == {"answer": 42}
    assert {"state": "retrying", "retried": True, "node": None, "lost": "WorkerCrashedError"} in notes
    assert notes[-1] == {"state": "finished"}


@pytest.mark.parametrize("lost", [exceptions.WorkerCrashedError(), exceptions.NodeDiedError("node gone"),
                                  exceptions.ActorDiedError()])
def test_a_task_lost_twice_fails_its_item_not_a_third_time(run_home, monkeypatch, lost):
    monkeypatch.setattr("engine.execution.ray_executor.time.sleep", lambda _: None)
    ray, got, _, child = run_one_item(run_home, [lost, lost, "ok"])
    assert ray.submissions == 2
    assert got == {"state": "failed", "reason": f"the task was lost twice ({type(lost).__name__})"}
    assert child.status["status"] == "failed"


def test_a_task_lost_while_stopping_reads_cancelled(run_home, monkeypatch):
    monkeypatch.setattr("engine.execution.ray_executor.time.sleep", lambda _: None)
    ray, got, _, child = run_one_item(run_home, ["hang", "ok"], stop=True)
    assert ray.submissions == 1
    assert got == {"state": "cancelled", "reason": "the task was cancelled"}
    assert child.status["status"] == "cancelled"
