"""The run store, worker processes, cancel, killed workers, and the training loop's guarantees."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from queue_util import wait_for
from saved_model_util import assert_reloads_as_trained

from engine.data.registry import load_dataset
from engine.execution import jobs
from engine.store.runs import RunError, RunStore, read_json, write_json
from engine.training.config import TrainConfig
from engine.training.evaluate import evaluate_run
from engine.training.train import train

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(model="tiny", train_size=48, epochs=1, batch_size=16, dev_size=48, eval_every=1)


def test_finished_run_has_its_files_index_row_and_loadable_model(tiny_run):
    store, run = tiny_run
    for name in ("config.json", "status.json", "metrics.jsonl", "results.json", "log.txt", "model/model.safetensors"):
        assert (run.dir / name).exists(), name
    assert not list((run.dir / "model").glob("*.bin")), "weights must be safetensors only"
    row = next(r for r in store.list() if r["id"] == run.id)
    assert row["status"] == "done" and row["dev_accuracy"] == run.results["dev_accuracy"]
    names = {(m["split"], m["name"]) for m in run.metrics()}
    assert {("train", "loss"), ("dev", "accuracy"), ("advglue-sst2", "accuracy")} <= names
    model, _, method = assert_reloads_as_trained(run.dir)
    assert model.config.num_labels == 2 and method.name == "vanilla"


def test_eval_is_cached_and_matches_training_end(tiny_run, run_home):
    """Evaluating the saved model reproduces the training-end scores exactly; a second call reads the cache."""
    _, trained = tiny_run
    shutil.copytree(trained.dir, run_home / trained.id)      # a copy: tiny_run must stay as it is
    write_json(run_home / trained.id / "eval.json", {})      # nothing cached, so the first call computes
    store, sets = RunStore(run_home), ["sst2-dev", "advglue-sst2"]
    first = evaluate_run(store, trained.id, sets)
    at_end = read_json(trained.dir / "eval.json")
    for name in sets:
        assert {k: first[name][k] for k in ("accuracy", "loss", "n")} == \
            {k: at_end[name][k] for k in ("accuracy", "loss", "n")}, name
    assert first["sst2-dev"]["accuracy"] == trained.results["dev_accuracy"]
    assert first["advglue-sst2"]["accuracy"] == trained.results["advglue_sst2_accuracy"]
    assert trained.results["advglue_accuracy"] == trained.results["advglue_sst2_accuracy"]   # SST-2: its one set
    assert evaluate_run(store, trained.id, sets) == first     # same "computed" times: served from eval.json


@pytest.mark.parametrize("dev_size", [None, 16])
def test_final_dev_score_uses_the_whole_dev_set(run_home, dev_size):
    """`dev_size` samples the dev set for the evaluations during training only: the final score, in the
    results and in eval.json, is over the whole dev set."""
    config = TrainConfig(**{**TINY, "dev_size": dev_size})
    run = RunStore(run_home).create(config.to_dict())
    results = train(config, run)
    whole = len(load_dataset(results["dev_set"]))
    final = read_json(run.dir / "eval.json")[results["dev_set"]]
    assert final["n"] == whole == 872
    assert (final["accuracy"], final["loss"]) == (results["dev_accuracy"], results["dev_loss"])
    during = [m["value"] for m in run.metrics()
              if (m["split"], m["name"]) == ("dev", "accuracy") and m["step"] < results["steps"]]
    n = dev_size or whole
    assert len(during) == 2 and all(abs(v * n - round(v * n)) < 1e-9 for v in during), during   # k / n


@pytest.mark.parametrize("method", ["vanilla", "im-bert"])
@pytest.mark.slow
def test_the_loop_records_every_methods_weight_drift_per_layer(run_home, method):
    """Drift is the loop's job, not a method's: any method's run has it, one norm per encoder layer, growing
    from zero as training moves the weights."""
    store = RunStore(run_home)
    run = store.create(TrainConfig(**TINY, method=method).to_dict())
    train(TrainConfig(**TINY, method=method), run)
    drift = run.artifact("drift")
    assert drift["drift"].shape == (len(drift["step"]), 2) and len(drift["step"]) >= 2
    assert np.all(drift["drift"][-1] > 0) and np.all(np.diff(drift["step"]) > 0)


def test_same_config_and_seed_gives_same_metrics(run_home):
    a = train(TrainConfig(**TINY, seed=3))
    b = train(TrainConfig(**TINY, seed=3))
    c = train(TrainConfig(**TINY, seed=4))
    assert a["dev_accuracy"] == b["dev_accuracy"] and a["dev_loss"] == b["dev_loss"]
    assert a["dev_loss"] != c["dev_loss"]


@pytest.mark.parametrize("change, message", [
    ({"train_size": 0}, "train size"), ({"lr": -1e-5}, "learning rate"),
    ({"batch_size": 64, "train_size": 10}, "larger than"), ({"epochs": 0}, "epochs"),
    ({"method": "nope"}, "unknown method"), ({"max_length": 4}, "max length"),
])
def test_impossible_hyperparameters_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{**TINY, **change}).check()


def test_export_zip_and_delete(run_home, tiny_run):
    store, run = tiny_run
    out = store.export_zip(run.id, run_home / "x.zip")
    with zipfile.ZipFile(out) as zf:
        assert f"{run.id}/model/model.safetensors" in zf.namelist()
    fresh = RunStore(run_home)
    r = fresh.create({"method": "vanilla"})
    r.set_status("done")
    fresh.delete(r.id)
    assert not r.dir.exists() and all(row["id"] != r.id for row in fresh.list())
    with pytest.raises(RunError, match="no run"):
        fresh.get(r.id)


def test_unknown_run_id_has_clear_message(run_home):
    with pytest.raises(RunError, match="runs list"):
        RunStore(run_home).get("20990101-nothing")


@pytest.mark.slow
def test_worker_runs_queue_one_at_a_time_and_cancel(run_home):
    store = RunStore(run_home)
    config = {**TrainConfig(**{**TINY, "train_size": 256, "epochs": 3}).to_dict()}
    first = jobs.submit(store, config)
    second = jobs.submit(store, {**config, "train_size": 32, "epochs": 1})
    wait_for(lambda: first.status["status"] == "running" and first.status.get("step", 0) > 0)
    assert second.status["status"] == "queued"
    with pytest.raises(RunError, match="cancel it first"):
        store.delete(first.id)
    assert jobs.cancel(store, first.id) == "cancelling"
    wait_for(lambda: first.status["status"] == "cancelled")
    assert first.metrics(), "a cancelled run keeps what it recorded"
    wait_for(lambda: store.get(second.id).status["status"] == "done")
    assert store.get(second.id).has_model()


@pytest.mark.slow
def test_killed_worker_is_marked_failed_and_keeps_its_curves(run_home):
    store = RunStore(run_home)
    run = jobs.submit(store, TrainConfig(**{**TINY, "train_size": 512, "epochs": 5}).to_dict())
    wait_for(lambda: any(m["split"] == "train" for m in run.metrics()))
    os.kill(run.status["pid"], signal.SIGKILL)
    wait_for(lambda: store.get(run.id).status["status"] == "failed")
    assert "killed" in store.get(run.id).status["error"]
    assert any(m["split"] == "train" for m in run.metrics())
    assert next(r for r in store.list() if r["id"] == run.id)["status"] == "failed"


def test_list_shows_a_dead_workers_run_as_failed_without_writing(run_home):
    """Listing is read-only; the run is recorded as failed when it is opened."""
    store = RunStore(run_home)
    run = store.create({"method": "vanilla"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.set_status("running", pid=dead.pid)
    written = (run.dir / "status.json").read_bytes()

    def indexed() -> str:
        with sqlite3.connect(run_home / "index.sqlite") as db:
            return db.execute("select status from runs where id=?", (run.id,)).fetchone()[0]

    assert [r["status"] for r in store.list()] == ["failed"]
    assert [r["id"] for r in store.list(status="failed")] == [run.id] and store.list(status="queued") == []
    assert (run.dir / "status.json").read_bytes() == written and indexed() == "queued"
    assert store.get(run.id).status["status"] == "failed" and indexed() == "failed"


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROBUSTLAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_train_eval_runs(run_home):
    done = cli("train", "--model", "tiny", "--train-size", "32", "--epochs", "1", "--batch-size", "16", "--json",
               home=run_home)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("run_id", "status", "dev_accuracy", "advglue_sst2_accuracy", "advglue_accuracy", "seconds",
                "train_examples_per_second",
                "chance_accuracy", "learned"):
        assert key in result
    assert result["chance_accuracy"] == pytest.approx(444 / 872)       # the SST-2 dev set's majority class
    assert result["learned"] is (result["dev_accuracy"] >= result["chance_accuracy"] + 0.10)
    run_id = result["run_id"]
    ev = json.loads(cli("eval", run_id, "--sets", "sst2-dev,advglue-sst2", "--json", home=run_home).stdout)
    assert ev["results"]["sst2-dev"]["n"] == 872 and ev["results"]["advglue-sst2"]["n"] == 148
    listed = json.loads(cli("runs", "list", "--json", home=run_home).stdout)
    assert [r["id"] for r in listed] == [run_id]
    shown = json.loads(cli("runs", "show", run_id, "--json", home=run_home).stdout)
    assert Path(shown["path"]).is_dir()
    assert {k: shown["learning"][k] for k in ("chance_accuracy", "dev_accuracy", "learned")} == \
        {k: result[k] for k in ("chance_accuracy", "dev_accuracy", "learned")}
    assert cli("runs", "export", run_id, "--out", str(run_home / "r.zip"), home=run_home).returncode == 0
    assert cli("runs", "delete", run_id, "--json", home=run_home).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["train", "--train-size", "0"], "train size"),
    (["train", "--lr", "-0.1"], "learning rate"),
    (["train", "--model", "no-such/model-xyz", "--train-size", "8", "--batch-size", "4"], "hub is offline"),
    (["eval", "nope"], "no run"),
    (["runs", "delete", "nope"], "no run"),
])
@pytest.mark.slow
def test_cli_bad_input_exits_2_with_message(run_home, args, message):
    done = cli(*args, home=run_home)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
