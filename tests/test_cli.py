"""The `train` flags generated from TrainConfig, and the command that reproduces a stored config."""
from __future__ import annotations

import dataclasses
import shlex

import pytest

from engine.__main__ import build_parser
from engine.store.runs import RunStore
from engine.training.config import TrainConfig
from engine.training.flags import config_from_args, train_command

# every field away from its default, for two methods whose settings cover floats, strings, lists and booleans
CHANGED = dict(dataset="csv:/tmp/my data.csv", model="tiny", train_size=None, epochs=3, batch_size=8, lr=2e-5,
               weight_decay=0.05, warmup_ratio=0.2, adam_beta2=0.98, grad_clip=0.5, max_length=64, seed=7,
               eval_every=3, dev_size=100, record_every=2, log_every=1, dev_fraction=0.2, device="cpu",
               label_order=["very good", "bad", "so so"], text_column="the text", text_column_b="-1",
               label_column="y", task="rte", extra_data="/tmp/my failures.csv",
               corruption={"positions": ["bottom"], "levels": [1], "kind": "noise", "scale": 0.5})
SETTINGS = {"rose-ensemble": {"upper": 75.5, "lower": 1.0, "gamma": 0.25, "kl_dropout": 0.2, "warmup_steps": 3},
            "im-bert": {"h": 0.5, "K": 3, "field": "layer", "exact_grad": True, "layers": [0, 1]}}


def parse(command: str) -> TrainConfig:
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "engine", "train"]
    return config_from_args(build_parser().parse_args(words[3:]))


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_printed_command_parses_back_to_the_same_config(method):
    config = TrainConfig(**CHANGED, method=method, settings=SETTINGS[method])
    default = TrainConfig()
    unchanged = [f.name for f in dataclasses.fields(TrainConfig) if getattr(config, f.name) == getattr(default, f.name)]
    assert unchanged == [], "the round trip must cover every field"
    assert parse(train_command(config.to_dict())) == config


def test_defaults_print_only_the_method_and_parse_back_to_the_defaults():
    assert train_command(TrainConfig().to_dict()) == "python -m engine train --method vanilla"
    assert parse("python -m engine train") == TrainConfig()


def test_overrides_and_none_as_minus_one():
    command = train_command({**TrainConfig(train_size=None, seed=4).to_dict(), "kind": "train", "run_id": "x"},
                            method="uegr", settings={"rho": 0.25})
    assert command == "python -m engine train --method uegr --train-size -1 --seed 4 --set rho=0.25"
    assert parse(command) == TrainConfig(method="uegr", train_size=None, seed=4, settings={"rho": 0.25})
    assert parse("python -m engine train --dev-size -1 --corruption null").dev_size is None


def test_every_field_has_help_and_a_flag():
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"], f.name
        assert ("--set" if f.name == "settings" else "--" + f.name.replace("_", "-")) in help_text


@pytest.mark.parametrize("args", [["--corruption", "[1, 2]"], ["--corruption", "{nope"], ["--epochs", "x"]])
def test_bad_flag_values_exit_2(args, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["train", *args])
    assert stop.value.code == 2 and args[0] in capsys.readouterr().err


def test_command_like_keeps_the_settings_only_for_the_runs_own_method(run_home):
    from app.methods.views import command_like

    run = RunStore(run_home).create(TrainConfig(method="rose-first", model="tiny", settings={"upper": 60.0},
                                                weight_decay=0.0).to_dict())
    assert command_like(run, "rose-first") == ("python -m engine train --method rose-first --model tiny "
                                               "--weight-decay 0.0 --set upper=60.0 --json")
    assert command_like(run, "vanilla") == ("python -m engine train --method vanilla --model tiny "
                                            "--weight-decay 0.0 --json")
