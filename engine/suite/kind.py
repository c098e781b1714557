"""The `suite` job kind: methods x seeds, each item a train run (and its attack and behaviour runs)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.execution.kinds import JobKind, Progress
from engine.store.runs import Run
from engine.suite.job import SuiteSpec, run_job


class SuiteKind(JobKind):
    name = "suite"
    title = "benchmark suite"
    records = ("results.json",)    # its models, attacks and behaviour results are runs of their own kinds

    def check(self, config: Mapping[str, Any]) -> None:
        SuiteSpec.from_dict(dict(config)).check()

    def run(self, run: Run, should_stop: Callable[[], bool], progress: Progress | None) -> dict[str, Any]:
        return run_job(run, should_stop, progress)


KIND = SuiteKind()
