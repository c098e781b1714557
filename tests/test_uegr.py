"""UEGR on the tiny model: JS divergence, the dropout schedule, the embedding perturbation and its FreeLB
start, the top-rho selection of each tensor's update, that unselected elements do not move (bit for bit),
the selected and moved fractions, and the saliency axis of the page's histogram."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.methods import SettingError, StepContext, make_method
from engine.methods.uegr import dropout_schedule, freelb_start, js_divergence, top_fraction_mask
from engine.models.loading import build_classifier
from engine.training.recorder import Recorder


def batch(seed: int, size: int = 8, length: int = 12) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 5000, (size, length), generator=g)
    mask = torch.ones_like(ids)
    mask[: size // 2, length - 4:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (size,), generator=g)}


def top_k(scores: torch.Tensor, rho: float) -> torch.Tensor:
    """The top-rho elements of `scores` by |score|, found independently of UEGR's own selection."""
    flat = scores.abs().flatten()
    top = torch.zeros(flat.numel(), dtype=torch.bool)
    top[torch.topk(flat, round(rho * flat.numel())).indices] = True
    return top.view_as(scores)


def ctx(step: int, recorder: Recorder) -> StepContext:
    return StepContext(step=step, total_steps=10, epoch=0, device=torch.device("cpu"), recorder=recorder,
                       record_now=True)


def setup(settings: dict | None = None, weight_decay: float = 0.0):
    torch.manual_seed(0)
    method = make_method("uegr", settings)
    model = method.prepare_model(build_classifier("tiny", 2, seed=0)).train()
    optimizer = method.make_optimizer(model, 1e-3, weight_decay, (0.9, 0.999))
    return method, model, optimizer


# ---------------------------------------------------------------- pieces

def test_js_divergence_is_zero_for_identical_and_positive_otherwise():
    p = torch.log_softmax(torch.randn(5, 3), -1)
    assert float(js_divergence([p, p, p])) == pytest.approx(0.0, abs=1e-6)
    q = torch.log_softmax(torch.randn(5, 3), -1)
    value = float(js_divergence([p, q]))
    mean = 0.5 * (p.exp() + q.exp())
    by_hand = 0.5 * ((p.exp() * (p - mean.log())).sum(-1) + (q.exp() * (q - mean.log())).sum(-1))
    assert value > 0 and value == pytest.approx(float(by_hand.mean()), rel=1e-5)
    assert value <= math.log(2) + 1e-6                      # JS of two distributions is at most log 2


def test_dropout_schedule_spreads_rates_evenly():
    assert dropout_schedule(3, 0.05, 0.3) == pytest.approx([0.05, 0.175, 0.3])
    assert dropout_schedule(1, 0.1, 0.3) == [0.1]


@pytest.mark.parametrize("n", [1000, 300_000])   # the small path and the sampled-bracket path
def test_top_fraction_mask_is_exactly_the_top_k(n):
    scores = torch.rand(n, generator=torch.Generator().manual_seed(n))
    mask = top_fraction_mask(scores, 0.3, torch.Generator().manual_seed(1))
    k = round(0.3 * n)
    expected = torch.zeros(n, dtype=torch.bool)
    expected[torch.topk(scores, k).indices] = True
    assert torch.equal(mask, expected)


def test_perturbation_stays_in_the_ball_and_off_padding():
    method, model, _ = setup({"epsilon": 0.05, "alpha": 1.0, "n_adv": 3})
    b = batch(0)
    embeds = model.get_input_embeddings()(b["input_ids"]).detach()
    delta = method._perturbation(model, embeds, b["attention_mask"], b["labels"])
    norms = delta.flatten(1).norm(dim=1)
    assert torch.all(norms <= 0.05 + 1e-6) and torch.all(norms > 0.04)       # alpha 1 pushes to the boundary
    assert torch.all(delta[b["attention_mask"] == 0] == 0)


@pytest.mark.parametrize("width", [32, 384])
def test_freelb_start_has_the_same_size_for_any_length_and_width(width):
    """FreeLB divides the uniform start by sqrt(length x width): E||delta_0|| = init_mag / sqrt(3) always."""
    torch.manual_seed(0)
    for length in (4, 16, 128):
        mask = torch.ones(256, length, dtype=torch.long)
        mask[:, length // 2 + 1:] = 0                                          # half of each sentence is padding
        delta = freelb_start(torch.zeros(256, length, width), mask, init_mag=0.3)
        norms = delta.flatten(1).norm(dim=1)
        assert float(norms.mean()) == pytest.approx(0.3 / math.sqrt(3), rel=0.05), (length, width)
        assert torch.all(delta[mask == 0] == 0)


def test_the_random_start_is_freelb_s_in_the_method():
    """With no ascent step the perturbation is the start alone: its norm does not grow with the length."""
    method, model, _ = setup({"n_adv": 0, "init_mag": 0.3})
    sizes = []
    for length in (8, 64):
        b = batch(0, size=64, length=length)
        b["attention_mask"][:] = 1
        embeds = model.get_input_embeddings()(b["input_ids"]).detach()
        sizes.append(float(method._perturbation(model, embeds, b["attention_mask"], b["labels"]).flatten(1)
                           .norm(dim=1).mean()))
    assert sizes == pytest.approx([0.3 / math.sqrt(3)] * 2, rel=0.05)


# ---------------------------------------------------------------- the backward stage

def test_uegr_updates_only_the_top_rho_elements_of_each_tensor():
    method, model, optimizer = setup({"rho": 0.3})
    recorder = Recorder(None)
    c = ctx(1, recorder)
    loss, scalars = method.training_loss(model, batch(1), c)
    assert {"clean_loss", "adv_loss", "js"} <= set(scalars) and scalars["js"] > 0
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    saliency = {p: (p.detach() * p.grad).abs().clone() for p in method.params}
    before = {p: p.detach().clone() for p in model.parameters()}
    method.before_step(model, optimizer, c)
    optimizer.step()                                   # fresh AdamW, no weight decay: only non-zero grads move
    assert len(method.params) == 12                    # 6 weight matrices x 2 layers
    for p in method.params:
        moved = p.detach() != before[p]
        assert torch.equal(moved, top_k(saliency[p], 0.3)), "the update must touch exactly the top-rho elements"
    chosen = {id(p) for p in method.params}
    others = {n: p for n, p in model.named_parameters() if id(p) not in chosen and "word_embeddings" not in n
              and "token_type" not in n and "position" not in n}
    # An attention key bias is the known exception: adding the same vector to every key adds the same number
    # to each query's scores, which softmax ignores, so its gradient is zero in exact arithmetic and it moves
    # only by rounding noise (on some CPUs not at all). What is true of it: its gradient is noise beside the
    # query bias's, whose gradient is real.
    key_biases = [n for n in others if n.endswith("attention.self.key.bias")]
    assert len(key_biases) == 2
    for name in key_biases:
        noise, real = others.pop(name).grad.abs().max(), others[name.replace(".key.", ".query.")].grad.abs().max()
        assert noise <= 1e-3 * real, f"{name}: a key bias's gradient is zero in exact arithmetic"
    # Everything else that is not masked gets plain AdamW. At its first step an element moves by about lr
    # whatever the size of its gradient (m / sqrt(v) = g / |g|), and an element whose gradient is exactly zero
    # does not move at all (m = 0): so what moved is exactly what had a gradient, and that is nearly everything.
    for name, p in others.items():
        has_gradient = p.grad != 0
        assert torch.equal(p.detach() != before[p], has_gradient), f"{name}: biases, LayerNorm, head always move"
        assert has_gradient.float().mean() > 0.99, name
    method.after_step(model, c)
    rec = recorder.series("uegr")
    assert np.allclose(rec["selected_fraction"][0], 0.3, atol=1e-3)
    assert np.array_equal(rec["moved_fraction"][0], rec["selected_fraction"][0])
    assert rec["hist_selected"][0].sum() + rec["hist_other"][0].sum() > 0


def test_an_unselected_element_does_not_move_bit_for_bit():
    """Weight decay on, and momentum from earlier steps where the element was selected: still not one bit."""
    method, model, optimizer = setup({"rho": 0.5}, weight_decay=0.1)
    recorder = Recorder(None)
    tested = 0
    for step in (1, 2, 3):
        c = ctx(step, recorder)
        loss, _ = method.training_loss(model, batch(step), c)
        loss.backward()
        selected = {p: top_k(p.detach() * p.grad, 0.5) for p in method.params}    # this step's top-rho, by hand
        method.before_step(model, optimizer, c)
        before = {p: p.detach().clone() for p in method.params}
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        method.after_step(model, c)
        if step == 1:
            continue
        for p in method.params:
            rest = ~selected[p]
            momentum = optimizer.state[p]["exp_avg"] != 0          # selected at an earlier step
            tested += int((rest & momentum).sum())
            assert torch.equal(p.detach()[rest].view(torch.int32), before[p][rest].view(torch.int32))
            assert (p.detach() != before[p])[~rest].float().mean() > 0.99
    assert tested > 1000, "unselected elements with momentum from an earlier step were tested"
    rec = recorder.series("uegr")
    assert np.all(rec["overall_moved"] <= rec["overall_fraction"])


def test_global_scope_and_fisher_saliency_pick_across_tensors():
    method, model, optimizer = setup({"rho": 0.5, "scope": "global", "saliency": "fisher"})
    recorder = Recorder(None)
    c = ctx(1, recorder)
    loss, _ = method.training_loss(model, batch(2), c)
    loss.backward()
    grads = torch.cat([p.grad.flatten() ** 2 for p in method.params])
    method.before_step(model, optimizer, c)
    kept = torch.cat([optimizer.mask[p].flatten() for p in method.params])
    assert kept.float().mean() == pytest.approx(0.5, abs=1e-3)
    assert grads[kept].min() >= grads[~kept].max()
    optimizer.step()
    method.after_step(model, c)
    fractions = recorder.series("uegr")["selected_fraction"][0]
    assert fractions.std() > 0                               # per tensor the share now varies


# ---------------------------------------------------------------- settings and a run

@pytest.mark.parametrize("settings, words", [
    ({"rho": 0.0}, "(0, 1]"), ({"rho": 1.5}, "(0, 1]"), ({"K": 0}, "[1, 8]"), ({"epsilon": -0.1}, "(0, inf)"),
    ({"p_min": 0.4, "p_max": 0.2}, "must not exceed p_max"), ({"saliency": "random"}, "one of taylor, fisher"),
])
def test_bad_settings_are_refused_with_the_range(settings, words):
    with pytest.raises(SettingError) as err:
        make_method("uegr", settings)
    assert words in str(err.value)


def test_train_records_curves_and_summary(run_home):
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig
    from engine.training.train import train

    store = RunStore()
    config = TrainConfig(model="tiny", method="uegr", settings={"K": 2}, train_size=32, batch_size=16, epochs=1,
                         dev_size=32)
    run = store.create(config.to_dict())
    results = train(config, run)
    summary = results["method_summary"]
    assert summary["mean_selected_fraction"] == pytest.approx(0.5, abs=0.01)
    assert 0.4 < summary["mean_moved_fraction"] <= summary["mean_selected_fraction"] + 1e-4
    rec = run.artifact("uegr")
    assert np.all(rec["overall_moved"] <= rec["overall_fraction"] + 1e-6)
    assert len([m for m in run.metrics() if (m["split"], m["name"]) == ("dev", "input_grad_norm")]) >= 1
    curves = run.artifact("uegr_curves")
    assert len(curves["step"]) == 2 and np.all(curves["js"] >= 0)
    assert {"uegr", "uegr_tensors", "drift"} <= set(run.artifact_names())


@pytest.mark.parametrize("saliency, words", [("taylor", "|θ·g|"), ("fisher", "g² (Fisher)")])
def test_saliency_axis_names_the_run_s_saliency(saliency, words):
    from app.methods.figures import saliency_histogram

    bins = np.linspace(-3, 0, 4)
    fig = saliency_histogram(bins, np.ones(3), np.ones(3), 5, saliency)
    assert fig.layout.xaxis.title.text == f"log10 saliency {words}"
