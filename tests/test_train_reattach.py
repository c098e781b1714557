"""The Train page after a browser refresh (a fresh session): the run it started is in the page's address, so
the page follows it again; with none there, it offers the newest run still training instead of listing it as a
static "running" badge. The progress text reads the same records as the curves."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from apptest_util import no_exception, page, texts

from engine.store.runs import Run, RunStore
from engine.training.config import TrainConfig


@pytest.fixture
def training(run_home) -> Iterator[Run]:
    """A run in the middle of training: its worker (a stand-in process) is alive, its status last said step 5
    of 10, and its records (the curves) have reached a dev evaluation at step 8."""
    store = RunStore()
    run = store.create(TrainConfig(model="tiny", train_size=40, batch_size=4, epochs=1).to_dict())
    worker = subprocess.Popen(["sleep", "120"])
    try:
        run.set_status("running", pid=worker.pid, step=5, total_steps=10, started=time.time() - 80,
                       train_loss=0.69)
        store.update_index(run)
        run.append_metrics([{"step": 5, "split": "train", "name": "loss", "value": 0.69},
                            {"step": 8, "split": "dev", "name": "accuracy", "value": 0.55}])
        yield run
    finally:
        worker.kill()
        worker.wait()


def progress_texts(at) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_a_refreshed_page_follows_the_run_in_its_address(training):
    at = page("train.py")
    at.query_params["run"] = training.id        # what the page put in the address when it started the run
    no_exception(at.run())
    assert at.button(key=f"cancel-{training.id}")               # the live panel, not a static badge
    assert not any("Also queued or running" in m for m in texts(at, "markdown"))
    assert [t.split(" · ")[0] for t in progress_texts(at)] == ["step 8 / 10"]   # where the curves are


def test_a_fresh_page_offers_the_run_still_training(training):
    at = no_exception(page("train.py").run())
    assert not at.get("progress")
    assert any(training.id in i and "still training" in i for i in texts(at, "info"))
    at.button(key="train-follow").click().run()
    assert no_exception(at).button(key=f"cancel-{training.id}")
    assert at.query_params["run"] == training.id


def test_an_address_naming_no_run_is_ignored(run_home):
    at = page("train.py")
    at.query_params["run"] = "../../etc"
    no_exception(at.run())
    assert not at.warning and not at.get("progress")
    assert any("press **Train**" in i for i in texts(at, "info"))


def test_starting_a_run_puts_it_in_the_address(run_home, monkeypatch):
    from queue_util import slots_held

    from engine.execution import jobs

    monkeypatch.setenv("ROBUSTLAB_MAX_JOBS", "1")
    at = no_exception(page("train.py").run())
    at.radio(key="train-model").set_value("tiny")
    at.number_input(key="train-size").set_value(32)
    at.number_input(key="train-batch").set_value(16)
    with slots_held(run_home, 1):             # the run waits for a slot, and is cancelled before it gets one
        at.button(key="train-start").click().run()
        run_id = no_exception(at).session_state["train-run-id"]
        assert at.query_params["run"] == run_id
        jobs.cancel(RunStore(), run_id)


def test_the_estimate_shrinks_while_a_run_is_quiet_and_says_when_it_last_moved():
    from app.formatting import progress_text

    status = {"status": "running", "step": 5, "total_steps": 10, "started": 1000.0, "train_loss": 0.69}
    soon = progress_text(status, 8, 10, reached=1080.0, now=1085.0)
    assert soon == ("step 8 / 10 · loss 0.6900 · 1m 25s elapsed, about 15s to go (plus the final evaluation)")
    later = progress_text(status, 8, 10, reached=1080.0, now=1300.0)
    assert "should finish any moment" in later and later.endswith("last update 3m 40s ago")
