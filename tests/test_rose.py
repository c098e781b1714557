"""ROSE on the tiny model: the quantile band, the two risks, the masked AdamW step and the ensemble mask."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from engine.methods import SettingError, StepContext, make_method
from engine.methods._tensors import dropout_rates, rose_candidates
from engine.methods.base import param_groups
from engine.methods.masked_optimizer import MaskedAdamW
from engine.methods.rose import band_mask, second_order_risk, symmetric_kl
from engine.models.loading import build_classifier
from engine.training.recorder import Recorder


def tiny() -> nn.Module:
    return build_classifier("tiny", 2, seed=0)


def batch(seed: int, size: int = 8, length: int = 12) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 5000, (size, length), generator=g)
    ids[:, 0] = 101
    mask = torch.ones_like(ids)
    mask[: size // 2, length - 3:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (size,), generator=g)}


def ctx(step: int, recorder: Recorder, record_now: bool = False, lr_warmup_steps: int = 0) -> StepContext:
    return StepContext(step=step, total_steps=10, epoch=0, device=torch.device("cpu"), recorder=recorder,
                       record_now=record_now, lr_warmup_steps=lr_warmup_steps)


class Stepper:
    """The training loop's step for one method (loss, backward, clip, before_step, step), in pieces."""

    def __init__(self, name: str, settings: dict | None = None, weight_decay: float = 0.01,
                 lr_warmup_steps: int = 0) -> None:
        torch.manual_seed(0)
        self.lr_warmup_steps = lr_warmup_steps
        self.method = make_method(name, settings)
        self.model = self.method.prepare_model(tiny())
        self.model.train()
        self.optimizer = self.method.make_optimizer(self.model, 1e-3, weight_decay, (0.9, 0.999))
        self.recorder = Recorder(None)

    def until_step(self, step: int) -> StepContext:
        """Forward/backward/clip/before_step of this step; the caller runs optimizer.step()."""
        c = ctx(step, self.recorder, record_now=True, lr_warmup_steps=self.lr_warmup_steps)
        loss, _ = self.method.training_loss(self.model, batch(step), c)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.method.before_step(self.model, self.optimizer, c)
        return c

    def finish(self, c: StepContext) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.method.after_step(self.model, c)

    def full_step(self, step: int) -> None:
        self.finish(self.until_step(step))


# ---------------------------------------------------------------- pieces

def test_tensor_filter_is_the_official_one():
    names = [n for n, _ in rose_candidates(tiny())]
    assert len(names) == 16  # 8 per layer, 2 layers
    assert all("layer" in n and "weight" in n for n in names)
    assert "bert.embeddings.LayerNorm.weight" not in names      # case-sensitive "layer"
    assert not any(n.startswith(("classifier", "bert.pooler")) or n.endswith("bias") for n in names)


def test_band_mask_keeps_the_quantile_band_inclusive():
    scores = torch.arange(10, dtype=torch.float32)
    mask, low, high = band_mask(scores, 0, 70)          # 0.7-quantile of 0..9 is 6.3
    assert mask.tolist() == [1.0] * 7 + [0.0] * 3 and low == 0 and high == pytest.approx(6.3)
    mask, low, _ = band_mask(scores, 20, 70)            # 0.2-quantile is 1.8
    assert mask.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0] and low == pytest.approx(1.8)


def test_second_order_risk_matches_the_formula_on_hand_made_tensors():
    g = [torch.tensor([3.0, 4.0]), torch.tensor([[6.0, 8.0]]), torch.tensor([0.0])]      # norms 5, 10, 0
    m = [torch.tensor([0.3, 0.4]), torch.tensor([[0.0, 0.5]]), torch.tensor([2.0])]      # norms 0.5, 0.5, 2
    risk = second_order_risk(torch.stack([x.norm() for x in g]), torch.stack([x.norm() for x in m]))
    assert torch.allclose(risk, torch.tensor([0.0, 1.0, 1.0]), atol=1e-6)    # |0.1*5/0.5-1|, |0.1*10/0.5-1|, |0-1|


def test_second_order_mask_uses_the_clipped_grad_and_previous_momentum():
    run = Stepper("rose-second", {"upper": 50})
    run.full_step(1)
    c = run.until_step(2)
    params = [p for _, p in rose_candidates(run.model)]
    expected = torch.stack([(0.1 * p.grad.norm() / run.optimizer.state[p]["exp_avg"].norm() - 1).abs()
                            for p in params])
    recorded = run.recorder.series("rose")
    assert np.allclose(recorded["second_score"][-1], expected.numpy(), rtol=1e-5)
    keep = (expected >= torch.quantile(expected, 0.0)) & (expected <= torch.quantile(expected, 0.5))
    assert recorded["mask"][-1].tolist() == keep.float().tolist()
    assert np.isnan(recorded["second_score"][0]).all() and recorded["mask"][0].tolist() == [1.0] * 16
    run.finish(c)


def test_rose_freezes_exactly_the_tensors_outside_the_band_and_keeps_their_momentum():
    run = Stepper("rose-second", {"upper": 50})
    run.full_step(1)
    run.full_step(2)
    c = run.until_step(3)
    mask = run.recorder.series("rose")["mask"][-1]
    params = [p for _, p in rose_candidates(run.model)]
    assert 0 < mask.sum() < len(mask)
    before = {p: (p.detach().clone(), run.optimizer.state[p]["exp_avg"].clone()) for p in run.model.parameters()}
    run.finish(c)
    for p, mu in zip(params, mask):
        weight, momentum = before[p]
        if mu == 0:
            assert torch.equal(p, weight), "a frozen tensor moved"
            assert torch.equal(run.optimizer.state[p]["exp_avg"], momentum), "a frozen tensor's momentum changed"
        else:
            assert not torch.equal(p, weight)
    # Biases and LayerNorms always move, except an attention key bias: its gradient is zero in exact arithmetic
    # (softmax ignores a shift every key shares), so it moves by rounding noise or, on some CPUs, not at all.
    others = [p for name, p in run.model.named_parameters() if all(p is not q for q in params) and p.requires_grad
              and p.dim() == 1 and not name.endswith("attention.self.key.bias")]
    assert others and all(not torch.equal(p, before[p][0]) for p in others)


def test_masked_adamw_with_nothing_masked_is_torch_adamw():
    a = tiny().eval()       # no dropout: both copies see the same gradients
    b = copy.deepcopy(a)
    ours = MaskedAdamW(param_groups(a, 0.01), lr=1e-3, betas=(0.9, 0.98), eps=1e-8)
    ref = torch.optim.AdamW(param_groups(b, 0.01), lr=1e-3, betas=(0.9, 0.98), eps=1e-8)
    for step in range(3):
        for model, opt in ((a, ours), (b, ref)):
            inputs = batch(step)
            loss = nn.functional.cross_entropy(model(input_ids=inputs["input_ids"],
                                                     attention_mask=inputs["attention_mask"]).logits, inputs["labels"])
            loss.backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


# ---------------------------------------------------------------- first order and dropout

def test_dropout_rates_reach_sdpa_attention_and_hidden_dropout():
    model = tiny().train()
    inputs = {k: v for k, v in batch(0).items() if k != "labels"}
    assert model.config._attn_implementation in ("sdpa", "eager")
    with dropout_rates(model, 0.0, 0.0):
        assert torch.equal(model(**inputs).logits, model(**inputs).logits)
    with dropout_rates(model, 0.0, 0.5):          # attention dropout alone must change the output
        assert not torch.equal(model(**inputs).logits, model(**inputs).logits)
    assert model.bert.encoder.layer[0].attention.self.dropout.p == 0.1       # restored afterwards


@pytest.mark.parametrize("shortcut", [True, False])
def test_first_order_risk_is_the_kl_gradient_norm_and_not_in_the_loss(shortcut):
    run = Stepper("rose-first", {"upper": 70, "kl_dropout": 0.2})
    run.method.fast_kl = shortcut          # one backward plus captured activations, or a second backward
    b, c = batch(1), ctx(1, run.recorder)
    params = [p for _, p in rose_candidates(run.model)]
    torch.manual_seed(7)
    loss, scalars = run.method.training_loss(run.model, b, c)
    assert all(p.grad is None for p in params)                     # the risk left no gradient behind
    assert (run.method.first_scores is None) == shortcut
    loss.backward()
    run.method.before_step(run.model, run.optimizer, c)
    recorded = run.recorder.series("rose")["first_score"][-1]
    torch.manual_seed(7)                                           # the same two dropout masks again
    with dropout_rates(run.model, 0.2, 0.2):
        logits = run.model(input_ids=torch.cat([b["input_ids"]] * 2),
                           attention_mask=torch.cat([b["attention_mask"]] * 2)).logits
    first, second = logits.chunk(2)
    expected = torch.stack([g.norm() for g in torch.autograd.grad(symmetric_kl(first, second), params)])
    ce = 0.5 * (nn.functional.cross_entropy(first, b["labels"]) + nn.functional.cross_entropy(second, b["labels"]))
    assert np.allclose(recorded, expected.numpy(), rtol=1e-4, atol=1e-9)
    assert torch.allclose(loss, ce) and scalars["kl"] > 0          # the KL drives the mask only


def test_symmetric_kl_is_zero_for_equal_logits():
    a = torch.randn(4, 2)
    assert float(symmetric_kl(a, a)) == pytest.approx(0.0, abs=1e-7)
    assert float(symmetric_kl(a, a.flip(1))) > 0


# ---------------------------------------------------------------- ensemble

def test_ensemble_mask_is_half_first_plus_half_second():
    run = Stepper("rose-ensemble", {"upper": 60})
    for step in range(1, 5):
        run.full_step(step)
    rec = run.recorder.series("rose")
    masks = rec["mask"]
    assert set(np.unique(masks)) <= {0.0, 0.5, 1.0} and 0.5 in masks
    first = (rec["first_score"] >= rec["first_low"][:, None]) & (rec["first_score"] <= rec["first_high"][:, None])
    second = (rec["second_score"] >= rec["second_low"][:, None]) & (rec["second_score"] <= rec["second_high"][:, None])
    second[0] = True                                            # no momentum at step 1: all kept
    assert np.array_equal(masks, 0.5 * first + 0.5 * second)
    summary = run.method.summary()
    assert summary["share_frozen"] + summary["share_half"] + summary["share_kept"] == pytest.approx(1.0)


def test_warmup_keeps_everything():
    run = Stepper("rose-second", {"upper": 30, "warmup_steps": 3}, lr_warmup_steps=1)   # the setting wins
    for step in range(1, 5):
        run.full_step(step)
    rec = run.recorder.series("rose")
    assert rec["mask"][:3].min() == 1.0 and rec["mask"][3].min() == 0.0
    assert rec["warmup"].tolist() == [1, 1, 1, 0]


def test_mask_warmup_defaults_to_the_learning_rate_warmup():
    """As in the official code, one number of warm-up steps: the mask waits for the scheduler's warm-up."""
    assert make_method("rose-second").settings["warmup_steps"] == -1
    run = Stepper("rose-second", {"upper": 30}, lr_warmup_steps=3)
    for step in range(1, 5):
        run.full_step(step)
    rec = run.recorder.series("rose")
    assert rec["mask"][:3].min() == 1.0 and rec["mask"][3].min() == 0.0 and rec["warmup"].tolist() == [1, 1, 1, 0]
    assert run.method.summary()["mask_warmup_steps"] == 3


def test_a_run_masks_after_its_learning_rate_warmup(run_home):
    """Through the real loop: 8 steps with a 25 % warm-up leave the first 2 unmasked, and the summary says 2."""
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig
    from engine.training.train import train

    config = TrainConfig(model="tiny", method="rose-second", settings={"upper": 30}, train_size=64, batch_size=8,
                         epochs=1, dev_size=16, warmup_ratio=0.25, eval_every=8)
    run = RunStore(run_home).create(config.to_dict())
    results = train(config, run)
    rose = run.artifact("rose")
    assert rose["warmup"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert rose["mask"][:2].min() == 1.0 and rose["mask"][2:].min(1).max() == 0.0   # every later step freezes
    assert results["method_summary"]["mask_warmup_steps"] == 2


# ---------------------------------------------------------------- presets

# The official README's SST-2 column (lr, upper) per variant and backbone, copied here by hand so the test
# does not read the numbers it checks from the module it checks.
README_SST2 = {("rose-first", "base"): (2e-5, 60.0), ("rose-second", "base"): (1e-4, 30.0),
               ("rose-ensemble", "base"): (5e-5, 40.0), ("rose-first", "large"): (4e-5, 70.0),
               ("rose-second", "large"): (1e-5, 50.0), ("rose-ensemble", "large"): (1e-5, 70.0)}


def train_args(*words: str):
    from engine.__main__ import build_parser
    from engine.training.flags import config_from_args

    return config_from_args(build_parser().parse_args(["train", *words]))


@pytest.mark.parametrize("method, size", sorted(README_SST2))
def test_a_preset_loads_the_readme_numbers(method, size):
    lr, upper = README_SST2[method, size]
    config = train_args("--method", method, "--set", f"preset=readme-sst2-{size}")
    assert config.lr == lr and config.settings["upper"] == upper and config.settings["lower"] == 0.0
    assert (config.batch_size, config.weight_decay, config.adam_beta2, config.max_length, config.warmup_ratio,
            config.grad_clip) == (32, 0.01, 0.98, 128, 0.0, 1.0)          # the README's run scripts
    assert config.settings.get("kl_dropout", 0.1) == 0.1 and config.settings.get("gamma", 0.5) == 0.5
    assert config.settings["warmup_steps"] == -1
    assert f"RoBERTa-{size}" in make_method(method).preset(f"readme-sst2-{size}").source
    config.check()
    make_method(method, config.settings)


def test_an_explicit_value_wins_over_the_preset():
    config = train_args("--method", "rose-ensemble", "--set", "upper=55", "--set", "preset=readme-sst2-base",
                        "--lr", "3e-5", "--adam-beta2", "0.999")   # 0.999 is the flag's default, typed all the same
    assert config.settings["upper"] == 55.0 and config.lr == 3e-5 and config.adam_beta2 == 0.999
    assert config.settings["gamma"] == 0.5 and config.batch_size == 32 and config.warmup_ratio == 0.0  # the rest


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(SettingError, match="readme-sst2-base, readme-sst2-large"):
        train_args("--method", "rose-first", "--set", "preset=nope")
    with pytest.raises(SettingError, match="no preset 'x'; its presets: none"):
        train_args("--method", "vanilla", "--set", "preset=x")


# ---------------------------------------------------------------- the page's histograms

def test_risk_histogram_colours_by_the_applied_mask():
    """Tensors outside the band but inside the mask warm-up were updated, and the figure says so; the ensemble's
    half steps are their own colour."""
    from app.methods.figures import risk_histogram

    def counts(applied: np.ndarray) -> dict[str, int]:
        fig = risk_histogram(scores, applied, 0.0, 0.4, "t")
        return {trace.name: len(trace.x) for trace in fig.data}

    scores = np.array([0.1, 0.2, 0.3, 0.5, 0.9])                        # two above the upper threshold 0.4
    assert counts(np.ones(5)) == {"updated (full step)": 5}              # warm-up: nothing frozen
    assert counts(np.array([1, 1, 1, 0, 0.0])) == {"updated (full step)": 3, "frozen": 2}
    assert counts(np.array([1, 0.5, 1, 0.5, 0])) == {"updated (full step)": 2, "half step": 2, "frozen": 1}


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("settings, words", [
    ({"upper": 101}, "[0, 100]"), ({"lower": -1}, "[0, 100]"), ({"kl_dropout": 1.0}, "[0, 1)"),
    ({"lower": 80, "upper": 70}, "must be below upper"), ({"gamma": 2}, "[0, 1]"),
])
def test_bad_settings_are_refused_with_the_range(settings, words):
    with pytest.raises(SettingError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        make_method("rose-ensemble", settings)


def test_train_records_masks_and_drift(run_home):
    """A real run keeps, in its folder, one mask per step over the candidate tensors (their mean is the summary's
    keep fraction), the tensors' names, the loop's weight drift and the KL scalar."""
    from engine.methods._tensors import rose_candidates
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig
    from engine.training.train import train

    config = TrainConfig(model="tiny", method="rose-first", train_size=32, batch_size=16, epochs=1, dev_size=32)
    run = RunStore(run_home).create(config.to_dict())
    results = train(config, run)
    names = [n for n, _ in rose_candidates(tiny())]
    rose = run.artifact("rose")
    assert rose["step"].tolist() == [1, 2] and rose["mask"].shape == (2, len(names))
    assert set(np.unique(rose["mask"])) <= {0.0, 1.0} and rose["first_score"].shape == (2, len(names))
    keep = results["method_summary"]["mean_keep_fraction"]
    assert keep == round(float(rose["mask"].mean(1).mean()), 4) and 0.5 < keep < 1.0
    assert run.artifact("rose_tensors")["name"].tolist() == names
    drift = run.artifact("drift")
    assert drift["step"].tolist() == [1, 2] and drift["drift"].shape == (2, 2) and np.all(drift["drift"] > 0)
    kl = [m for m in run.metrics() if (m["split"], m["name"]) == ("train", "kl")]
    assert [m["step"] for m in kl] == [2]
