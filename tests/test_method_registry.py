"""Every registered method, trained briefly: it records exactly the artifacts it declares, the training loop
writes them while it trains (live pages need no help from the method), and the pages read only declared ones."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from engine.execution.jobs import execute
from engine.methods import registry
from engine.store.runs import RunStore
from engine.suite.job import default_methods
from engine.training.config import TrainConfig
from engine.training.recorder import Recorder
from engine.training.train import LOOP_ARTIFACTS

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


@pytest.mark.parametrize("name", list(registry()))
def test_every_model_call_of_a_training_step_reads_a_pair_batch_segment_ids(tmp_path, name):
    """Sentence pairs: each forward pass a method makes in a training step and at inference gets the batch's
    token_type_ids (ROSE's doubled batch, UEGR's embedding-space passes, Match-Tuning's encoder pass)."""
    from engine.data.batching import bucketed_batches, encode_dataset, iter_batches
    from engine.data.text_dataset import TextDataset
    from engine.methods import make_method
    from engine.methods.base import StepContext
    from engine.models.loading import build_classifier, load_tokenizer

    pairs = TextDataset("pairs", ["a cat sat", "dogs bark", "rain fell", "we ate"], [0, 1, 0, 1], ["no", "yes"],
                        ["on the mat", "at night loudly", "all day", "lunch early"])
    tokenizer = load_tokenizer("tiny")
    encoded = encode_dataset(tokenizer, pairs, 32)
    (batch,) = iter_batches(encoded, bucketed_batches(encoded.lengths(), 4, None), tokenizer.pad_token_id)
    method = make_method(name)
    model = method.prepare_model(build_classifier("tiny", 2, 0)).train()
    method.make_optimizer(model, 1e-3, 0.0, (0.9, 0.999))
    seen: list[torch.Tensor | None] = []
    hook = model.base_model.embeddings.register_forward_hook(
        lambda _m, args, kwargs, _out: seen.append(kwargs.get("token_type_ids")), with_kwargs=True)
    ctx = StepContext(step=1, total_steps=2, epoch=0, device=torch.device("cpu"), recorder=Recorder(tmp_path))
    method.training_loss(model, batch, ctx)
    method.logits(model.eval(), batch)
    hook.remove()
    assert seen and all(t is not None and t.max() == 1 for t in seen), name
