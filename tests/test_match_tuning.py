"""Match-Tuning on the tiny model: the matching matrix, batch-independent inference, batches of one,
and save/load of the added projection."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from saved_model_util import assert_reloads_as_trained, keep_saved_models

from engine.methods import SettingError, StepContext, make_method
from engine.methods.match_tuning import MatchPooler, matching_matrix, matching_stats
from engine.models.loading import build_classifier
from engine.training.recorder import Recorder


def encode(ids: list[list[int]], labels: list[int]) -> dict[str, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.zeros((len(ids), width), dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": torch.tensor(labels)}


def sentences(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[101, *rng.integers(1000, 5000, rng.integers(3, 15)).tolist(), 102] for _ in range(n)]


def prepared(settings: dict | None = None):
    method = make_method("match-tuning", {"temperature": 1.0, **(settings or {})})
    return method, method.prepare_model(build_classifier("tiny", 2, seed=0))


def test_rows_sum_to_one_and_the_masses_add_up():
    h = torch.randn(6, 8)
    m = matching_matrix(h, 0.5)
    assert torch.allclose(m.sum(1), torch.ones(6)) and torch.all(m >= 0)
    stats = matching_stats(m, torch.tensor([0, 0, 1, 1, 1, 0]))
    assert stats["diag_mass"] + stats["same_label_mass"] + stats["different_label_mass"] == pytest.approx(1.0)
    known = matching_stats(torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.0, 1.0]]), torch.tensor([0, 0, 1]))
    assert known == pytest.approx({"diag_mass": 2 / 3, "same_label_mass": 0.25, "different_label_mass": 0.25 / 3,
                                   "row_entropy": 2.5 * np.log(2) / 3})   # rows: ln 2, 1.5 ln 2, 0
    assert matching_matrix(torch.randn(1, 8), 0.1).tolist() == [[1.0]]


def test_lower_temperature_keeps_more_on_the_diagonal():
    h = torch.randn(16, 8)
    diag = [matching_stats(matching_matrix(h, t), torch.zeros(16, dtype=torch.long))["diag_mass"] for t in (10, 1, 0.1)]
    assert diag[0] < diag[1] < diag[2]


def test_the_projection_replaces_the_pooler_and_starts_from_it():
    base = build_classifier("tiny", 2, seed=0)
    old = base.bert.pooler.dense.weight.detach().clone()
    names = [n for n, _ in base.named_parameters()]
    model = make_method("match-tuning").prepare_model(base)
    assert isinstance(model.bert.pooler, MatchPooler)
    assert torch.equal(model.bert.pooler.dense.weight, old)
    assert [n for n, _ in model.named_parameters()] == names          # same safetensors keys as the base model


def test_bypass_inference_does_not_depend_on_the_rest_of_the_batch():
    method, model = prepared()
    model.eval()
    x, others_a, others_b = sentences(1, 0), sentences(5, 1), sentences(3, 2)
    with torch.no_grad():
        alone = method.logits(model, encode(x, [0]))
        in_a = method.logits(model, encode(x + others_a, [0] * 6))[0]
        in_b = method.logits(model, encode(others_b + x, [1] * 4))[-1]
    assert torch.allclose(alone[0], in_a, atol=1e-5) and torch.allclose(alone[0], in_b, atol=1e-5)
    in_batch, _ = prepared({"inference": "in-batch"})
    with torch.no_grad():                                        # the in-batch mode does depend on it
        a = in_batch.logits(model, encode(x + others_a, [0] * 6))[0]
        b = in_batch.logits(model, encode(others_b + x, [1] * 4))[-1]
    assert not torch.allclose(a, b, atol=1e-5)


def test_a_batch_of_one_trains_and_evaluates():
    method, model = prepared()
    model.train()
    method.make_optimizer(model, 1e-3, 0.01, (0.9, 0.999))
    recorder = Recorder(None)
    one = encode(sentences(1, 3), [1])
    loss, stats = method.training_loss(model, one, StepContext(1, 1, 0, torch.device("cpu"), recorder, True))
    assert torch.isfinite(loss) and stats["diag_mass"] == 1.0 and stats["different_label_mass"] == 0.0
    loss.backward()
    from engine.data.batching import Encoded

    extra = method.extra_evaluation(model, Encoded(sentences(3, 4), [0, 1, 1]), 1, torch.device("cpu"))
    assert extra["dev_accuracy_inbatch"] == extra["dev_accuracy_bypass"]    # with B = 1 the two modes agree


def test_probe_matrix_recorded_from_step_zero_sorted_by_label():
    method, model = prepared()
    model.train()
    optimizer = method.make_optimizer(model, 1e-3, 0.01, (0.9, 0.999))
    recorder = Recorder(None)
    for step in (1, 2):
        c = StepContext(step, 2, 0, torch.device("cpu"), recorder, record_now=True)
        loss, _ = method.training_loss(model, encode(sentences(6, step), [1, 0, 1, 0, 0, 1]), c)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        method.after_step(model, c)
    rec = recorder.series("match")
    assert rec["step"].tolist() == [0, 1, 2] and rec["matrix"].shape == (3, 6, 6)
    assert np.allclose(rec["matrix"].sum(-1), 1.0, atol=1e-5)
    assert recorder._whole["match_probe"]["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    assert set(method.summary()) >= {"final_diag_mass", "different_label_mass"}


@pytest.mark.parametrize("settings, words", [({"temperature": -1.0}, "(0, inf)"), ({"temperature": 0}, "(0, inf)"),
                                             ({"inference": "mixed"}, "one of bypass, in-batch")])
def test_bad_settings_are_refused_with_the_range(settings, words):
    with pytest.raises(SettingError) as err:
        make_method("match-tuning", settings)
    assert words in str(err.value)


def test_train_save_and_load_round_trip(run_home):
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig
    from engine.training.train import train

    store = RunStore()
    config = TrainConfig(model="tiny", method="match-tuning", train_size=32, batch_size=16, epochs=1, dev_size=32)
    run = store.create(config.to_dict())
    with keep_saved_models():
        results = train(config, run)
    assert {"dev_accuracy_inbatch", "dev_accuracy_bypass"} <= set(results)
    assert results["dev_accuracy_bypass"] == pytest.approx(results["dev_accuracy"])
    assert {"final_diag_mass", "different_label_mass"} <= set(results["method_summary"])
    model, _, method = assert_reloads_as_trained(run.dir)
    assert isinstance(model.bert.pooler, MatchPooler) and method.name == "match-tuning"


def initial_diag_mass(settings: dict) -> float:
    """The diagonal mass of the probe matrix recorded before the first step (the summary's initial_diag_mass)."""
    torch.manual_seed(0)
    method = make_method("match-tuning", settings)
    model = method.prepare_model(build_classifier("tiny", 2, seed=0))
    method.training_loss(model, encode(sentences(8, 0), [0, 1] * 4),
                         StepContext(1, 10, 0, torch.device("cpu"), Recorder(None)))
    return method.first["diag_mass"]


def test_temperature_and_projection_start_are_settings_that_move_the_initial_diagonal_mass():
    from engine.__main__ import build_parser
    from engine.training.flags import config_from_args

    words = ["train", "--method", "match-tuning", "--set", "temperature=0.3", "--set", "dense_init=random"]
    assert config_from_args(build_parser().parse_args(words)).settings == {"temperature": 0.3, "dense_init": "random"}
    # the tiny model's [CLS] vectors are nearly alike, so only a small tau separates them; the order is the point
    pooler = [initial_diag_mass({"temperature": t, "dense_init": "pooler"}) for t in (1e-2, 1e-3, 1e-4)]
    assert pooler[0] < pooler[1] < pooler[2]
    assert initial_diag_mass({"temperature": 1e-4, "dense_init": "random"}) != pooler[2]
