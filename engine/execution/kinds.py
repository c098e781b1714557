"""The job-kind registry: every `engine/<package>/kind.py` that defines `KIND` is a kind of job.

A kind is declared like a method (engine/methods/): what its config is and how it is checked (`check`, cheap;
`preflight`, which may read data and models), what makes two runs the same (`reuse_key`: a finished run with an
equal key is reused, not repeated), how it runs (`run(run, should_stop, progress) -> results`) and the files a
finished run of it holds (`records`). The worker, the queue, the suite, the Ray executor, the pages and the CLI
find a kind here by the name a run records; none of them names a kind's module. A new analysis is one package
with a `kind.py` plus one page.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar

import engine
from engine.store.runs import Run, RunError, RunStore
from engine.user_text import quoted

Progress = Callable[[int, int, float], None]   # progress(step, total, value): every job reports so


class JobKind:
    """One kind of job. Subclasses set the class attributes and override `run`; the rest have defaults."""
    name: ClassVar[str]                    # what a run's `kind` records
    title: ClassVar[str]                   # what a page or `python -m engine kinds` calls it
    records: ClassVar[tuple[str, ...]]     # files (a trailing / for a folder) in a finished run's folder
    reuse_fields: ClassVar[tuple[str, ...] | None] = None   # config fields that decide the result; None: never reused

    def check(self, config: Mapping[str, Any]) -> None:
        """Refuse an impossible config by what it says alone (no files read); a ValueError says why."""

    def preflight(self, config: Mapping[str, Any]) -> Any:
        """Refuse what only reading the data or the model can show, before a run is created; returns what it read
        that a caller may show (the train kind: the splits and their notes). Default: `check`."""
        self.check(config)

    def reuse_key(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """What a finished run must share with `config` to be reused instead of run again; None: never reused."""
        if self.reuse_fields is None:
            return None
        return {name: config.get(name) for name in self.reuse_fields}

    def narrowing(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Index columns (`RunStore.list`'s filters) a reusable run shares with `config`: a cheap first cut."""
        return {}

    def reusable(self, run: Run) -> bool:
        """Whether a finished run of this kind can stand in for a new one (say, it still holds its model)."""
        return True

    def run(self, run: Run, should_stop: Callable[[], bool], progress: Progress | None) -> dict[str, Any]:
        raise NotImplementedError

    def find_done(self, store: RunStore, config: Mapping[str, Any]) -> Run | None:
        """The newest finished run of this kind with the same reuse key as `config`, or None."""
        wanted = self.reuse_key(config)
        if wanted is None:
            return None
        for row in store.list(kind=self.name, status="done", **self.narrowing(config)):
            run = store.get(row["id"])
            if self.reusable(run) and self.reuse_key(run.config) == wanted:
                return run
        return None


@lru_cache(maxsize=1)
def registry() -> dict[str, JobKind]:
    """Every kind, found by looking for `engine.<package>.kind` modules (imported only here, when first asked)."""
    found: dict[str, JobKind] = {}
    for info in sorted(pkgutil.iter_modules(engine.__path__), key=lambda m: m.name):
        name = f"engine.{info.name}.kind"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            kind = importlib.import_module(name).KIND
            found[kind.name] = kind
    return found


def job_kind(name: str) -> JobKind:
    """The kind a run records; RunError naming the known ones for any other."""
    kinds = registry()
    if name not in kinds:
        raise RunError(f"unknown job kind {quoted(name)}; known: {', '.join(kinds)}")
    return kinds[name]


def find_done(store: RunStore, kind: str, config: Mapping[str, Any]) -> Run | None:
    """A finished run of `kind` that `config` would repeat, or None: the one reuse lookup every caller uses."""
    return job_kind(kind).find_done(store, config)
