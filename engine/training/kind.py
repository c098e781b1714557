"""The `train` job kind: a TrainConfig fine-tuned into a saved model, reused when the model config is the same."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.execution.kinds import JobKind, Progress
from engine.methods import make_method
from engine.store.runs import Run
from engine.training.config import TrainConfig

# config fields that do not change the trained model: runs that differ only here are the same run
NOT_MODEL_FIELDS = ("device", "eval_every", "record_every", "log_every")


class TrainKind(JobKind):
    name = "train"
    title = "fine-tuning run"
    records = ("model/", "metrics.jsonl", "eval.json", "results.json")

    def narrowing(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"method": config["method"]}

    def check(self, config: Mapping[str, Any]) -> None:
        TrainConfig.from_dict(dict(config)).check()

    def preflight(self, config: Mapping[str, Any]) -> Any:
        """Everything `engine.training.train.preflight` refuses (one ConfigError naming each field); the splits."""
        from engine.training.train import preflight  # transformers: slow to import, needed only here

        return preflight(TrainConfig.from_dict(dict(config)))

    def reuse_key(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The parts of a training config that decide the trained model, with the method's settings filled in."""
        values = TrainConfig.from_dict(dict(config)).to_dict()
        values["settings"] = make_method(values["method"], values["settings"]).settings
        return {k: v for k, v in values.items() if k not in NOT_MODEL_FIELDS}

    def reusable(self, run: Run) -> bool:
        """A run that still holds its model and is not a recovery cell (its encoder was corrupted on purpose)."""
        return run.has_model() and not run.config.get("recovery")

    def run(self, run: Run, should_stop: Callable[[], bool], progress: Progress | None) -> dict[str, Any]:
        from engine.training.train import run_job  # transformers: slow to import, needed only here

        return run_job(run, should_stop, progress)


KIND = TrainKind()
