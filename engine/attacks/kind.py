"""The `attack` job kind: one recipe and budget run over the first n sentences of a set, against a trained run."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.attacks.attacker import Budget
from engine.attacks.batch import CONFIG_KEYS, batch_config, run_job
from engine.execution.kinds import JobKind, Progress
from engine.store.runs import Run


class AttackKind(JobKind):
    name = "attack"
    title = "batch attack"
    records = ("results.jsonl", "results.csv", "results.json")
    reuse_fields = CONFIG_KEYS

    def narrowing(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"parent": config["target"]}

    def check(self, config: Mapping[str, Any]) -> None:
        batch_config(config["target"], config["recipe"], config["dataset"], config["n"],
                     Budget(config["max_queries"], config["max_fraction"]), config.get("seed", 0),
                     config.get("segment"))

    def run(self, run: Run, should_stop: Callable[[], bool], progress: Progress | None) -> dict[str, Any]:
        return run_job(run, should_stop, progress)


KIND = AttackKind()
