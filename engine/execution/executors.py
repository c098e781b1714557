"""Choosing where a job's items run: the one module that knows both executors, so neither imports the other."""
from __future__ import annotations

from engine.execution.executor import Executor, ExecutorSpec, LocalExecutor
from engine.execution.ray_executor import RayExecutor  # ray: slow to import, optional


def make_executor(spec: ExecutorSpec) -> Executor:
    """The executor a job's config names; `ray` connects to its cluster here (ExecutorError when it cannot)."""
    spec.check()
    if spec.kind == "local":
        return LocalExecutor()

    return RayExecutor.connect(spec)
