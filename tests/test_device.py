"""Device choice: an explicit device wins, "auto" honours ROBUSTLAB_DEVICE, and a bad name is refused clearly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.models.device import DeviceError, pick_device

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("preferred", [None, "auto"])
def test_auto_takes_the_environment_variable(monkeypatch, preferred):
    monkeypatch.setenv("ROBUSTLAB_DEVICE", "meta")      # a device no machine picks by itself
    assert pick_device(preferred) == torch.device("meta")


def test_an_explicit_device_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_DEVICE", "nosuch")
    assert pick_device("cpu") == torch.device("cpu")


def test_a_bad_environment_variable_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_DEVICE", "nosuch")
    with pytest.raises(DeviceError, match="ROBUSTLAB_DEVICE 'nosuch' is not a device name"):
        pick_device("auto")


def test_an_accelerator_this_machine_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="does not have"):
        pick_device("cuda")
    monkeypatch.setenv("ROBUSTLAB_DEVICE", "cuda:0")
    with pytest.raises(DeviceError, match="ROBUSTLAB_DEVICE 'cuda:0' asks for CUDA"):
        pick_device()


def test_training_with_the_default_device_reads_the_variable(run_home, monkeypatch):
    from engine.training.config import TrainConfig
    from engine.training.train import train

    config = TrainConfig(model="tiny", train_size=16, batch_size=16, epochs=1)
    assert config.device == "auto"
    monkeypatch.setenv("ROBUSTLAB_DEVICE", "nosuch")
    with pytest.raises(DeviceError, match="ROBUSTLAB_DEVICE"):
        train(config)


@pytest.mark.slow
def test_cli_train_refuses_a_bad_device_variable_before_creating_a_run(run_home):
    env = {**os.environ, "ROBUSTLAB_HOME": str(run_home), "ROBUSTLAB_DEVICE": "nosuch"}
    done = subprocess.run([sys.executable, "-m", "engine", "train", "--model", "tiny", "--train-size", "16",
                           "--batch-size", "16", "--epochs", "1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "ROBUSTLAB_DEVICE 'nosuch'" in done.stderr, done.stderr
    assert not list(run_home.glob("*/config.json")), "no run is created"
