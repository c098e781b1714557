"""The ODE probes' perturbation growth: scale-free growth ignores the hidden states' size, absolute growth does
not, and `probe --json` reports both per layer (tiny model)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from engine.models.architecture import encoder_parts
from engine.models.loading import build_classifier, load_tokenizer
from engine.probe import ode

# Powers of two, so rescaling and undoing it are exact in floating point: the layers see bit-identical inputs.
EMBEDDING_SCALE, LAYER_SCALES = 4.0, (0.25, 8.0)
TEXTS = ["a gripping, funny film", "dull and far too long", "it is what it is"]


class Rescaled(nn.Module):
    """A layer that undoes the scale of its input, runs the original layer, and rescales its output: the model
    computes the same function, with every hidden state x_l multiplied by a constant."""

    def __init__(self, layer: nn.Module, scale_in: float, scale_out: float) -> None:
        super().__init__()
        self.layer, self.scale_in, self.scale_out = layer, scale_in, scale_out

    def forward(self, x: torch.Tensor, *args, **kwargs):
        out = self.layer(x / self.scale_in, *args, **kwargs)
        if isinstance(out, tuple):
            return (out[0] * self.scale_out, *out[1:])
        return out * self.scale_out


def _rescaled_tiny() -> nn.Module:
    """The tiny model of seed 0 with x_0 scaled by EMBEDDING_SCALE and x_l by LAYER_SCALES[l - 1]; the pooler
    undoes the last scale, so the logits (and the FGM direction) are the plain model's."""
    model = build_classifier("tiny", 2, 0).eval()
    embeddings, layers = encoder_parts(model)
    embeddings.register_forward_hook(lambda _m, _i, out: out * EMBEDDING_SCALE)
    scales = (EMBEDDING_SCALE, *LAYER_SCALES)
    for i in range(len(layers)):
        layers[i] = Rescaled(layers[i], scales[i], scales[i + 1])
    model.bert.pooler.register_forward_pre_hook(lambda _m, args: (args[0] / scales[-1], *args[1:]))
    return model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


def _growths(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    clean, _ = ode.trajectory(model, batch)
    delta = ode.gaussian_delta(clean[0], batch["attention_mask"], 1e-2, seed=3)
    return ode.growth(model, batch, delta, clean)


def test_scale_free_growth_is_invariant_to_scaling_the_hidden_states_and_absolute_growth_is_not(tokenizer):
    batch = ode.sentence_batch(tokenizer, TEXTS)
    plain_abs, plain_rel = _growths(build_classifier("tiny", 2, 0).eval(), batch)
    scaled_abs, scaled_rel = _growths(_rescaled_tiny(), batch)
    with torch.no_grad():                  # the rescaled model really has rescaled hidden states
        states = ode.trajectory(_rescaled_tiny(), batch)[0]
        plain = ode.trajectory(build_classifier("tiny", 2, 0).eval(), batch)[0]
        plain_logits = build_classifier("tiny", 2, 0).eval()(**batch).logits
        scaled_logits = _rescaled_tiny()(**batch).logits
    for x, y, c in zip(plain, states, (EMBEDDING_SCALE, *LAYER_SCALES)):
        assert torch.equal(y, x * c)
    assert torch.equal(scaled_logits, plain_logits)
    np.testing.assert_array_equal(scaled_rel, plain_rel)               # bit-exact
    factor = np.array(LAYER_SCALES) / EMBEDDING_SCALE                  # ||dx_l|| scales by c_l, ||delta|| by c_0
    np.testing.assert_allclose(scaled_abs, plain_abs * factor, rtol=1e-6)
    assert not np.allclose(scaled_abs, plain_abs)


def test_scale_free_growth_is_absolute_growth_times_the_norm_ratio(tokenizer):
    batch = ode.sentence_batch(tokenizer, TEXTS)
    model = build_classifier("tiny", 2, 0).eval()
    absolute, relative = _growths(model, batch)
    with torch.no_grad():
        states = ode.trajectory(model, batch)[0]
    mask = batch["attention_mask"]
    ratio = torch.stack([ode._norms(states[0], mask) / ode._norms(x, mask) for x in states[1:]], 1).numpy()
    np.testing.assert_allclose(relative, absolute * ratio, rtol=1e-5)


def test_the_probe_of_a_rescaled_model_keeps_both_scale_free_growths(tokenizer):
    plain = ode.probe_model(build_classifier("tiny", 2, 0).eval(), tokenizer, TEXTS, [1, 0, 1], steps=2)
    scaled = ode.probe_model(_rescaled_tiny(), tokenizer, TEXTS, [1, 0, 1], steps=2)
    for key in ("relative_growth", "relative_growth_fgm"):
        np.testing.assert_allclose(scaled[key], plain[key], rtol=1e-5, err_msg=key)
        assert scaled[key].shape == (2,) and scaled[f"{key}_per_sentence"].shape == (3, 2)
    for key in ("growth", "growth_fgm"):
        assert not np.allclose(scaled[key], plain[key]), key


def test_probe_json_reports_absolute_and_scale_free_growth_per_layer(run_home, capsys):
    from engine.__main__ import main
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    store = RunStore()
    run = store.create(TrainConfig(model="tiny", train_size=32, epochs=1, batch_size=16, dev_size=16).to_dict())
    execute(store, run, lambda: False)
    assert run.status["status"] == "done", run.log_text()
    assert main(["probe", run.id, "--n", "3", "--steps", "2", "--jacobian-n", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("growth", "relative_growth", "growth_fgm", "relative_growth_fgm"):
        assert len(out[key]) == 2 and all(v > 0 for v in out[key]), key
    stored = run.artifact("probe")
    for key in ("growth", "relative_growth"):
        np.testing.assert_allclose(stored[key], out[key])
