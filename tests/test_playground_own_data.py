"""AppTest of the Playground with a model trained on an uploaded 5-class CSV beside an SST-2 model: each model is
explored on its own data (its own dev sentences and label names, its own set in batch attacks, a warning on
another task's set), the default model and the comparison keep to one dataset, and the edit history means
something with 5 classes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_util import jobs_run_in_process, no_exception, page
from test_attacks import sensitive_tiny_run

WORDS = ["sport", "money", "film", "science", "vote"]   # one topic word per class


def five_class_csv(folder: Path) -> Path:
    """120 rows, 24 per class, each row naming its class's topic word."""
    path = folder / "news.csv"
    rows = [f"item {i} about {WORDS[i % 5]} and more {WORDS[i % 5]},{i % 5}" for i in range(120)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stores(tiny_run, tmp_path_factory):
    """A store with an SST-2 run and a tiny model trained on the 5-class CSV, recorded with dev 1.000 (the toy
    model that became the default before), and a second SST-2 run to compare with. Returns (home, sst2 run id,
    csv run id, second sst2 run id)."""
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore, read_json, write_json
    from engine.training.config import TrainConfig

    home = tmp_path_factory.mktemp("own-data") / "runs"
    _, sst2 = sensitive_tiny_run(tiny_run, home)
    store = RunStore(home)
    csv = five_class_csv(tmp_path_factory.mktemp("csv"))
    run = store.create(TrainConfig(model="tiny", dataset=f"csv:{csv}", train_size=None, epochs=1,
                                   batch_size=16).to_dict())
    execute(store, run, lambda: False)
    assert run.status["status"] == "done", run.log_text()
    write_json(run.dir / "results.json", {**read_json(run.dir / "results.json", {}), "dev_accuracy": 1.0})
    store.update_index(run)
    _, second = sensitive_tiny_run(tiny_run, home)
    return home, sst2.id, run.id, second.id


@pytest.fixture
def app(stores, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_HOME", str(stores[0]))
    at = page("playground.py")
    at.session_state["pg-run-a"] = stores[1]   # picked by hand: the tiny SST-2 runs stay at chance
    at.run()
    return no_exception(at)


def on_csv_model(at, stores):
    at.selectbox(key="pg-run-a").set_value(stores[2]).run()
    return no_exception(at)


def test_default_model_is_never_a_run_of_another_dataset(stores, monkeypatch):
    """The SST-2 runs stayed at chance, so none is a default; the CSV run that learned is of another dataset."""
    monkeypatch.setenv("ROBUSTLAB_HOME", str(stores[0]))
    assert no_exception(page("playground.py").run()).selectbox(key="pg-run-a").value is None


def test_comparison_offers_only_runs_of_the_same_dataset(app, stores):
    def offered(at) -> list[str]:
        return [o for s in at.selectbox if s.key == "pg-run-b" for o in s.options]

    assert offered(app) and not any(stores[2] in o for o in offered(app))
    on_csv_model(app, stores)
    assert not offered(app)                                          # no other run of the news CSV
    assert any("Train a second model on upload news" in c.value for c in app.caption)


def test_examples_come_from_the_models_own_dev_split(app, stores):
    from engine.data.registry import load_dataset
    from engine.data.splits import split_train_dev
    from engine.store.runs import RunStore

    app.session_state["pg-source"] = "SST-2 dev"                      # chosen on the SST-2 model first
    at = on_csv_model(app.run(), stores)
    options = next(s for s in at.get("button_group") if s.key == "pg-source").options
    assert not any("SST-2" in o or "AdvGLUE" in o for o in options), options
    held_out = next(o for o in options if "held-out" in o.lower())
    at.session_state["pg-source"] = held_out
    at.run()
    config = RunStore(stores[0]).get(stores[2]).config
    dev = split_train_dev(load_dataset(config["dataset"]), config["dev_fraction"], config["seed"])[1]
    example = next(s for s in at.selectbox if s.key and s.key.startswith("pg-example-"))
    assert len(example.options) == len(dev)
    example.set_value(3).run()
    no_exception(at)
    assert at.text_area(key="pg-text").value == dev.texts[3]
    verdict = next(m.value for m in at.markdown if m.value.startswith("Prediction: **"))
    assert "SST-2" not in verdict and ("matches the label" in verdict or f"label is {dev.labels[3]}" in verdict)


def test_batch_attack_defaults_to_the_models_own_data_and_warns_on_another_task(app, stores, monkeypatch):

    jobs_run_in_process(monkeypatch)
    at = on_csv_model(app, stores)
    dataset = at.selectbox(key=f"pg-batch-dataset-{stores[2]}")
    assert dataset.value == "heldout" and any("SST-2 dev" in o for o in dataset.options)
    at.number_input(key="pg-batch-n").set_value(2)
    at.number_input(key="pg-batch-budget-queries").set_value(50)
    start = [b.label for b in at.button].index("Start batch attack")
    at.button[start].click().run()
    no_exception(at)
    assert not any("another task" in w.value for w in at.warning)
    assert len(at.dataframe[-1].value) == 2                          # two held-out sentences of its own CSV
    at.selectbox(key=f"pg-batch-dataset-{stores[2]}").set_value("sst2-dev")
    at.button[start].click().run()
    no_exception(at)
    assert any("another task" in w.value for w in at.warning)


def test_edit_history_with_five_classes_has_no_two_class_boundary(app, stores):
    at = on_csv_model(app, stores)
    at.text_area(key="pg-text").input("item about sport and more sport").run()
    at.text_area(key="pg-text").input("item about money and more money").run()
    no_exception(at)
    figure = json.loads(next(c for c in at.get("plotly_chart") if "history" in c.proto.id).proto.spec)
    assert not figure["layout"].get("shapes"), "a 50 % decision boundary means nothing with 5 classes"
    names = [t["name"] for t in figure["data"]]
    assert any("top other class" in n for n in names) and any("first version" in n for n in names), names


def test_attack_label_says_what_the_run_says(app, stores):
    """An attack whose index row still says queued while its run has finished is labelled by the run."""
    from engine.attacks.attacker import Budget
    from engine.attacks.batch import batch_config
    from engine.store.runs import RunStore

    store = RunStore(stores[0])
    run = store.create(batch_config(stores[1], "deepwordbug", "sst2-dev", 1, Budget(10, 0.3)), kind="attack",
                       parent=stores[1])
    run.set_status("done")                                            # the index has not caught up yet
    app.selectbox(key="pg-run-a").set_value(stores[1]).run()
    no_exception(app)
    label = next(s for s in app.selectbox if s.key == "pg-batch-pick")
    assert all("queued" not in option for option in label.options), label.options
