"""The `recover` job kind: a grid of corrupted fine-tuning cells, each a child `train` run, and their analysis."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.execution.kinds import JobKind, Progress
from engine.recovery.grid import GridSpec, run_job
from engine.store.runs import Run


class RecoverKind(JobKind):
    name = "recover"
    title = "recovery grid"
    records = ("results.json",)    # each cell's model and curves are in the cell's own train run

    def check(self, config: Mapping[str, Any]) -> None:
        GridSpec.from_dict(dict(config)).check(config["num_layers"])

    def run(self, run: Run, should_stop: Callable[[], bool], progress: Progress | None) -> dict[str, Any]:
        return run_job(run, should_stop, progress)


KIND = RecoverKind()
