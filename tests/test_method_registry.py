"""Every registered method, trained briefly: it records exactly the artifacts it declares, the training loop
writes them while it trains (live pages need no help from the method), and the pages read only declared ones."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.jobs import execute
from engine.methods import registry
from engine.recorder import Recorder
from engine.runs import RunStore
from engine.suite import default_methods
from engine.train import LOOP_ARTIFACTS
from engine.train_config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
# `artifact(run, "rose")` in the app's helpers, `run.artifact("im_residual")` on a Run
READS = re.compile(r"""\bartifact\(\s*\w+\s*,\s*["'](\w+)["']|\.artifact\(\s*["'](\w+)["']""")


@pytest.mark.parametrize("name", list(registry()))
def test_method_records_what_it_declares_and_the_loop_flushes_it_live(run_home, monkeypatch, name):
    monkeypatch.setattr(Recorder, "live_seconds", 0.0)   # flush on every recording step
    store = RunStore(run_home)
    config = TrainConfig(model="tiny", method=name, train_size=32, epochs=1, batch_size=16, dev_size=32,
                         eval_every=100)   # two steps, both recording; no evaluation (and its flush) before the end
    run = store.create(config.to_dict())
    live: list[str] = []

    def progress(step: int, _total: int, _value: float) -> None:
        if step == 1:
            live.extend(run.artifact_names())

    assert execute(store, run, lambda: False, progress)["status"] == "done", run.log_text()
    declared = {**registry()[name].artifacts, **LOOP_ARTIFACTS}
    assert sorted(run.artifact_names()) == sorted(declared)
    assert sorted(live) == sorted(declared), "the loop writes every method's records while it trains"
    for artifact, keys in declared.items():
        assert set(keys) <= set(run.artifact(artifact)), artifact


def test_pages_read_only_declared_artifacts():
    declared = set(LOOP_ARTIFACTS).union(*(cls.artifacts for cls in registry().values()))
    read = {a or b for path in [*ROOT.glob("pages/**/*.py"), *ROOT.glob("app/**/*.py")]
            for a, b in READS.findall(path.read_text(encoding="utf-8"))}
    assert {"drift", "rose", "uegr", "match", "im_residual"} <= read, "the scan finds the pages' reads"
    assert read <= declared


def test_default_suite_is_every_registered_method():
    assert default_methods() == list(registry())
