"""Sentence-pair data on the engine and command-line side: GLUE's pair tasks from the data folder (else the hub,
else where to put them), pair CSVs, every method training on pairs, AdvGLUE evaluation at the end of a run, and
each bad input refused with one clear line and nothing stored."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_util import refused
from pair_data_util import rte_like_pairs, write_glue_rte, write_pair_csv

from engine.__main__ import main
from engine.data.csv_reading import read_csv
from engine.data.registry import DEV_SET, ROBUSTNESS_SETS, TASKS, load_dataset
from engine.data.splits import heldout_set, run_dataset
from engine.data.text_dataset import DataError
from engine.execution.jobs import execute
from engine.methods import registry
from engine.paths import data_dir
from engine.store.runs import RunStore
from engine.training.config import TrainConfig
from engine.training.evaluate import evaluate_run, own_sets, same_task

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["train", "--model", "tiny", "--train-size", "32", "--epochs", "1", "--batch-size", "16"]


@pytest.fixture
def glue_folder(tmp_path, monkeypatch):
    """A data folder with AdvGLUE's file and no GLUE pair files yet."""
    folder = tmp_path / "data"
    (folder / "advglue").mkdir(parents=True)
    shutil.copy(data_dir() / "advglue" / "dev.json", folder / "advglue" / "dev.json")
    monkeypatch.setenv("ROBUSTLAB_DATA", str(folder))
    return folder


@pytest.fixture
def pair_csv(tmp_path):
    return write_pair_csv(tmp_path / "pairs.csv", rte_like_pairs(80))


def no_runs(home) -> bool:
    return not home.exists() or not RunStore(home).list()


# ---------------------------------------------------------------- the registry's GLUE pair tasks

def test_registry_pairs_each_glue_task_with_its_dev_set_and_advglue_sets():
    assert {DEV_SET[t] for t in ("rte", "qnli", "qqp", "mnli")} == {"rte-dev", "qnli-dev", "qqp-dev", "mnli-dev"}
    assert ROBUSTNESS_SETS["mnli"] == ["advglue-mnli", "advglue-mnli-mm"]
    assert ROBUSTNESS_SETS["rte"] == ["advglue-rte"] and ROBUSTNESS_SETS["qqp"] == ["advglue-qqp"]
    assert TASKS["advglue-mnli-mm"] == TASKS["mnli-dev-mm"] == TASKS["mnli"] == "mnli"
    assert own_sets({"dataset": "mnli"}) == ["mnli-dev", "advglue-mnli", "advglue-mnli-mm"]


def test_glue_rte_tsvs_in_the_data_folder_load_as_pairs_with_glue_ids(glue_folder):
    write_glue_rte(glue_folder, rte_like_pairs(6), "train.tsv")
    (glue_folder / "rte" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta \"quoted\" b\tc\t1\n"
                                                 "1\td\te\tentailment\n", encoding="utf-8")
    train = load_dataset("rte")
    assert (train.name, train.is_pair, train.label_names) == ("rte", True, ["entailment", "not_entailment"])
    assert train.labels == [0, 1] * 3 and train.inputs[0] == rte_like_pairs(6)[0][:2]
    dev = load_dataset("rte-dev")
    assert dev.inputs == [('a "quoted" b', "c"), ("d", "e")] and dev.labels == [1, 0]


def test_a_glue_tsv_with_a_stray_label_or_a_short_row_is_refused_by_line(glue_folder):
    (glue_folder / "rte").mkdir()
    (glue_folder / "rte" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n"
                                                   "1\tc\td\tmaybe\n2\te\tf\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 4 has another number of tab-separated fields"):
        load_dataset("rte")
    (glue_folder / "rte" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n"
                                                   "1\tc\td\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels 'maybe' \(line 3\) are not classes of this task"):
        load_dataset("rte")


def test_missing_glue_files_offline_say_where_to_put_them(glue_folder, run_home, capsys):
    line = refused([*TRAIN, "--dataset", "mnli"], capsys)
    assert line.startswith("error: --dataset: dataset 'mnli' is not in the data folder"), line
    assert f"Put GLUE's MNLI/train.tsv (tab-separated; its columns include sentence1, sentence2, gold_label) at " \
           f"{glue_folder / 'mnli' / 'train.tsv'}" in line
    assert no_runs(run_home)


@pytest.mark.slow
def test_the_hub_path_with_the_network_refused_is_one_clear_line_and_no_run(glue_folder, run_home, tmp_path):
    """A fresh process (the hub libraries read their offline switches once, at import) with the offline switches
    off and the hub's address a closed loopback port: every connection is refused."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    with socket.socket() as probe:   # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"), ROBUSTLAB_HOME=str(run_home),
               ROBUSTLAB_DATA=str(glue_folder), HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5")
    done = subprocess.run([sys.executable, "-m", "engine", *TRAIN, "--dataset", "rte"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: --dataset: dataset 'rte' is not in the data folder"), lines
    assert "could not be loaded from the Hugging Face hub" in lines[0]
    assert "Put GLUE's RTE/train.tsv" in lines[0] and str(glue_folder / "rte" / "train.tsv") in lines[0]
    assert no_runs(run_home)


# ---------------------------------------------------------------- pair CSVs

@pytest.mark.parametrize("columns", [("sentence1", "sentence2"), ("premise", "hypothesis"),
                                     ("question", "sentence"), ("Question1", "Question2")])
def test_a_csv_with_two_named_text_columns_is_read_as_pairs(tmp_path, columns):
    path = write_pair_csv(tmp_path / "p.csv", rte_like_pairs(6), (*columns, "label"))
    data = read_csv(path)
    assert data.is_pair and data.segment_names == columns
    assert data.inputs[1] == rte_like_pairs(6)[1][:2] and data.label_names == ["entailment", "not_entailment"]


def test_chosen_columns_and_task_are_stored_and_reload_the_runs_data(tmp_path, run_home, capsys):
    rows = rte_like_pairs(40)
    path = write_pair_csv(tmp_path / "odd.csv", [(y, b, a) for a, b, y in rows], ("verdict", "claim", "context"))
    code = main([*TRAIN, "--dataset", f"csv:{path}", "--text-column", "context", "--text-column-b", "claim",
                 "--label-column", "verdict", "--task", "rte", "--json"])
    assert code == 0, capsys.readouterr().err
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = RunStore(run_home).get(results["run_id"])
    assert {k: run.config[k] for k in ("text_column", "text_column_b", "label_column", "task")} == \
        {"text_column": "context", "text_column_b": "claim", "label_column": "verdict", "task": "rte"}
    assert results["segment_names"] == ["context", "claim"]
    data = run_dataset(run.config)
    assert data.inputs[0] == rows[0][:2] and data.label_names == ["entailment", "not_entailment"]
    assert heldout_set(run.config).is_pair and results["n_dev"] == len(heldout_set(run.config))
    # the pair CSV declared as RTE is scored on its held-out rows and on AdvGLUE-RTE, at the end of training
    evals = json.loads((run.dir / "eval.json").read_text())
    assert set(evals) == {"heldout", "advglue-rte"} and evals["advglue-rte"]["n"] == 81
    assert results["advglue_rte_accuracy"] == evals["advglue-rte"]["accuracy"]
    assert own_sets(run.config) == ["heldout", "advglue-rte"] and same_task(run.config, "advglue-rte")
    assert main(["eval", run.id, "--json"]) == 0, "eval's default sets are the run's own"
    assert set(json.loads(capsys.readouterr().out)["results"]) == {"heldout", "advglue-rte"}
    assert not same_task(run.config, "advglue-sst2")
    with pytest.raises(DataError, match="sst2-dev holds single sentences, but this model reads sentence pairs "
                                        r"\(context / claim\)"):
        evaluate_run(RunStore(run_home), run.id, ["sst2-dev"])


def test_a_single_sentence_model_is_not_scored_on_pairs(tiny_run, monkeypatch, capsys):
    store, run = tiny_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    line = refused(["eval", run.id, "--sets", "advglue-rte"], capsys)
    assert line == ("error: --sets: advglue-rte holds sentence pairs (sentence1 / sentence2), but this model reads "
                    "single sentences")
    assert "advglue-rte" not in json.loads((run.dir / "eval.json").read_text())


@pytest.mark.parametrize("name", list(registry()))
def test_every_method_trains_on_a_pair_csv(tmp_path, run_home, name):
    path = write_pair_csv(tmp_path / "pairs.csv", rte_like_pairs(48))
    store = RunStore(run_home)
    config = TrainConfig(dataset=f"csv:{path}", model="tiny", method=name, train_size=32, epochs=1, batch_size=16)
    run = store.create(config.to_dict())
    results = execute(store, run, lambda: False)
    assert results["status"] == "done", run.log_text()
    assert results["segment_names"] == ["sentence1", "sentence2"] and 0 <= results["dev_accuracy"] <= 1


# ---------------------------------------------------------------- bad input: one line, nothing stored

def test_a_pair_csv_with_an_empty_text_names_the_column_and_lines(tmp_path, run_home, capsys):
    path = tmp_path / "holes.csv"
    path.write_text("premise,hypothesis,label\na,b,x\nc,,y\n ,d,x\ne,  ,y\nf,g,x\n", encoding="utf-8")
    line = refused([*TRAIN, "--dataset", f"csv:{path}"], capsys)
    assert line == ("error: --dataset: 1 row has no premise: line 4 and 2 rows have no hypothesis: lines 3, 5. "
                    "Every row needs both texts of its pair and a label; RobustLab does not drop rows on its own: "
                    "fill in or delete those rows")
    assert no_runs(run_home)


def test_a_column_named_twice_blames_the_second_flag(pair_csv, run_home, capsys):
    line = refused([*TRAIN, "--dataset", f"csv:{pair_csv}", "--text-column", "sentence1", "--text-column-b",
                    "sentence1"], capsys)
    assert line == ("error: --text-column-b: column 'sentence1' is chosen as both the text column and the second "
                    "text column; each role needs its own column (the CSV has: 'sentence1', 'sentence2', 'label')")
    line = refused([*TRAIN, "--dataset", f"csv:{pair_csv}", "--label-column", "sentence2"], capsys)
    assert line.startswith("error: --label-column: column 'sentence2' is chosen as both the second text column "
                           "and the label column")
    line = refused([*TRAIN, "--dataset", f"csv:{pair_csv}", "--text-column-b", "nope"], capsys)
    assert line == "error: --text-column-b: no column named 'nope'; the CSV has: 'sentence1', 'sentence2', 'label'"
    assert no_runs(run_home)


def test_a_declared_task_with_a_class_absent_or_foreign_labels_is_refused(tmp_path, run_home, capsys):
    path = write_pair_csv(tmp_path / "nli.csv", [(a, b, "entailment" if y == "entailment" else "contradiction")
                                                 for a, b, y in rte_like_pairs(30)], ("premise", "hypothesis", "label"))
    line = refused([*TRAIN, "--dataset", f"csv:{path}", "--task", "mnli"], capsys)
    assert line == ("error: --task: no row has the class 'neutral' of mnli (its classes: entailment, neutral, "
                    "contradiction); every class of the task needs examples to be learned and scored")
    line = refused([*TRAIN, "--dataset", f"csv:{path}", "--task", "rte"], capsys)
    assert line.startswith("error: --task: the labels on line 3 are not classes of rte (its classes: "
                           "entailment, not_entailment)") and "contradiction" not in line, line
    line = refused([*TRAIN, "--dataset", "sst2", "--task", "rte"], capsys)
    assert line == "error: --task: task is for an uploaded CSV (csv:PATH); sst2 has its own columns and task"
    assert no_runs(run_home)


def test_a_registered_training_set_without_one_class_is_refused(glue_folder, run_home, capsys):
    write_glue_rte(glue_folder, [row for row in rte_like_pairs(40) if row[2] == "entailment"], "train.tsv")
    write_glue_rte(glue_folder, rte_like_pairs(10), "dev.tsv")
    line = refused([*TRAIN, "--dataset", "rte"], capsys)
    assert line == ("error: --dataset: rte has no example of the class not_entailment (its classes: entailment, "
                    "not_entailment); every class needs training examples")
    assert no_runs(run_home)


def test_an_advglue_file_without_the_task_reaches_the_command_line(glue_folder, pair_csv, run_home, capsys):
    (glue_folder / "advglue" / "dev.json").write_text('{"sst2": []}', encoding="utf-8")
    line = refused([*TRAIN, "--dataset", f"csv:{pair_csv}", "--task", "rte"], capsys)
    assert line == (f"error: --dataset: {glue_folder / 'advglue' / 'dev.json'} has no 'rte' part (it has: "
                    f"'sst2')")
    assert no_runs(run_home)


def test_a_tokenizer_without_a_pair_template_is_refused_for_pairs(tmp_path, pair_csv, run_home, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from engine.models.loading import build_classifier

    folder = tmp_path / "no-pairs"
    build_classifier("tiny", 2).save_pretrained(folder)
    words = Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(folder)
    line = refused([*TRAIN, "--model", str(folder), "--dataset", f"csv:{pair_csv}"], capsys)
    assert line.startswith(f"error: --model: csv:{pair_csv} holds sentence pairs (sentence1 / sentence2), but model "
                           f"{folder} cannot read them: its tokenizer has no separator token"), line
    assert no_runs(run_home)
