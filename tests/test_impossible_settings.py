"""Impossible settings are refused before a run exists: non-finite numbers, counts past their caps
(engine/limits.py), integers past int64, names too long for the file system, model folders that need remote code,
hold only pickle weights or could not fit in memory; and a run whose loss becomes NaN stops and fails saying so."""
from __future__ import annotations

import json

import pytest
from cli_util import refused

from engine import limits
from engine.__main__ import main
from engine.store.runs import RunStore
from engine.training.config import TrainConfig

TRAIN = ["train", "--model", "tiny", "--train-size", "32", "--batch-size", "16"]
FLOAT_FLAGS = ["--lr", "--weight-decay", "--warmup-ratio", "--adam-beta2", "--grad-clip", "--dev-fraction"]


def nothing_stored(home) -> bool:
    """No run in the index and no run folder on disk (the uploads folder aside)."""
    return RunStore().list() == [] and not [p for p in home.glob("*") if p.is_dir() and p.name != "uploads"]


def test_every_float_field_of_train_config_has_a_flag_here():
    floats = {f"--{name.replace('_', '-')}" for name, kind in TrainConfig.__annotations__.items()
              if kind.startswith("float")}
    assert floats == set(FLOAT_FLAGS)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("flag", FLOAT_FLAGS)
def test_non_finite_floats_are_refused_by_flag(run_home, capsys, flag, value):
    line = refused([*TRAIN, f"{flag}={value}"], capsys)
    assert line.startswith(f"error: {flag}: ") and "must be a finite number" in line, line
    assert nothing_stored(run_home)


@pytest.mark.parametrize("setting", ["--set kl_dropout=nan", "--set gamma=inf"])
def test_non_finite_method_settings_are_refused(run_home, capsys, setting):
    line = refused([*TRAIN, "--method", "rose-ensemble", *setting.split()], capsys)
    assert line.startswith("error: --set: ") and "finite" in line, line
    assert nothing_stored(run_home)


def test_an_infinite_noise_scale_is_refused(run_home, capsys):
    spec = '{"kind": "noise", "layers": [0], "scale": Infinity}'
    line = refused([*TRAIN, "--corruption", spec], capsys)
    assert line.startswith("error: --corruption: ") and "finite" in line, line


@pytest.mark.parametrize("flag, cap", [("--epochs", limits.MAX_EPOCHS), ("--train-size", limits.MAX_EXAMPLES),
                                       ("--dev-size", limits.MAX_EXAMPLES), ("--batch-size", limits.MAX_BATCH_SIZE),
                                       ("--seed", limits.MAX_SEED), ("--eval-every", limits.MAX_INTERVAL),
                                       ("--max-length", limits.MAX_LENGTH)])
def test_counts_past_their_cap_are_refused(run_home, capsys, flag, cap):
    line = refused([*TRAIN, flag, str(cap + 1)], capsys)
    assert line.startswith(f"error: {flag}: ") and f"{cap:,}" in line, line
    assert nothing_stored(run_home)


def test_a_seed_beyond_int64_is_refused_and_leaves_no_folder(run_home, capsys):
    line = refused([*TRAIN, "--seed", str(10**21)], capsys)
    assert line.startswith("error: --seed: ") and "at most 4,294,967,295" in line, line
    assert nothing_stored(run_home)


def test_a_suite_of_too_many_seeds_is_refused(run_home, capsys):
    seeds = ",".join(map(str, range(limits.MAX_SEEDS + 1)))
    line = refused(["suite", "--methods", "vanilla", "--seeds", seeds, "--model", "tiny", "--train-size", "32",
                    "--epochs", "1", "--batch-size", "16", "--attack-n", "0"], capsys)
    assert f"at most {limits.MAX_SEEDS}" in line, line
    assert nothing_stored(run_home)


@pytest.mark.parametrize("attack_dataset, says", [("nosuchset", "unknown dataset 'nosuchset'"),
                                                  ("heldout", "only for a suite trained on an uploaded CSV"),
                                                  ("advglue-rte", "holds sentence pairs")])
def test_suite_attack_dataset_is_checked_before_anything_is_queued(run_home, capsys, attack_dataset, says):
    line = refused(["suite", "--methods", "vanilla", "--seeds", "0", "--model", "tiny", "--train-size", "32",
                    "--epochs", "1", "--batch-size", "16", "--attack-dataset", attack_dataset], capsys)
    assert "attack dataset" in line and says in line, line
    assert nothing_stored(run_home)


@pytest.mark.parametrize("command", ["attack", "behave"])
def test_attack_and_behave_refuse_a_seed_beyond_int64(attack_target, capsys, command):
    line = refused([command, attack_target, "--seed", str(10**21)], capsys)
    assert line.startswith("error: --seed: ") and "4,294,967,295" in line, line
    assert [row["id"] for row in RunStore().list()] == [attack_target]


LONG = "x" * 300


@pytest.mark.parametrize("argv, flag", [
    (["runs", "show", LONG], "RUN_ID"),
    (["eval", LONG], "RUN_ID"),
    (["attack", LONG], "RUN_ID"),
    (["behave", LONG], "RUN_ID"),
    (["probe", LONG], "RUN_ID"),
    (["behave", "--runs", f"a,{LONG}"], "--runs"),
    (["behave", "somerun", "--suite", f"/tmp/{LONG}.json"], "--suite"),
    (["runs", "export", "somerun", "--out", f"/tmp/{LONG}.zip"], "--out"),
    ([*TRAIN, "--extra-data", f"/tmp/{LONG}.csv"], "--extra-data"),
    ([*TRAIN, "--dataset", f"csv:/tmp/{LONG}.csv"], "--dataset"),
    ([*TRAIN, "--dataset", "csv:" + "/d" * 3000], "--dataset"),
])
def test_names_too_long_for_the_file_system_are_one_line_refusals(run_home, capsys, argv, flag):
    line = refused(argv, capsys)
    assert line.startswith(f"error: {flag}: ") and "cannot" in line and "long" in line, line
    assert len(line) < 400, len(line)


def test_argparse_errors_are_cut_and_escape_control_characters(run_home, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*TRAIN, "--epochs", "9" * 5000])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.splitlines()[-1]) < 400, err[-500:]
    with pytest.raises(SystemExit):
        main(["runs", "\x1b[31mlist"])
    err = capsys.readouterr().err
    assert "\x1b" not in err, err


def test_error_lines_show_terminal_escapes_as_code_points(run_home, capsys):
    """A message that repeats a path as it is (no `quoted`) still prints no terminal escape, on one cut line."""
    path = "/tmp/\x1b[2Jevil/" + ("y" * 200 + "/") * 15 + "f.csv"
    line = refused([*TRAIN, "--dataset", f"csv:{path}"], capsys)
    assert line.startswith("error: --dataset: ") and "\x1b" not in line and "⟨U+001B⟩" in line, line
    assert len(line) < 2100, len(line)


# ---------------------------------------------------------------- model folders

def tiny_folder(folder, **config_changes) -> None:
    """A folder holding the tiny model's config.json (with `config_changes`), without weights."""
    from engine.models.loading import tiny_config

    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_config(2).to_dict()
    config.update({"architectures": ["BertForSequenceClassification"], **config_changes})
    (folder / "config.json").write_text(json.dumps(config))


def test_a_pickle_only_folder_is_refused_by_name(run_home, capsys, tmp_path):
    tiny_folder(tmp_path / "m")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"\x80\x02not really a pickle")
    line = refused([*TRAIN[:1], "--model", str(tmp_path / "m"), *TRAIN[3:]], capsys)
    assert line.startswith("error: --model: ") and "has only pickle weights (pytorch_model.bin); convert it to " \
                                                   "safetensors" in line, line
    assert nothing_stored(run_home)


@pytest.mark.parametrize("changes, says", [
    ({"auto_map": {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}}, "auto_map"),
    ({"architectures": ["EvilForSequenceClassification"]}, "architecture 'EvilForSequenceClassification'"),
    ({"model_type": "evil-bert"}, "model type 'evil-bert'"),
])
def test_a_folder_that_needs_remote_code_is_refused(run_home, capsys, tmp_path, changes, says):
    tiny_folder(tmp_path / "m", **changes)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    line = refused([*TRAIN[:1], "--model", str(tmp_path / "m"), *TRAIN[3:]], capsys)
    assert line.startswith("error: --model: ") and "needs remote code" in line and "never runs" in line \
        and says in line, line
    assert nothing_stored(run_home)


def test_a_config_too_large_for_memory_is_refused_with_its_size(run_home, capsys, tmp_path):
    tiny_folder(tmp_path / "m", hidden_size=8192, num_hidden_layers=48, intermediate_size=32768,
                num_attention_heads=64, vocab_size=250_000)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    line = refused([*TRAIN[:1], "--model", str(tmp_path / "m"), *TRAIN[3:], "--device", "cpu"], capsys)
    assert line.startswith("error: --model: ") and "billion parameters" in line and "GiB" in line, line
    assert nothing_stored(run_home)


def test_the_parameter_estimate_is_within_two_percent_of_a_built_model():
    """vocab x hidden (+ positions, types) + layers x (4 hidden^2 + 2 hidden x intermediate): within 2 % of the
    parameters a built BERT really has (biases and LayerNorms are what it leaves out)."""
    from transformers import BertConfig, BertModel

    from engine.models.folder import estimated_parameters

    config = BertConfig(vocab_size=5000, hidden_size=128, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=512)
    real = sum(p.numel() for p in BertModel(config, add_pooling_layer=False).parameters())
    assert abs(estimated_parameters(config.to_dict()) - real) / real < 0.02


# ---------------------------------------------------------------- a NaN loss

def test_a_nan_loss_fails_the_run_naming_the_step(run_home, tmp_path):
    """A model folder with one NaN weight (in the classifier head) makes the first step's loss NaN: the run
    fails with that reason and saves no model, instead of finishing "done" with NaN weights."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from engine.execution.jobs import execute
    from engine.models.loading import load_tokenizer, tiny_config

    model = AutoModelForSequenceClassification.from_config(tiny_config(2))
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    model.save_pretrained(tmp_path / "nan-model", safe_serialization=True)
    load_tokenizer("tiny").save_pretrained(tmp_path / "nan-model")
    store = RunStore()
    run = store.create(TrainConfig(model=str(tmp_path / "nan-model"), train_size=32, batch_size=16, epochs=1,
                                   dev_size=16).to_dict())
    execute(store, run, lambda: False)
    assert run.status["status"] == "failed", run.status
    assert "the loss became NaN at step 1" in run.status["error"], run.status["error"]
    assert not (run.dir / "model" / "model.safetensors").exists()


def test_a_queued_run_on_a_pickle_only_folder_fails_saying_so(run_home, tmp_path):
    """A run queued without preflight (the Train page queues, then the worker trains) fails with the true reason."""
    from engine.execution.jobs import execute

    tiny_folder(tmp_path / "m")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"\x80\x02not really a pickle")
    store = RunStore()
    run = store.create(TrainConfig(model=str(tmp_path / "m"), train_size=32, batch_size=16).to_dict())
    execute(store, run, lambda: False)
    assert run.status["status"] == "failed" and "has only pickle weights" in run.status["error"], run.status


def test_a_suite_file_name_too_long_is_a_suite_file_error():
    from engine.behaviour.spec import BehaviourSuiteError, load_behaviour_suite

    with pytest.raises(BehaviourSuiteError, match="cannot name a suite file: a folder or file name in it is longer"):
        load_behaviour_suite("/tmp/" + "s" * 300 + ".json")
