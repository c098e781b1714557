"""The command line refuses, before any run exists, everything it can check: exit code 2, one line on stderr
that names the option at fault, and an empty run store afterwards (a refused command never leaves a failed run
behind for the Playground to open)."""
from __future__ import annotations

import pytest
from cli_util import refused

from engine.store.runs import RunStore
from engine.training.config import TrainConfig


@pytest.mark.parametrize("argv, flag, says", [
    (["--method", "im-bert", "--set", "layers=99"], "--set", "names layer 99, but the encoder has only 2 layers"),
    (["--method", "im-bert", "--set", "h=nope"], "--set", "nope"),
    (["--seed", "-5"], "--seed", "(got -5)"),
    (["--epochs", "0"], "--epochs", "(got 0)"),
    (["--method", "nosuchmethod"], "--method", "unknown method 'nosuchmethod'"),
    (["--dataset", "nosuchset"], "--dataset", "unknown dataset 'nosuchset'"),
    (["--corruption", '{"layers": [9]}'], "--corruption", "layer 9 does not exist"),
])
def test_train_refuses_bad_flags_before_a_run_exists(run_home, capsys, argv, flag, says):
    line = refused(["train", "--model", "tiny", "--train-size", "32", "--batch-size", "16", *argv], capsys)
    assert line.startswith(f"error: {flag}: ") and says in line, line
    assert RunStore().list() == []


def test_a_folder_that_holds_no_model_is_named_whole(run_home, capsys, tmp_path):
    line = refused(["train", "--model", str(tmp_path)], capsys)
    assert line.startswith("error: --model: ") and f"{tmp_path} " in line and "no config.json" in line, line
    assert RunStore().list() == []


@pytest.mark.parametrize("argv, flag, says", [
    (["--dataset", "nosuchset"], "--dataset", "unknown dataset 'nosuchset'"),
    (["--n", "100000"], "--n", "100000 is more than the 872 examples of sst2-dev"),
    (["--n", "0"], "--n", "at least 1"),
    (["--recipe", "nosuchrecipe"], "--recipe", "unknown recipe 'nosuchrecipe'"),
    (["--max-fraction", "2"], "--max-fraction", "(0, 1]"),
])
def test_attack_refuses_bad_flags_before_a_run_exists(attack_target, capsys, argv, flag, says):
    line = refused(["attack", attack_target, *argv], capsys)
    assert line.startswith(f"error: {flag}: ") and says in line, line
    assert [row["id"] for row in RunStore().list()] == [attack_target]


def test_heldout_is_the_csv_runs_own_split_and_refused_for_other_runs(attack_target, capsys, tmp_path):
    """`--dataset heldout` is read as the attack will read it: the held-out split of the run's own CSV (10 % of
    50 rows here), and refused by name for a run not trained on a CSV."""
    csv = tmp_path / "three.csv"
    csv.write_text("text,label\n" + "".join(f"sentence number {i},{i % 3}\n" for i in range(50)))
    store = RunStore()
    run = store.create(TrainConfig(model="tiny", dataset=f"csv:{csv}").to_dict())
    (run.dir / "model").mkdir()
    (run.dir / "model" / "config.json").write_text('{"id2label": {"0": "0", "1": "1", "2": "2"}}')
    (run.dir / "model" / "model.safetensors").write_bytes(b"")
    run.set_status("done")
    store.update_index(run)
    line = refused(["attack", run.id, "--dataset", "heldout", "--n", "100"], capsys)
    assert line.startswith("error: --n: 100 is more than the ") and "examples of heldout" in line, line
    line = refused(["attack", attack_target, "--dataset", "heldout"], capsys)
    assert line.startswith("error: --dataset: ") and "only for runs trained on an uploaded CSV" in line, line
