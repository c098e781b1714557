"""Whether a run learned: the chance level of a set, the `learned` rule, what training stores (results.json,
eval.json with per-sentence correctness), `learning_status` for new and old runs, and the pages showing it."""
from __future__ import annotations

import shutil
import time

import pytest
from apptest_util import no_exception, page, texts

from app.formatting import learned_text, run_label
from engine.data.registry import load_dataset
from engine.store.runs import RunStore, read_json, write_json
from engine.training.config import TrainConfig
from engine.training.evaluate import chance_accuracy, dev_set_name, evaluate_run, has_learned, learning_status

SST2_DEV_CHANCE = 444 / 872      # 444 of the 872 SST-2 dev sentences are positive
ADVGLUE_CHANCE = 76 / 148


def test_chance_accuracy_is_the_majority_class_rate():
    assert chance_accuracy([0, 1, 1, 1]) == 0.75
    assert chance_accuracy([2, 2, 0]) == pytest.approx(2 / 3)
    assert chance_accuracy(load_dataset("sst2-dev").labels) == SST2_DEV_CHANCE


@pytest.mark.parametrize("dev, chance, learned", [
    (0.509, 0.509, False),      # at chance
    (0.45, 0.5, False),         # below chance
    (0.5999, 0.5, False),       # just under 10 points
    (0.6, 0.5, True),           # exactly 10 points above
    (0.3, 0.2, True),           # exactly 10 points above, where 0.2 + 0.1 > 0.3 in floating point
])
def test_a_run_learned_when_dev_is_at_least_ten_points_above_chance(dev, chance, learned):
    assert has_learned(dev, chance) is learned


def fake_run(store: RunStore, dev: float | None, chance: float | None = None, dataset: str = "sst2"):
    """A finished train run with only results.json: `chance` None is a run trained before it was stored."""
    run = store.create(TrainConfig(model="tiny", dataset=dataset).to_dict())
    results = {} if dev is None else {"dev_set": dev_set_name(run.config), "dev_accuracy": dev, "status": "done"}
    if chance is not None:
        results.update(chance_accuracy=chance, learned=has_learned(dev, chance))
    write_json(run.dir / "results.json", results)
    run.set_status("done", finished=time.time())
    store.update_index(run)
    return run


def test_learning_status_reads_the_stored_chance_and_says_why(run_home):
    store = RunStore(run_home)
    stored = learning_status(fake_run(store, 0.55, chance=0.45))     # not the dev set's 0.509: read, not recomputed
    assert stored == {"chance_accuracy": 0.45, "dev_accuracy": 0.55, "learned": True,
                      "reason": "dev 0.550 is 10.0 points above chance 0.450"}
    at_chance = learning_status(fake_run(store, 0.514, chance=SST2_DEV_CHANCE))
    assert at_chance["learned"] is False
    assert at_chance["reason"] == "dev 0.514 is within 10 points of chance 0.509"


def test_learning_status_of_an_old_run_takes_chance_from_its_dev_set(run_home):
    store = RunStore(run_home)
    old = learning_status(fake_run(store, 0.514))
    assert old == {"chance_accuracy": SST2_DEV_CHANCE, "dev_accuracy": 0.514, "learned": False,
                   "reason": "dev 0.514 is within 10 points of chance 0.509"}
    assert learning_status(fake_run(store, 0.8))["learned"] is True


def test_learning_status_is_unknown_without_a_dev_score_or_a_readable_dev_set(run_home):
    store = RunStore(run_home)
    unfinished = learning_status(fake_run(store, None))
    assert unfinished["learned"] is None and "not a finished training run" in unfinished["reason"]
    gone = learning_status(fake_run(store, 0.7, dataset=f"csv:{run_home / 'deleted.csv'}"))
    assert gone["learned"] is None and gone["chance_accuracy"] is None
    assert gone["reason"].startswith("chance level unknown")


def test_training_stores_chance_learned_and_per_sentence_correctness(tiny_run):
    """results.json has the dev set's chance and `learned`; each eval.json entry has its set's chance and,
    per sentence in the set's order, whether the model got it right."""
    from engine.models.inference import predict_probs
    from engine.models.loading import load_trained

    _, run = tiny_run
    results, evals = run.results, read_json(run.dir / "eval.json")
    assert results["chance_accuracy"] == SST2_DEV_CHANCE
    assert results["learned"] is has_learned(results["dev_accuracy"], SST2_DEV_CHANCE)
    model, tokenizer, method = load_trained(run.dir)
    for name, chance in (("sst2-dev", SST2_DEV_CHANCE), ("advglue-sst2", ADVGLUE_CHANCE)):
        data, entry = load_dataset(name), evals[name]
        right = predict_probs(model, method, tokenizer, data.texts).argmax(1) == data.labels
        assert entry["correct"] == right.astype(int).tolist(), name
        assert entry["chance_accuracy"] == chance and sum(entry["correct"]) / entry["n"] == entry["accuracy"]


def test_evaluate_run_recomputes_an_entry_without_correctness_only_when_asked(tiny_run, run_home):
    _, trained = tiny_run
    shutil.copytree(trained.dir, run_home / trained.id)      # a copy: tiny_run must stay as it is
    path, sets = run_home / trained.id / "eval.json", ["sst2-dev", "advglue-sst2"]
    written = read_json(path)
    write_json(path, {name: {k: v for k, v in entry.items() if k not in ("correct", "chance_accuracy")}
                      for name, entry in written.items()})   # as stored before per-sentence correctness
    store = RunStore(run_home)
    assert all("correct" not in entry for entry in evaluate_run(store, trained.id, sets).values())
    full = evaluate_run(store, trained.id, sets, need_correct=True)
    for name in sets:
        assert full[name]["correct"] == written[name]["correct"]
        assert full[name]["chance_accuracy"] == written[name]["chance_accuracy"]
    assert read_json(path) == full
    assert evaluate_run(store, trained.id, sets, need_correct=True) == full   # now served from eval.json


def test_run_labels_and_the_learned_cell_say_when_a_run_stayed_at_chance():
    row = {"id": "r1", "kind": "train", "method": "vanilla", "dataset": "sst2", "model": "minilm", "seed": 0,
           "status": "done", "dev_accuracy": 0.514}
    stuck = {"chance_accuracy": SST2_DEV_CHANCE, "dev_accuracy": 0.514, "learned": False, "reason": "..."}
    assert run_label(row, stuck) == "vanilla · sst2 · minilm · seed 0 · dev 0.514 · did not learn (chance 0.509) · r1"
    assert run_label(row, {**stuck, "learned": True}) == "vanilla · sst2 · minilm · seed 0 · dev 0.514 · r1"
    assert run_label(row) == run_label(row, {**stuck, "learned": None})
    assert [learned_text(s) for s in (stuck, {**stuck, "learned": True}, {**stuck, "learned": None}, None)] == \
        ["no", "yes", None, None]


def test_runs_table_pickers_and_home_show_which_runs_did_not_learn(run_home):
    store = RunStore(run_home)
    learned = fake_run(store, 0.8, chance=SST2_DEV_CHANCE)
    stuck = fake_run(store, 0.52, chance=SST2_DEV_CHANCE)
    old_stuck = fake_run(store, 0.514)                        # trained before chance was stored

    at = no_exception(page("runs.py").run())
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[[learned.id, stuck.id, old_stuck.id], "learned"].tolist() == ["yes", "no", "no"]
    assert table.loc[[learned.id, stuck.id, old_stuck.id], "chance"].tolist() == pytest.approx([SST2_DEV_CHANCE] * 3)
    options = at.selectbox(key="runs-detail").options
    marked = [o for o in options if "did not learn (chance 0.509)" in o]
    assert sorted(o.rsplit(" · ", 1)[1] for o in marked) == sorted([stuck.id, old_stuck.id])
    at.selectbox(key="runs-detail").set_value(old_stuck.id).run()
    assert any("did not learn: dev 0.514 is within 10 points of chance 0.509" in w
               for w in texts(no_exception(at), "warning"))

    home = no_exception(page("home.py").run())
    assert sum("did not learn" in m for m in texts(home, "markdown")) == 2
