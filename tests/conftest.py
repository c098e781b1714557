"""Shared fixtures: an isolated run store per test, the data folder, and one tiny trained run per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("NLTK_DATA", str(ROOT / ".nltk_data"))
if not os.environ.get("ROBUSTLAB_DATA") and not (ROOT / "data").exists() and (ROOT.parent / "shared" / "data").exists():
    os.environ["ROBUSTLAB_DATA"] = str(ROOT.parent / "shared" / "data")


@pytest.fixture
def run_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty run store for one test."""
    home = tmp_path / "runs"
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    return home


@pytest.fixture
def attack_target(run_home) -> str:
    """The id of a finished train run with a stand-in saved model: enough for the attack and behave commands'
    checks, which must all come before anything loads the model."""
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    store = RunStore()
    run = store.create(TrainConfig(model="tiny").to_dict())
    (run.dir / "model").mkdir()
    (run.dir / "model" / "model.safetensors").write_bytes(b"")
    run.set_status("done")
    store.update_index(run)
    return run.id


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished vanilla run of the tiny model on 64 SST-2 examples, shared by the tests that only read it.

    Returns (store, run). Tests must not modify it. Its trained model is kept in memory for
    saved_model_util.assert_reloads_as_trained.
    """
    from saved_model_util import keep_saved_models

    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    home = tmp_path_factory.mktemp("tiny_runs")
    store = RunStore(home)
    config = TrainConfig(model="tiny", train_size=64, epochs=1, batch_size=16, dev_size=64, eval_every=2)
    run = store.create(config.to_dict())
    from engine.execution.jobs import execute

    with keep_saved_models():
        execute(store, run, lambda: False)
    assert run.status["status"] == "done", run.log_text()
    return store, run


@pytest.fixture(scope="session")
def pair_run(tmp_path_factory):
    """One finished vanilla run of the tiny model on generated sentence pairs (an RTE run: pair_run_util), shared
    by the tests that only read it. Returns (store, run). Tests must not modify it."""
    from pair_run_util import train_pair_run

    return train_pair_run(tmp_path_factory.mktemp("pair_runs"))
