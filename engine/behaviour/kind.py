"""The `behaviour` job kind: a behaviour-test suite's cases predicted by a trained run and scored per test."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.behaviour.runner import CONFIG_KEYS, run_job
from engine.behaviour.spec import behaviour_suite_from_data
from engine.execution.kinds import JobKind, Progress
from engine.store.runs import Run


class BehaviourKind(JobKind):
    name = "behaviour"
    title = "behaviour tests"
    records = ("cases.jsonl", "results.json")
    reuse_fields = CONFIG_KEYS

    def narrowing(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"parent": config["target"]}

    def check(self, config: Mapping[str, Any]) -> None:
        behaviour_suite_from_data(config["suite_data"], fallback_name=config.get("suite", "custom"))

    def run(self, run: Run, should_stop: Callable[[], bool], progress: Progress | None) -> dict[str, Any]:
        return run_job(run, should_stop, progress)


KIND = BehaviourKind()
