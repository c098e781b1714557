"""IM-BERT / EX-BERT on the tiny model, the implicit solver against its closed form, and the ODE probes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from saved_model_util import assert_reloads_as_trained, keep_saved_models
from torch import nn

from engine.methods import SettingError, make_method
from engine.methods.im_bert import EulerConnection, SolverDivergedError, check_not_diverging, connections, real_tokens
from engine.models.architecture import ModelError
from engine.models.loading import build_classifier, load_tokenizer
from engine.probe import ode


def _batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 5000, (3, 10), generator=gen)
    ids[:, 0], mask = 101, torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _outputs(method: str, settings: dict) -> tuple[torch.Tensor, list[torch.Tensor], nn.Module]:
    model = make_method(method, settings).prepare_model(build_classifier("tiny", 2, 0)).eval()
    b = _batch()
    with torch.no_grad():
        out = model(**b, output_hidden_states=True)
    return out.logits, list(out.hidden_states), model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


# ---------------------------------------------------------------- (1) wrapping, and K = 0 is vanilla

def test_wraps_pretrained_layers_without_copying_weights():
    base = build_classifier("tiny", 2, 0)
    originals = list(base.bert.encoder.layer)
    n_params = sum(p.numel() for p in base.parameters())
    model = make_method("im-bert", {}).prepare_model(base)
    conns = connections(model)
    assert [i for i, _ in conns] == [0, 1]
    for (_, conn), layer in zip(conns, originals):
        assert conn.inner is layer            # the very same module, so the very same weight tensors
    assert sum(p.numel() for p in model.parameters()) == n_params
    names = [n for n, _ in model.named_parameters()]
    assert "bert.encoder.layer.0.inner.attention.self.query.weight" in names


@pytest.mark.parametrize("method,settings", [("im-bert", {"K": 0}), ("ex-bert", {"h": 1.0}),
                                             ("im-bert", {"K": 0, "exact_grad": True})])
def test_no_correction_at_h1_is_vanilla(method, settings):
    vanilla, v_states, _ = _outputs("vanilla", {})
    logits, states, _ = _outputs(method, settings)
    assert torch.allclose(logits, vanilla, atol=1e-5)
    for a, b in zip(v_states, states):
        assert torch.allclose(a, b, atol=1e-5)


def test_correction_changes_the_hidden_states():
    """The K = 0 check above could not fail if the wrapper ignored its settings: K = 2 must move the states."""
    _, v_states, _ = _outputs("vanilla", {})
    _, states, _ = _outputs("im-bert", {"K": 2})
    assert (v_states[-1] - states[-1]).abs().max() > 1e-4
    _, ex_states, _ = _outputs("ex-bert", {"h": 0.5})
    assert (v_states[-1] - ex_states[-1]).abs().max() > 1e-4


def test_only_the_chosen_layers_are_converted():
    _, _, model = _outputs("im-bert", {"layers": "1"})
    assert [i for i, _ in connections(model)] == [1]
    assert not isinstance(model.bert.encoder.layer[0], EulerConnection)


# ---------------------------------------------------------------- (2) the solver against the closed form

class Linear(nn.Module):
    """A layer that is a fixed linear map per token, returning a tuple like a BertLayer."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor]:
        return (x @ self.a.T,)


def _matrix(n: int = 6, norm: float = 0.6) -> torch.Tensor:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return a * norm / torch.linalg.matrix_norm(a, 2)


@pytest.mark.parametrize("field,exact,gamma", [("layer", False, 1.0), ("layer", True, 0.5),
                                               ("residual", False, 0.7), ("residual", True, 0.2)])
def test_implicit_step_matches_closed_form_on_a_linear_layer(field, exact, gamma):
    a, h = _matrix(), 0.8
    x = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    jac = a if field == "layer" else a - torch.eye(6, dtype=torch.float64)    # J_F
    closed = torch.linalg.solve(torch.eye(6, dtype=torch.float64) - h * jac, x.reshape(-1, 6).T).T.reshape(x.shape)
    conn = EulerConnection(Linear(a), h=h, iterations=200, gamma=gamma, field=field, exact_grad=exact, implicit=True)
    with torch.no_grad():
        z = conn(x)[0]
    assert torch.allclose(z, closed, atol=1e-8)
    explicit = EulerConnection(Linear(a), h=h, iterations=0, gamma=gamma, field=field, exact_grad=exact, implicit=True)
    assert not torch.allclose(explicit(x)[0], closed, atol=1e-3)          # K = 0 stops at the explicit step


def test_one_newton_step_solves_a_layer_whose_jacobian_is_a_multiple_of_the_identity():
    """The exact mode's step is the Newton step (I - h J_F)^{-1} r: where J_F is a multiple of the identity, one
    GMRES product finds it exactly and one step lands on the implicit solution, however large the scale."""
    x = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for scale in (0.2, 3.0, 40.0):
        a = torch.eye(6, dtype=torch.float64) * scale
        conn = EulerConnection(Linear(a), h=0.7, iterations=1, gamma=1.0, field="layer", exact_grad=True,
                               implicit=True, line_search=False)
        with torch.no_grad():
            z = conn(x)[0]
        torch.testing.assert_close(z, x / (1 - 0.7 * scale), rtol=1e-12, atol=1e-12)


def _random_bert_layer(std: float = 0.3) -> nn.Module:
    """A small BertLayer whose weights are drawn large enough that the implicit equation is hard to solve."""
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    torch.manual_seed(0)
    layer = BertLayer(BertConfig(hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                 attn_implementation="eager")).eval()
    with torch.no_grad():
        for p in layer.parameters():
            if p.dim() == 2:
                p.normal_(0, std)
    return layer


def _solver_trajectory(layer_std: float = 0.3, **settings) -> list[float]:
    """Relative residual at z^0 .. z^8 of one implicit step (h = 1, residual field) on the fixed random layer,
    for a batch of 3 with padding in the second sentence."""
    x = torch.randn(3, 7, 32, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(3, 1, 1, 7)
    mask[1, ..., 5:] = torch.finfo(torch.float32).min          # the encoder's additive mask: 2 padding tokens
    conn = EulerConnection(_random_bert_layer(layer_std), **{"h": 1.0, "iterations": 8, "gamma": 0.5,
                                                             "field": "residual", "exact_grad": False,
                                                             "implicit": True, **settings})
    conn.track = True
    with torch.no_grad():
        conn(x, mask)
    return conn.last_trajectory


def test_exact_solver_residual_decreases_on_a_fixed_random_layer():
    """The exact (Newton-GMRES) solver with its line search: every step lowers the relative residual, 8 steps cut
    it by more than 50 times, and it ends at a tenth of what the cheap solver reaches in as many steps. On a
    layer with larger weights full Newton steps (no line search) let the residual grow, and the line search
    keeps it falling."""
    exact = _solver_trajectory(exact_grad=True)
    assert len(exact) == 9
    assert all(b < a for a, b in zip(exact, exact[1:])), exact
    assert exact[-1] < exact[0] / 50
    assert exact[-1] < _solver_trajectory()[-1] / 10
    full_steps = _solver_trajectory(1.2, exact_grad=True, line_search=False)
    assert any(b > a for a, b in zip(full_steps, full_steps[1:])), full_steps
    searched = _solver_trajectory(1.2, exact_grad=True)
    assert all(b < a for a, b in zip(searched, searched[1:])), searched


def test_cheap_solver_with_line_search_never_grows_where_a_fixed_step_does():
    cheap = _solver_trajectory()
    assert all(b < a for a, b in zip(cheap, cheap[1:])), cheap
    assert _solver_trajectory(gamma=1.0, line_search=False)[-1] > cheap[0]     # fixed step 1: no better than z^0


def test_dropout_masks_stay_fixed_within_one_solve():
    """In training mode the layer's dropout is on. Every call inside one solve draws the same masks, so F is one
    function: the line search compares like with like, the residual falls at every step as it does without
    dropout, and the solve costs its 2 + K layer calls with at most a few halvings (not 7 calls per step)."""
    x = torch.randn(3, 7, 32, generator=torch.Generator().manual_seed(1))
    layer = _random_bert_layer(std=0.05).train()                     # hidden and attention dropout 0.1
    conn = EulerConnection(layer, h=1.0, iterations=8, gamma=0.5, field="residual", exact_grad=False,
                           implicit=True).train()
    conn.track = True
    calls = []
    layer.register_forward_hook(lambda *_: calls.append(1))
    torch.manual_seed(0)
    with torch.no_grad():
        conn(x)
    trajectory = conn.last_trajectory
    assert all(b <= a for a, b in zip(trajectory, trajectory[1:])), trajectory
    assert len(calls) <= 2 + 8 + 3, len(calls)
    before = torch.random.get_rng_state()
    with torch.no_grad():
        conn(x)
    assert not torch.equal(torch.random.get_rng_state(), before)      # a new solve draws new masks


def test_residuals_are_measured_on_real_tokens_only():
    """The solver reads which tokens are real from the encoder's additive mask (eager (B,1,1,T) or SDPA
    (B,1,T,T)); with no mask every token is real."""
    x = torch.zeros(2, 4, 3)
    low = torch.finfo(torch.float32).min
    eager = torch.tensor([0.0, 0.0, low, low]).view(1, 1, 1, 4).expand(2, 1, 1, 4).clone()
    eager[0] = 0
    expected = torch.tensor([[1.0, 1, 1, 1], [1, 1, 0, 0]]).unsqueeze(-1)
    assert torch.equal(real_tokens((eager,), {}, x), expected)
    assert torch.equal(real_tokens((), {"attention_mask": eager.expand(2, 1, 4, 4)}, x), expected)
    assert torch.equal(real_tokens((None,), {}, x), torch.ones(2, 4, 1))


def test_a_growing_residual_is_refused_with_a_clear_message():
    converged = np.array([[0.5, 0.1, 0.02], [np.nan] * 3])      # layer 1 is not converted
    check_not_diverging(converged, 3)
    with pytest.raises(SolverDivergedError, match=r"step 7: in layer 0 .* grew from 0.5 .* to 0.6 after K = 2"):
        check_not_diverging(np.array([[0.5, 0.1, 0.6]]), 7)
    with pytest.raises(SolverDivergedError, match="nan"):
        check_not_diverging(np.array([[0.5, np.nan]]), 1)


def test_exact_gradient_trains_through_the_unrolled_solver():
    model = make_method("im-bert", {"exact_grad": True}).prepare_model(build_classifier("tiny", 2, 0)).train()
    loss = model(**_batch()).logits.sum()
    loss.backward()
    grad = model.bert.encoder.layer[0].inner.attention.self.query.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("field", ["layer", "residual"])
def test_exact_mode_gradient_is_the_implicit_solutions(field):
    """On a linear layer the solution is z = (I - h J_F)^{-1} x, so d<g, z>/dx = (I - h J_F)^{-T} g: the exact
    mode's implicit-function gradient gives it (the solver's K steps are not differentiated), and the weights
    get theirs, h u z^T with u = (I - h J_F)^{-T} g."""
    a, h = _matrix(), 0.8
    jac = a if field == "layer" else a - torch.eye(6, dtype=torch.float64)
    system = torch.eye(6, dtype=torch.float64) - h * jac
    x = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    layer = Linear(a)
    layer.a = nn.Parameter(a.clone())
    conn = EulerConnection(layer, h=h, iterations=30, gamma=0.5, field=field, exact_grad=True, implicit=True)
    z = conn(x)[0]
    torch.testing.assert_close(z.detach(), torch.linalg.solve(system, x.detach().reshape(-1, 6).T).T.reshape(x.shape))
    (z * g).sum().backward()
    expected = torch.linalg.solve(system.T, g.reshape(-1, 6).T).T.reshape(x.shape)
    torch.testing.assert_close(x.grad, expected, rtol=1e-9, atol=1e-9)
    # f(z) = x + h F(z) is linear in A through h A z, so dL/dA = h sum over tokens of u z^T
    torch.testing.assert_close(layer.a.grad, h * torch.einsum("btd,bte->de", expected, z.detach()),
                               rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- bad settings

@pytest.mark.parametrize("settings,needle", [({"h": 0}, "h=0"), ({"h": -1}, "h=-1"), ({"K": -1}, "K=-1"),
                                             ({"gamma": 0}, "gamma=0"), ({"gamma": 1.5}, "gamma=1.5"),
                                             ({"layers": ""}, "empty"), ({"layers": "0,0"}, "twice"),
                                             ({"field": "other"}, "residual, layer")])
def test_bad_settings_are_refused_clearly(settings, needle):
    with pytest.raises(SettingError, match=needle):
        make_method("im-bert", settings)


def test_layer_beyond_the_encoder_is_refused():
    with pytest.raises(SettingError, match="only 2 layers"):
        make_method("ex-bert", {"layers": "0,5"}).prepare_model(build_classifier("tiny", 2, 0))


def test_gamma_one_is_allowed():
    assert make_method("im-bert", {"gamma": "1"}).settings["gamma"] == 1.0


# ---------------------------------------------------------------- probes: known cases

class Identity(nn.Module):
    def forward(self, x: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor]:
        return (x,)


def test_identity_layers_give_growth_one(tokenizer):
    model = build_classifier("tiny", 2, 0).eval()
    for i in range(len(model.bert.encoder.layer)):
        model.bert.encoder.layer[i] = Identity()
    texts = ["a gripping, funny film", "dull and far too long", "it is what it is"]
    result = ode.probe_model(model, tokenizer, texts, [1, 0, 1], steps=3)
    np.testing.assert_allclose(result["growth"], 1.0, atol=1e-5)
    np.testing.assert_allclose(result["growth_fgm"], 1.0, atol=1e-5)
    np.testing.assert_allclose(result["jacobian_top_sv"], 1.0, atol=1e-5)
    np.testing.assert_allclose(result["h_lambda"], 0.0, atol=1e-5)
    assert np.isnan(result["solver_residual"]).all()          # nothing implicit to report


def test_top_singular_value_of_a_linear_layer():
    a = _matrix(8, 1.0).float() * 2.5
    x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 4, dtype=torch.long)
    sigma, v, _ = ode.top_singular(lambda z: z @ a.T, x, mask, steps=8)
    np.testing.assert_allclose(sigma.numpy(), float(torch.linalg.matrix_norm(a, 2)), rtol=1e-3)


def test_growth_of_a_scaling_model_is_the_scale(tokenizer):
    model = build_classifier("tiny", 2, 0).eval()
    for i in range(len(model.bert.encoder.layer)):
        model.bert.encoder.layer[i] = Linear(torch.eye(32) * 0.5)
    batch = ode.sentence_batch(tokenizer, ["one sentence here", "another"])
    clean, _ = ode.trajectory(model, batch)
    g, _ = ode.growth(model, batch, ode.gaussian_delta(clean[0], batch["attention_mask"], 1e-2), clean)
    np.testing.assert_allclose(g, [[0.5, 0.25]] * 2, rtol=1e-5)


def test_sentence_that_tokenises_to_nothing_is_refused(tokenizer):
    model = build_classifier("tiny", 2, 0).eval()
    for bad in ("", "   ", "\u200b"):
        with pytest.raises(ValueError, match="tokenises to nothing"):
            ode.divergence(model, tokenizer, "a fine film", bad)


def test_divergence_of_a_sentence_with_itself_is_zero(tokenizer):
    model = make_method("im-bert", {}).prepare_model(build_classifier("tiny", 2, 0)).eval()
    d = ode.divergence(model, tokenizer, "a fine film", "a fine film")
    assert d["mean"].shape == (3,) and np.allclose(d["mean"], 0) and np.allclose(d["cls"], 0)
    d = ode.divergence(model, tokenizer, "a fine film", "a fnie film")
    assert d["mean"][0] > 0 and d["tokens_clean"] != d["tokens_perturbed"]


def test_typo_copy_changes_inner_letters_only():
    s = "this wonderful movie really surprised everybody"
    t = ode.typo_copy(s, 2, seed=0)
    changed = [(a, b) for a, b in zip(s.split(), t.split()) if a != b]
    assert len(changed) == 2
    for a, b in changed:
        assert sorted(a) == sorted(b) and a[0] == b[0] and a[-1] == b[-1]


# ---------------------------------------------------------------- a trained tiny run: record, save, load, probe

@pytest.fixture(scope="module")
def im_run(tmp_path_factory):
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    store = RunStore(tmp_path_factory.mktemp("im_runs"))
    config = TrainConfig(model="tiny", method="im-bert", train_size=48, epochs=1, batch_size=16, dev_size=32,
                         record_every=1)
    run = store.create(config.to_dict())
    with keep_saved_models():
        execute(store, run, lambda: False)
    assert run.status["status"] == "done", run.log_text()
    return store, run


@pytest.mark.slow
def test_training_records_the_solver_residual(im_run):
    _, run = im_run
    art = run.artifact("im_residual")
    assert list(art["step"]) == [1, 2, 3]
    k = run.results["method_summary"]["K"]
    assert art["per_iteration"].shape == (3, 2, k + 1) and np.isfinite(art["per_iteration"]).all()
    np.testing.assert_array_equal(art["first"], art["per_iteration"][..., 0])
    np.testing.assert_array_equal(art["final"], art["per_iteration"][..., -1])
    assert (np.diff(art["per_iteration"], axis=-1) <= 0).all()   # the line search never lets it grow
    assert any(r["name"] == "im_residual" for r in run.metrics())


def test_summary_has_the_final_relative_residual(im_run):
    """The mean over layers of the residual after K steps, at the last (recorded) step."""
    _, run = im_run
    summary = run.results["method_summary"]
    assert summary["final_relative_residual"] == pytest.approx(float(run.artifact("im_residual")["final"][-1].mean()))
    assert summary["extra_layer_calls_per_layer"] == run.results["method_summary"]["K"] + 1


def test_a_diverging_solver_stops_the_run_with_the_message(run_home):
    """A fixed step of 1 at h = 4 (no line search) makes layer 0's residual grow on the tiny model: the run
    fails at its first step with the solver's message as its error, and saves no model."""
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    store = RunStore(run_home)
    config = TrainConfig(model="tiny", method="im-bert", train_size=32, epochs=1, batch_size=16, dev_size=32,
                         settings={"h": 4.0, "gamma": 1.0, "line_search": False, "K": 4})
    run = store.create(config.to_dict())
    assert execute(store, run, lambda: False)["status"] == "failed"
    status = store.get(run.id).status
    assert status["status"] == "failed" and status.get("step", 0) <= 1
    assert "SolverDivergedError: IM-BERT's implicit solver diverged at training step 1: in layer 0" in status["error"]
    assert not (run.dir / "model").exists()


def test_saved_run_reloads_with_the_same_predictions(im_run):
    _, run = im_run
    model, _, method = assert_reloads_as_trained(run.dir)
    assert len(connections(model)) == 2 and method.name == "im-bert"


def test_probe_command_prints_per_layer_json_and_stores_it(im_run, monkeypatch, capsys):
    from engine.__main__ import main

    store, run = im_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    assert main(["probe", run.id, "--n", "4", "--steps", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["run_id"] == run.id and out["n_sentences"] == 4
    for key in ("growth", "growth_fgm", "jacobian_top_sv", "h_lambda", "solver_residual"):
        assert len(out[key]) == 2, key
    assert out["scheme"] == ["implicit", "implicit"] and all(r is not None for r in out["solver_residual"])
    assert "probe" in run.artifact_names()
    stored = run.artifact("probe")
    np.testing.assert_allclose(stored["growth"], out["growth"])
    assert main(["probe", run.id, "--n", "4", "--steps", "2", "--json"]) == 0   # served from the artifact
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["seconds"] == out["seconds"]


def test_probe_of_a_run_without_a_model_is_refused(run_home, capsys):
    from engine.__main__ import main
    from engine.store.runs import RunStore

    run = RunStore().create({"method": "im-bert", "model": "tiny", "dataset": "sst2", "seed": 0})
    with pytest.raises(ModelError, match="no saved model"):
        ode.probe_run(RunStore(), run.id)
    assert main(["probe", run.id, "--json"]) == 2
    assert "error:" in capsys.readouterr().err


def test_probe_rejects_bad_arguments(im_run):
    store, run = im_run
    for kwargs in ({"n": 0}, {"scale": 0}, {"steps": 0}, {"jacobian_n": 0}):
        with pytest.raises(ValueError):
            ode.probe_run(store, run.id, **kwargs)


def test_probing_in_chunks_changes_no_deterministic_number(tokenizer):
    model = make_method("im-bert", {}).prepare_model(build_classifier("tiny", 2, 0)).eval()
    texts = ["a gripping, funny film", "dull", "it is what it is, no more and no less", "bad", "quite good"]
    labels = [1, 0, 1, 0, 1]
    whole = ode.probe_model(model, tokenizer, texts, labels, steps=2, chunk=16)
    parts = ode.probe_model(model, tokenizer, texts, labels, steps=2, chunk=2)
    np.testing.assert_allclose(whole["growth_fgm_per_sentence"], parts["growth_fgm_per_sentence"], rtol=1e-4)
    assert whole["growth_per_sentence"].shape == (5, 2) and whole["jacobian_top_sv_per_sentence"].shape == (5, 2)


@pytest.mark.parametrize("method,settings", [("vanilla", {}), ("ex-bert", {}), ("im-bert", {"K": 0, "h": 0.7})])
def test_explicit_shortcut_for_h_lambda_matches_the_field_graph(method, settings, tokenizer):
    model = make_method(method, settings).prepare_model(build_classifier("tiny", 2, 1)).eval()
    batch = ode.sentence_batch(tokenizer, ["a gripping, funny film", "dull and long"])
    mask = batch["attention_mask"]
    for call in ode.layer_calls(model, batch):
        assert call.scheme == "explicit"          # K = 0 stops at the explicit predictor
        with ode.math_attention():
            _, v, jv = ode.top_singular(call.step, call.x, mask, steps=3)
            fast = ode.effective_lambda(call, v, mask, jv)
            slow = ode.effective_lambda(call, v, mask)
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-3)


# ---------------------------------------------------------------- the solver decides per sentence (issue 26)

class Scale(nn.Module):
    """A layer that multiplies sentence i by its own factor c_i, and records, for every call, which sentences it
    was called for. Sentence i of the test batches below lives mostly on coordinate i, which is how the layer
    tells it apart (a constant as far as gradients go), so every coordinate of it moves by the same factor."""

    def __init__(self, factors: list[float]) -> None:
        super().__init__()
        self.factors = torch.tensor(factors, dtype=torch.float64)
        self.calls: list[list[int]] = []

    def forward(self, x: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor]:
        which = x.detach().abs().sum(1).argmax(1)
        self.calls.append(which.tolist())
        return (x * self.factors[which].view(-1, 1, 1),)


def _sentences(n: int, requires_grad: bool = False) -> torch.Tensor:
    """Sentence i: 3 tokens, each 1 on coordinate i and 0 elsewhere (float64)."""
    return torch.eye(n, dtype=torch.float64).unsqueeze(1).repeat(1, 3, 1).requires_grad_(requires_grad)


def _scale_solve(factors: list[float], iterations: int, tol: float = 0.0, train: bool = False,
                 x: torch.Tensor | None = None) -> tuple[torch.Tensor, Scale, EulerConnection]:
    """One implicit step z = x + F(z), F = Layer (field `layer`, h = 1), cheap solver with gamma = 1: on sentence
    i the residual is multiplied by 1 - s (1 - c_i) at a step of size s, so c_i sets how it behaves."""
    layer = Scale(factors)
    conn = EulerConnection(layer, h=1.0, iterations=iterations, gamma=1.0, field="layer", exact_grad=False,
                           implicit=True, tol=tol).train(train)
    conn.track = True
    x = _sentences(len(factors)) if x is None else x
    with torch.set_grad_enabled(x.requires_grad):
        z = conn(x)[0]
    return z, layer, conn


def _calls_per_sentence(layer: Scale, n: int) -> list[int]:
    return [sum(call.count(i) for call in layer.calls) for i in range(n)]


def test_a_sentence_at_the_tolerance_stops_and_is_left_bit_identical_while_another_keeps_iterating():
    """Sentence 0 (c = 0.01) cuts its residual 100 times a step and is at tol = 1e-3 of its predictor's residual
    after 2 steps; sentence 1 (c = 0.9) loses a tenth a step and never gets there. Sentence 0 is evaluated in no
    layer call after that, and its z is the very same after 8 steps as after 2, while sentence 1's moves on."""
    z8, layer, conn = _scale_solve([0.01, 0.9], 8, tol=1e-3)
    assert _calls_per_sentence(layer, 2) == [2 + 2, 2 + 8]
    assert conn.last_calls == [2 + 2, 2 + 8]
    assert layer.calls[-1] == [1]                     # the last calls are made for sentence 1 alone
    z2, _, _ = _scale_solve([0.01, 0.9], 2, tol=1e-3)
    assert torch.equal(z8[0], z2[0])
    assert not torch.equal(z8[1], z2[1])


def test_the_line_search_retries_only_the_sentence_whose_residual_grew():
    """A full step multiplies sentence 1's residual by 1 - (1 + 2.5) = -2.5 (it grows) and half a step by -0.75;
    sentence 0's (c = 0.5) falls by half at a full step. So each step tries both once, then sentence 1 alone."""
    _, layer, conn = _scale_solve([0.5, -2.5], 4)
    assert layer.calls[:2] == [[0, 1], [0, 1]]        # the predictor and its residual
    assert layer.calls[2:] == [[0, 1], [1]] * 4
    assert conn.last_calls == [2 + 4, 2 + 2 * 4]
    trajectory = conn.last_trajectory
    assert all(b < a for a, b in zip(trajectory, trajectory[1:])), trajectory


def test_a_sentence_whose_every_halving_fails_is_not_tried_again():
    """On sentence 1 (c = 1.5) every step s > 0 multiplies the residual by 1 + s / 2: all 1 + MAX_HALVINGS trials
    of its first step fail, its z stays the predictor's, and it is in no later call (the same z would fail the
    same way); sentence 0 (c = 0.5) takes its 6 steps."""
    from engine.methods.im_bert import MAX_HALVINGS

    z, layer, conn = _scale_solve([0.5, 1.5], 6)
    assert conn.last_calls == [2 + 6, 2 + 1 + MAX_HALVINGS]
    assert layer.calls[2 + 1 + MAX_HALVINGS:] == [[0]] * 5
    predictor, _, _ = _scale_solve([0.5, 1.5], 0)
    assert torch.equal(z[1], predictor[1])


def test_in_training_every_call_covers_the_whole_batch_and_a_grown_sentence_retries_at_the_next_step():
    """In training each call of a solve must draw the same dropout masks, so every call is made for the whole
    batch: 2 + K calls. Sentence 1's full step grows its residual (c = -2.5), so it keeps its z and takes the
    half step at the next step; its residual never grows."""
    _, layer, conn = _scale_solve([0.5, -2.5], 4, train=True)
    assert layer.calls == [[0, 1]] * (2 + 4)
    assert conn.last_calls == [2 + 4, 2 + 4]
    trajectory = conn.last_trajectory
    assert all(b <= a for a, b in zip(trajectory, trajectory[1:])), trajectory
    predictor, one, two = (_scale_solve([0.5, -2.5], k, train=True)[0] for k in (0, 1, 2))
    assert torch.equal(one[1], predictor[1]) and not torch.equal(two[1], one[1])   # kept, then the half step
    assert not torch.equal(one[0], predictor[0])


@pytest.mark.parametrize("train", [False, True])
def test_the_per_sentence_solve_keeps_a_correct_gradient(train):
    """The unrolled solve, with sentences accepted, retried, stopped and stalled row by row (index_copy in
    evaluation, torch.where in training), differentiates to its finite differences."""
    layer = Scale([0.5, -2.5, 0.01, 1.5])
    conn = EulerConnection(layer, h=1.0, iterations=4, gamma=1.0, field="layer", exact_grad=False, implicit=True,
                           tol=1e-3).train(train)
    x = (_sentences(4) * torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64).view(-1, 1, 1)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: conn(v)[0], (x,))
