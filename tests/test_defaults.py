"""Defaults that learn: each model's default learning rate, written into every config as the number used, and
the same defaults on the CLI, in suites, in recovery grids and on the Train and Recovery pages."""
from __future__ import annotations

import pytest
from apptest_util import no_exception, page

from engine.__main__ import build_parser
from engine.recovery.grid import GridSpec
from engine.store.runs import RunStore
from engine.suite.job import SuiteSpec
from engine.training.config import TrainConfig, default_lr
from engine.training.flags import config_from_args, train_command

MINILM_LR, TINY_LR, OTHER_LR = 2e-4, 5e-5, 5e-5


def test_each_model_has_its_default_rate_and_the_config_stores_the_number(run_home):
    assert [TrainConfig(model=m).lr for m in ("minilm", "tiny", "org/some-bert", "/a/folder")] == \
        [MINILM_LR, TINY_LR, OTHER_LR, OTHER_LR]
    assert TrainConfig().lr == MINILM_LR and TrainConfig(lr=1e-3).lr == 1e-3
    assert TrainConfig.from_dict({"model": "minilm", "lr": 5e-5}).lr == 5e-5    # an old run keeps its rate
    assert RunStore(run_home).create(TrainConfig().to_dict()).config["lr"] == MINILM_LR


@pytest.mark.parametrize("args, lr", [([], MINILM_LR), (["--model", "tiny"], TINY_LR), (["--lr", "5e-5"], 5e-5),
                                      (["--model", "tiny", "--lr", "-1"], TINY_LR)])
def test_train_flags_take_the_models_rate_unless_one_is_given(args, lr):
    assert config_from_args(build_parser().parse_args(["train", *args])).lr == lr


def test_the_printed_command_names_a_rate_only_when_it_is_not_the_models_default():
    assert "--lr" not in train_command(TrainConfig(model="tiny").to_dict())
    assert train_command(TrainConfig(lr=5e-5).to_dict()).endswith("--lr 5e-05")      # a MiniLM run from before
    assert train_command(TrainConfig(model="tiny", lr=MINILM_LR).to_dict()).endswith("--model tiny --lr 0.0002")


def test_suites_use_the_models_rate():
    args = build_parser().parse_args(["suite"])                  # no --lr: the CLI leaves it to the model
    spec = SuiteSpec(methods=["vanilla"], seeds=[0], train={"batch_size": args.batch_size, "lr": args.lr})
    assert spec.train_config("vanilla", 0).lr == MINILM_LR
    assert SuiteSpec(methods=["vanilla"], seeds=[0], model="tiny").train_config("vanilla", 0).lr == TINY_LR


def test_the_grid_budget_is_2000_examples_for_2_epochs_at_the_models_rate_on_the_cli_too():
    spec = GridSpec()
    assert (spec.train_size, spec.epochs, spec.batch_size, spec.lr) == (2000, 2, 32, MINILM_LR)
    assert GridSpec(model="tiny").lr == TINY_LR and GridSpec(lr=1e-4).lr == 1e-4
    assert spec.to_dict()["lr"] == MINILM_LR                                     # the grid's config records it
    args = build_parser().parse_args(["recover"])
    assert (args.train_size, args.epochs, args.batch_size) == (spec.train_size, spec.epochs, spec.batch_size)
    assert GridSpec(model=args.model, lr=args.lr).lr == MINILM_LR


def _lr_input(at):
    (field,) = [n for n in at.number_input if n.label == "Learning rate"]
    return field


def test_train_and_recovery_pages_start_from_the_chosen_models_rate(run_home):
    at = no_exception(page("train.py").run())
    assert _lr_input(at).value == default_lr("minilm") == MINILM_LR
    at.radio(key="train-model").set_value("tiny").run()
    assert _lr_input(no_exception(at)).value == TINY_LR

    at = no_exception(page("recovery.py").run())
    assert _lr_input(at).value == MINILM_LR
    assert (at.number_input(key="rec-train").value, at.number_input(key="rec-epochs").value,
            at.number_input(key="rec-batch").value) == (2000, 2, 32)
    at.radio(key="rec-model").set_value("tiny").run()
    assert _lr_input(no_exception(at)).value == TINY_LR
