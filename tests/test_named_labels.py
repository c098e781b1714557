"""Named labels: a CSV whose label column holds class names (pos/neg, sport/money/...) gets ids in sorted order, or
in the order the user gives (`--label-order`, the Train page); the names are stored with the run and shown by the
CLI and the Playground. Integer labels work as before; a column mixing names and numbers, or names that differ only
by spaces or case, is refused naming the values and their lines."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_util import no_exception, page, texts
from cli_util import refused

from engine.__main__ import main
from engine.data.csv_reading import read_csv
from engine.data.text_dataset import DataError
from engine.store.runs import RunStore

TOPICS = ["sport", "money", "film"]


def write(folder: Path, content: str, name: str = "d.csv") -> Path:
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def topics_csv(folder: Path, rows: int = 60) -> Path:
    """`rows` rows, one topic word per class, the label the topic's name."""
    return write(folder, "text,label\n" + "".join(f"item {i} about {TOPICS[i % 3]} and {TOPICS[i % 3]},"
                                                   f"{TOPICS[i % 3]}\n" for i in range(rows)), "topics.csv")


# ---------------------------------------------------------------- the engine's reader

def test_names_get_ids_in_sorted_order(tmp_path):
    data = read_csv(write(tmp_path, "text,label\ngood,pos\nbad,neg\nso so,neutral\nfine,pos\n"))
    assert data.label_names == ["neg", "neutral", "pos"]
    assert data.labels == [2, 0, 1, 2]


def test_an_explicit_order_sets_the_ids(tmp_path):
    data = read_csv(write(tmp_path, "text,label\ngood,pos\nbad,neg\nso so,neutral\n"),
                    label_order=["pos", "neg", "neutral"])
    assert data.label_names == ["pos", "neg", "neutral"]
    assert data.labels == [0, 1, 2]


@pytest.mark.parametrize("order, says", [
    (["pos", "neg"], "leaves out the labels first on line 4;"),
    (["pos", "neg", "neutral", "mixed"], "names 'mixed', which is not a label of the file"),
])
def test_an_order_must_name_exactly_the_files_labels(tmp_path, order, says):
    with pytest.raises(DataError, match=says):
        read_csv(write(tmp_path, "text,label\ngood,pos\nbad,neg\nso so,neutral\n"), label_order=order)


def test_a_column_mixing_names_and_numbers_is_refused_naming_values_and_lines(tmp_path):
    with pytest.raises(DataError) as err:
        read_csv(write(tmp_path, "text,label\ngood,pos\nbad,neg\nok,1\nfine,pos\nmeh,0\n"))
    message = str(err.value)
    assert "mixes" in message and "numbers on lines 4, 6" in message and "names on lines 2, 3" in message, message
    assert not {"pos", "neg", "'1'", "'0'"} & set(message.replace(";", " ").split()), message   # lines, no cells


def test_labels_differing_only_by_spaces_or_case_are_refused(tmp_path):
    with pytest.raises(DataError) as err:
        read_csv(write(tmp_path, "text,label\ngood,pos\nbad,neg\nnice,pos \ngreat,Pos\nawful,neg\n"))
    message = str(err.value)
    assert "first on lines 2, 4, 5." in message, message
    assert "neg" not in message and "pos" not in message.lower(), message


def test_integer_labels_are_unchanged(tmp_path):
    data = read_csv(write(tmp_path, "text,label\na,1\nb,0\nc,2\nd, 1\n"))
    assert data.labels == [1, 0, 2, 1] and data.label_names == ["0", "1", "2"]


def test_an_evaluation_csv_is_read_in_the_models_names(tmp_path):
    path = write(tmp_path, "text,label\ngood,pos\nbad,neg\n")
    assert read_csv(path, known_labels=["pos", "neutral", "neg"]).labels == [0, 2]
    with pytest.raises(DataError, match="the labels on line 3 are not classes of this model; this model knows: "
                                        "pos, neutral$"):
        read_csv(path, known_labels=["pos", "neutral"])


# ---------------------------------------------------------------- the CLI

@pytest.mark.parametrize("order, dataset, says", [
    ("sport,money", "csv", "leaves out the labels first on line"),
    ("sport,money,film,vote", "csv", "names 'vote'"),
    ("negative,positive", "sst2", "only for a CSV"),
])
def test_label_order_errors_exit_2_before_a_run_exists(run_home, tmp_path, capsys, order, dataset, says):
    data = f"csv:{topics_csv(tmp_path)}" if dataset == "csv" else dataset
    line = refused(["train", "--model", "tiny", "--dataset", data, "--label-order", order, "--train-size", "32",
                    "--batch-size", "16"], capsys)
    assert line.startswith("error: --label-order: ") and says in line, line
    assert RunStore().list() == []


@pytest.fixture(scope="module")
def named_run(tmp_path_factory) -> tuple[Path, str]:
    """A tiny model trained by the CLI on the topics CSV with `--label-order sport,money,film`:
    (its run store, its run id)."""
    home = tmp_path_factory.mktemp("named") / "runs"
    csv = topics_csv(tmp_path_factory.mktemp("csv"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROBUSTLAB_HOME", str(home))
        assert main(["train", "--model", "tiny", "--dataset", f"csv:{csv}", "--label-order", "sport,money,film",
                     "--epochs", "1", "--batch-size", "8", "--json"]) == 0
        run_id = RunStore().list()[0]["id"]
    return home, run_id


def test_runs_show_has_the_label_names_in_id_order(named_run, monkeypatch, capsys):
    home, run_id = named_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    capsys.readouterr()
    assert main(["runs", "show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["label_names"] == TOPICS


def test_the_playground_shows_the_names(named_run, monkeypatch):
    home, run_id = named_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("playground.py")
    at.run()
    at.selectbox(key="pg-run-a").set_value(run_id).run()
    at.text_area(key="pg-text").input("item about money and money").run()
    no_exception(at)
    bars = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if f"pg-probs-{run_id}" in c.proto.id)
    assert bars["data"][0]["y"] == TOPICS, bars["data"][0]["y"]
    verdict = next(m.value for m in at.markdown if m.value.startswith("Prediction: **"))
    assert any(f"**{name}**" in verdict for name in TOPICS), verdict


def test_the_ode_page_names_the_predicted_classes(named_run, monkeypatch):
    """The live layer-by-layer comparison says a CSV run's class names, not "class 0"."""
    home, run_id = named_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("ode_stability.py")
    at.run()
    at.selectbox(key="ode-live-a").set_value(run_id).run()
    at.selectbox(key="ode-live-b").set_value(run_id).run()
    said = [m.value for m in no_exception(at).markdown if m.value.startswith("clean: **")]
    assert said and all(any(f"**{name} (" in line for name in TOPICS) for line in said), said
    assert not any("class " in line for line in said)


def test_the_behaviour_page_offers_an_uploaded_data_run_beside_sst2_runs(named_run, tmp_path, monkeypatch):
    """With SST-2 runs in the store, a CSV run is one Dataset choice away (it used to be unreachable)."""
    import shutil

    from benchmark_util import fake_run

    home, run_id = named_run
    shutil.copytree(home, tmp_path / "runs")
    monkeypatch.setenv("ROBUSTLAB_HOME", str(tmp_path / "runs"))
    fake_run(RunStore(tmp_path / "runs"), "vanilla", 0, 0.8)
    at = page("behaviour.py")
    at.run()
    dataset = no_exception(at).selectbox(key="bh-dataset")
    assert dataset.value == "sst2" and run_id not in at.multiselect(key="bh-runs").options
    dataset.set_value(RunStore(tmp_path / "runs").get(run_id).config["dataset"]).run()
    assert [o for o in no_exception(at).multiselect(key="bh-runs").options if run_id in o]


# ---------------------------------------------------------------- the Train page

def upload(at, name: str, content: bytes):
    at.selectbox(key="train-dataset").set_value("Upload CSV").run()
    at.file_uploader(key="train-upload").set_value((name, content, "text/csv"))
    return no_exception(at.run())


def test_train_page_shows_the_names_and_stores_a_chosen_order(run_home, tmp_path, monkeypatch):
    from engine.execution import jobs

    queued = []
    monkeypatch.setattr(jobs, "submit", lambda store, config: queued.append(config) or store.create(config))
    at = upload(page("train.py").run(), "topics.csv", topics_csv(tmp_path).read_bytes())
    counts = next(c for c in texts(at, "caption") if c.startswith("Examples per class"))
    assert all(f"{name}: 20" in counts for name in TOPICS), counts
    assert set(at.dataframe[0].value["label"]) == set(TOPICS)
    order = at.text_input(key="train-label-order")
    assert order.value == "film, money, sport"
    order.input("sport, money, film").run()
    at.radio(key="train-model").set_value("tiny").run()
    at.button(key="train-start").click().run()
    assert not texts(no_exception(at), "error")
    assert [c["label_order"] for c in queued] == [TOPICS]


def test_train_page_refuses_an_order_that_misses_a_label(run_home, tmp_path, monkeypatch):
    from engine.execution import jobs

    queued = []
    monkeypatch.setattr(jobs, "submit", lambda store, config: queued.append(config) or store.create(config))
    at = upload(page("train.py").run(), "topics.csv", topics_csv(tmp_path).read_bytes())
    at.text_input(key="train-label-order").input("sport, money").run()
    at.radio(key="train-model").set_value("tiny").run()
    at.button(key="train-start").click().run()
    assert any("leaves out the labels first on line" in e for e in texts(no_exception(at), "error")), \
        texts(at, "error")
    assert queued == []


def test_train_page_refuses_near_duplicate_labels_naming_lines(run_home):
    at = upload(page("train.py").run(), "dup.csv", b"text,label\ngood,pos\nbad,neg\nnice,Pos\nawful,neg\n")
    errors = texts(at, "error")
    assert any("differ only by spaces or letter case, first on lines 2, 4." in e for e in errors), errors


def test_a_batch_attack_on_the_held_out_split_writes_the_names(named_run, monkeypatch, capsys):
    home, run_id = named_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    assert main(["attack", run_id, "--dataset", "heldout", "--n", "3", "--max-queries", "20", "--json"]) == 0
    attack = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in (home / attack["run_id"] / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(row["label"] == row["original"].split()[-1] for row in rows), rows   # its topic
    assert all(f"p_{name}_before" in rows[0] for name in TOPICS), rows[0]


def test_runs_details_name_the_classes(named_run, monkeypatch):
    home, run_id = named_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("runs.py")
    at.query_params["run"] = run_id
    at.run()
    assert any("0 sport · 1 money · 2 film" in c for c in texts(no_exception(at), "caption")), texts(at, "caption")
