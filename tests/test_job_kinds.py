"""The job-kind registry: every kind a package declares is found, records what it declares (one real run of each
kind on the tiny model: a suite with a behaviour test and an attack, and a one-cell recovery grid), and reuse is
one lookup by the kind's own key."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.execution import jobs
from engine.execution.kinds import find_done, job_kind, registry
from engine.recovery.grid import GridSpec, grid_config
from engine.store.runs import RunError, RunStore
from engine.suite.job import SuiteSpec, suite_config
from engine.training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"train", "attack", "behaviour", "recover", "suite"}
SUITE = SuiteSpec(methods=["vanilla"], seeds=[0], model="tiny", train_size=32, epochs=1, attack_n=2,
                  behaviour="sentiment", train={"batch_size": 16})


def test_every_kind_is_found_from_its_package():
    assert set(registry()) == KINDS
    for name, kind in registry().items():
        assert type(kind).__module__.endswith(".kind") and kind.name == name and kind.title and kind.records


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(RunError, match="unknown job kind 'probe'; known: "):
        job_kind("probe")


def test_no_module_names_a_job_function_by_a_string():
    """The old `JOB_KINDS` table held "module:function" strings the import graph could not see."""
    for path in ROOT.glob("engine/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.startswith("engine.") or ":" not in node.value, (path, node.value)


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """A suite (train, behaviour and attack runs) and a one-cell recovery grid, run to their end on the tiny model."""
    home = tmp_path_factory.mktemp("kinds") / "runs"
    store = RunStore(home)
    suite = store.create(suite_config(SUITE), kind="suite")
    assert jobs.execute(store, suite, lambda: False, slot_held=True)["status"] == "done", suite.log_text()
    grid_spec = GridSpec(model="tiny", positions=["bottom"], levels=[1], seeds=[0], train_size=16, epochs=1,
                         batch_size=16, dev_size=16)
    grid = store.create(grid_config(grid_spec), kind="recover")
    assert jobs.execute(store, grid, lambda: False, slot_held=True)["status"] == "done", grid.log_text()
    return store


def test_every_kind_records_what_it_declares(finished_store):
    store = finished_store
    seen = set()
    for row in store.list():
        run = store.get(row["id"])
        kind = job_kind(run.config.get("kind", "train"))
        seen.add(kind.name)
        assert run.status["status"] == "done", run.log_text()
        for record in kind.records:
            path = run.dir / record.rstrip("/")
            assert (path.is_dir() if record.endswith("/") else path.is_file()), f"{kind.name} run lacks {record}"
    assert seen == KINDS


def test_reuse_is_the_kinds_own_key(finished_store):
    store = finished_store
    trained = find_done(store, "train", SUITE.train_config("vanilla", 0).to_dict())
    assert trained is not None and trained.config.get("suite")
    same_model = {**SUITE.train_config("vanilla", 0).to_dict(), "eval_every": 7, "device": "cpu"}
    assert find_done(store, "train", same_model).id == trained.id      # fields that do not change the model
    assert find_done(store, "train", {**same_model, "seed": 1}) is None
    cell = next(store.get(r["id"]) for r in store.list(kind="train") if store.get(r["id"]).config.get("recovery"))
    assert find_done(store, "train", TrainConfig.from_dict(cell.config).to_dict()) is None   # a corrupted cell
    attack = store.list(kind="attack")[0]
    config = store.get(attack["id"]).config
    assert find_done(store, "attack", config).id == attack["id"]
    assert find_done(store, "attack", {**config, "n": 3}) is None
    behaviour = store.list(kind="behaviour")[0]
    config = store.get(behaviour["id"]).config
    assert find_done(store, "behaviour", config).id == behaviour["id"]
    assert find_done(store, "behaviour", {**config, "seed": 1}) is None
    assert find_done(store, "suite", store.get(store.list(kind="suite")[0]["id"]).config) is None   # never reused


def test_a_config_its_kind_refuses_is_never_queued(run_home):
    store = RunStore(run_home)
    with pytest.raises(ValueError, match="epochs"):
        jobs.submit(store, {**TrainConfig(model="tiny").to_dict(), "epochs": 0})
    with pytest.raises(ValueError, match="seed"):
        jobs.submit(store, suite_config(SUITE) | {"seeds": [-1]}, kind="suite")
    assert store.list() == []
