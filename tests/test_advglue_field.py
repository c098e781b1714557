"""One AdvGLUE field for every task: `advglue_accuracy`, the run's own task's AdvGLUE accuracy by the official
scoring (MNLI the mean of matched and mismatched), written by training, one index column, the report's metric; and
stores written before it (results.json with only `advglue_sst2_accuracy`, an index with that column) still read."""
from __future__ import annotations

import sqlite3

import pytest
from benchmark_util import correct_list, fake_run
from pair_run_util import pair_data

from engine.__main__ import main
from engine.data.advglue import results_accuracy
from engine.reporting.benchmark import build_report, metric_titles, sentence_results
from engine.store import index as run_index
from engine.store.runs import RunStore, read_json, write_json

OLD_SCHEMA = """create table runs (
    id text primary key, kind text, method text, dataset text, model text, seed integer,
    status text, created real, finished real, dev_accuracy real, advglue_sst2_accuracy real,
    summary text, parent text)"""


def rte_run(store: RunStore, seed: int, advglue: float):
    """A finished, learned RTE run as training now stores it: the per-set key beside `advglue_accuracy`, and the
    AdvGLUE-RTE sentences' correctness in eval.json."""
    run = fake_run(store, "vanilla", seed, dev=0.9, dataset="rte")
    write_json(run.dir / "eval.json", {
        "rte-dev": {"accuracy": 0.9, "n": 100, "chance_accuracy": 0.5},
        "advglue-rte": {"accuracy": advglue, "n": 81, "chance_accuracy": 0.5,
                        "correct": correct_list(advglue, 81, seed)}})
    write_json(run.dir / "results.json", {"status": "done", "dev_set": "rte-dev", "dev_accuracy": 0.9,
                                          "chance_accuracy": 0.5, "learned": True, "advglue_rte_accuracy": advglue,
                                          "advglue_accuracy": advglue})
    store.update_index(run)
    return run


def indexed(home, run_id: str) -> float | None:
    with sqlite3.connect(home / "index.sqlite") as db:
        return db.execute("select advglue_accuracy from runs where id=?", (run_id,)).fetchone()[0]


def test_an_rte_run_lands_in_the_same_column_and_metric_as_an_sst2_run(run_home):
    store = RunStore(run_home)
    sst2 = fake_run(store, "vanilla", 0, dev=0.9, advglue=0.5)
    rte = [rte_run(store, seed, 27 / 81) for seed in (0, 1)]
    assert indexed(run_home, sst2.id) == 0.5 and indexed(run_home, rte[0].id) == 27 / 81
    listed = {r["id"]: r["advglue_accuracy"] for r in store.list()}
    assert listed[sst2.id] == 0.5 and listed[rte[1].id] == 27 / 81

    report = build_report(store, [r.id for r in rte], attack=None)
    assert [r["advglue_accuracy"] for r in report["runs"]] == [27 / 81, 27 / 81]
    assert all(r["missing"] == [] for r in report["runs"])
    (method,) = report["methods"]
    assert method["advglue_accuracy"] == pytest.approx(27 / 81) and method["advglue_accuracy_n"] == 2
    assert metric_titles(report)["advglue_accuracy"] == "AdvGLUE-RTE accuracy"
    parts = {p["text"]: p for c in report["claims"] for p in c.get("parts", [])}
    assert parts["AdvGLUE-RTE: im-bert above vanilla"]["metric"] == "advglue_accuracy"   # the claims' metric
    assert report["chance"]["advglue_accuracy"] == pytest.approx(46 / 81)   # AdvGLUE-RTE's majority class
    per_sentence = sentence_results(store, report["runs"])[rte[0].id]["advglue_accuracy"]
    assert per_sentence.tolist() == correct_list(27 / 81, 81, 0)   # the task's own sentences, for the bootstrap

    sst2_report = build_report(store, [sst2.id], attack=None)
    assert sst2_report["runs"][0]["advglue_accuracy"] == 0.5
    assert metric_titles(sst2_report)["advglue_accuracy"] == "AdvGLUE-SST2 accuracy"


def test_training_writes_the_tasks_advglue_accuracy_beside_the_per_set_key(run_home, monkeypatch):
    """A tiny RTE run scored on an AdvGLUE-RTE set (generated pairs standing in for the file's): the one field
    equals its set's accuracy, and the index column holds it."""
    import engine.training.train
    from engine.execution.jobs import execute
    from engine.training.config import TrainConfig

    store = RunStore(run_home)
    config = TrainConfig(model="tiny", dataset="advglue-rte", train_size=32, epochs=1, batch_size=16,
                         dev_size=16, eval_every=0, seed=0)
    run = store.create(config.to_dict())
    splits = engine.training.train.Splits(pair_data(32, 0), pair_data(16, 1), "advglue-rte",
                                          {"advglue-rte": pair_data(24, 2)}, 32, [])
    monkeypatch.setattr(engine.training.train, "load_splits", lambda _config: splits)
    execute(store, run, lambda: False)
    results = read_json(run.dir / "results.json")
    assert results["status"] == "done"
    assert results["advglue_accuracy"] == results["advglue_rte_accuracy"]
    assert results["advglue_accuracy"] == read_json(run.dir / "eval.json")["advglue-rte"]["accuracy"]
    assert indexed(run_home, run.id) == results["advglue_accuracy"]


def test_an_old_results_json_still_reads():
    """Before the field, SST-2's number was `advglue_sst2_accuracy` and other tasks had only their per-set keys:
    the reader gives the same task-independent number from them."""
    assert results_accuracy({"advglue_sst2_accuracy": 0.42}, "sst2") == 0.42
    assert results_accuracy({"advglue_sst2_accuracy": 0.42}, "rte") is None   # not the RTE run's number
    assert results_accuracy({"advglue_mnli_accuracy": 0.3, "advglue_mnli_mm_accuracy": 0.5}, "mnli") == 0.4
    assert results_accuracy({"advglue_mnli_accuracy": 0.3}, "mnli") is None   # half a score is no score
    assert results_accuracy({"advglue_accuracy": None, "advglue_sst2_accuracy": 0.4}, "sst2") is None
    assert results_accuracy({"advglue_accuracy": 0.7}, "rte") == 0.7
    assert results_accuracy({"dev_accuracy": 0.9}, "csv:/x.csv") is None


def test_an_old_store_reads_through_the_index_and_reindex(run_home, capsys):
    """An SST-2 run whose results.json has only `advglue_sst2_accuracy`, under an index of the old schema: opening
    the store upgrades the index in place (no file moved aside as damaged) and re-reads every row from its
    folder; `runs reindex` rebuilds it as well."""
    store = RunStore(run_home)
    old = fake_run(store, "vanilla", 0, dev=0.9, advglue=0.5)   # results.json in the old format
    assert "advglue_accuracy" not in read_json(old.dir / "results.json")
    (run_home / "index.sqlite").unlink()
    with sqlite3.connect(run_home / "index.sqlite") as db:
        db.execute(OLD_SCHEMA)
        db.execute("insert into runs (id, kind, method, status, created, advglue_sst2_accuracy) "
                   "values (?, 'train', 'vanilla', 'done', 1, 0.1)", (old.id,))   # a stale value: re-read
    fresh = RunStore(run_home)
    assert {r["id"]: r["advglue_accuracy"] for r in fresh.list()} == {old.id: 0.5}
    assert indexed(run_home, old.id) == 0.5
    assert not list(run_home.glob("index.sqlite.damaged-*")) and fresh.index.problem is None
    with sqlite3.connect(run_home / "index.sqlite") as db:
        assert "advglue_sst2_accuracy" not in {r[1] for r in db.execute("pragma table_info(runs)")}

    (run_home / "index.sqlite").unlink()
    with sqlite3.connect(run_home / "index.sqlite") as db:
        db.execute(OLD_SCHEMA)
    index = run_index.RunIndex(run_home / "index.sqlite", run_home)   # not opened: reindex meets the old table
    assert index.reindex() == 1 and indexed(run_home, old.id) == 0.5
    assert main(["runs", "reindex", "--json"]) == 0 and indexed(run_home, old.id) == 0.5
    capsys.readouterr()
