"""Corruption touches exactly what it is told to; the recovery grid, its metrics, CLI and cancel (tiny model)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.models.corruption import INITS, KINDS, CorruptionError, check_spec, corrupt, group_layers, targets
from engine.models.loading import build_classifier
from engine.recovery.analysis import linear_cka
from engine.recovery.grid import GridSpec
from engine.recovery.metrics import area_under_curve, chance_corrected_ratio, steps_to_reach, summarise_by_label


def _scrambled_tiny(seed: int = 0) -> torch.nn.Module:
    """A tiny classifier whose every value is random, so a LayerNorm set to 1 or a bias set to 0 is a visible change."""
    model = build_classifier("tiny", 2, seed)
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _touched_names(model, spec) -> dict[str, str]:
    return {t.name: t.role for t in targets(model, spec)}


def test_reinit_changes_the_selected_layer_as_the_paper_says_and_nothing_else():
    model = _scrambled_tiny()
    before = _snapshot(model)
    spec = {"layers": [1], "kind": "reinit", "seed": 7}
    roles = _touched_names(model, spec)
    assert roles and all(".encoder.layer.1." in name for name in roles)
    message = corrupt(model, spec)
    assert "reinit" in message and "layer 1 of 2" in message
    for name, param in model.named_parameters():
        old, new = before[name], param.detach()
        role = roles.get(name)
        if role is None:
            assert torch.equal(old, new), f"{name} should be untouched"
        elif role == "layernorm_weight":
            assert torch.all(new == 1) and not torch.equal(old, new)
        elif role in ("layernorm_bias", "linear_bias"):
            assert torch.all(new == 0) and not torch.equal(old, new)
        else:  # Kaiming normal, fan_in, ReLU gain: std sqrt(2 / fan_in), mean 0
            fan_in = new.shape[1]
            assert not torch.equal(old, new)
            assert new.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.15), name
            assert abs(new.mean().item()) < 0.1 * math.sqrt(2 / fan_in) * 5
    # every kind of parameter in the layer is covered
    assert set(roles.values()) == {"layernorm_weight", "layernorm_bias", "linear_weight", "linear_bias"}


def _linear_weights_and_biases(model, spec) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The corrupted layers' Linear weights and biases after `corrupt(model, spec)`."""
    roles = _touched_names(model, spec)
    corrupt(model, spec)
    params = dict(model.named_parameters())
    return ([params[n].detach() for n, r in roles.items() if r == "linear_weight"],
            [params[n].detach() for n, r in roles.items() if r == "linear_bias"])


def _fan_in_variance(tensors: list[torch.Tensor], fan_ins: list[int]) -> float:
    """Variance times fan_in, pooled over tensors of different widths (each entry has mean 0 by construction)."""
    return float(torch.cat([t.flatten().double().pow(2) * f for t, f in zip(tensors, fan_ins)]).mean())


def test_linear_default_reinit_draws_as_nn_linear_does_and_kaiming_normal_has_six_times_its_variance():
    spec = {"layers": [0, 1], "kind": "reinit", "seed": 3}
    default_w, default_b = _linear_weights_and_biases(_scrambled_tiny(), {**spec, "init": "linear-default"})
    kaiming_w, kaiming_b = _linear_weights_and_biases(_scrambled_tiny(), spec)       # kaiming-normal by default
    fan_ins = [w.shape[1] for w in default_w]
    torch.manual_seed(0)                       # freshly built nn.Linear layers of the same shapes: the reference
    fresh = [torch.nn.Linear(w.shape[1], w.shape[0]) for w in default_w]
    reference_w = _fan_in_variance([f.weight.detach() for f in fresh], fan_ins)
    reference_b = _fan_in_variance([f.bias.detach() for f in fresh], fan_ins)
    assert reference_w == pytest.approx(1 / 3, rel=0.05)           # U(±1/sqrt(fan_in)): variance 1 / (3 fan_in)
    assert _fan_in_variance(default_w, fan_ins) == pytest.approx(reference_w, rel=0.05)
    assert _fan_in_variance(default_b, fan_ins) == pytest.approx(reference_b, rel=0.2)   # few biases: looser
    assert all(w.abs().max() <= 1 / math.sqrt(w.shape[1]) for w in default_w)           # uniform's bounds
    assert all(b.abs().max() <= 1 / math.sqrt(f) and b.abs().min() > 0 for b, f in zip(default_b, fan_ins))
    ratio = _fan_in_variance(kaiming_w, fan_ins) / _fan_in_variance(default_w, fan_ins)
    assert ratio == pytest.approx(6.0, rel=0.05)                   # N(0, 2/fan_in) against 1 / (3 fan_in)
    assert all(torch.all(b == 0) for b in kaiming_b)


def test_corruption_labels_say_where_each_recipe_comes_from():
    assert "RobustLab's reconstruction after a secondary summary" in KINDS["reinit"]
    assert "paper's)" not in KINDS["reinit"]
    assert all("RobustLab's own variant" in KINDS[k] for k in ("noise", "zero"))
    assert set(INITS) == {"kaiming-normal", "linear-default"}


def test_embeddings_alone_reset_the_embedding_tables_and_their_layernorm():
    model = _scrambled_tiny()
    before = _snapshot(model)
    corrupt(model, {"layers": [], "embeddings": True, "kind": "reinit", "seed": 0})
    for name, param in model.named_parameters():
        if ".embeddings." not in name:
            assert torch.equal(before[name], param), name
        elif "LayerNorm.weight" in name:
            assert torch.all(param == 1)
        elif "LayerNorm.bias" in name:
            assert torch.all(param == 0)
        else:
            assert param.std().item() == pytest.approx(math.sqrt(2 / param.shape[1]), rel=0.15), name


def test_noise_adds_gaussian_noise_scaled_to_each_matrix_and_leaves_layernorm_and_biases():
    model = _scrambled_tiny()
    before = _snapshot(model)
    roles = _touched_names(model, {"layers": [0], "kind": "noise"})
    corrupt(model, {"layers": [0], "kind": "noise", "scale": 0.5, "seed": 1})
    changed = 0
    for name, param in model.named_parameters():
        old, new = before[name], param.detach()
        if roles.get(name) == "linear_weight":
            delta = new - old
            rms = old.pow(2).mean().sqrt().item()
            assert delta.std().item() == pytest.approx(0.5 * rms, rel=0.15), name
            assert abs(delta.mean().item()) < 0.1 * rms
            changed += 1
        else:
            assert torch.equal(old, new), f"{name} should be untouched by noise"
    assert changed == 6  # query, key, value, attention output, intermediate, output


def test_zero_sets_exactly_the_fraction_of_each_matrix_to_zero():
    model = _scrambled_tiny()
    before = _snapshot(model)
    roles = _touched_names(model, {"layers": [0, 1], "kind": "zero"})
    corrupt(model, {"layers": [0, 1], "kind": "zero", "fraction": 0.3, "seed": 2})
    for name, param in model.named_parameters():
        old, new = before[name], param.detach()
        if roles.get(name) == "linear_weight":
            zeroed = (new == 0) & (old != 0)
            assert int(zeroed.sum()) == round(0.3 * old.numel()), name
            assert torch.equal(new[~zeroed], old[~zeroed])
        else:
            assert torch.equal(old, new), name


def test_corruption_is_reproducible_from_the_spec_and_seed():
    spec = {"layers": [0], "embeddings": True, "kind": "reinit", "seed": 5}
    a, b, c = build_classifier("tiny", 2, 0), build_classifier("tiny", 2, 0), build_classifier("tiny", 2, 0)
    corrupt(a, spec)
    corrupt(b, dict(spec))
    corrupt(c, {**spec, "seed": 6})
    sa, sb, sc = _snapshot(a), _snapshot(b), _snapshot(c)
    assert all(torch.equal(sa[n], sb[n]) for n in sa)
    assert not torch.equal(sa["bert.encoder.layer.0.attention.self.query.weight"],
                           sc["bert.encoder.layer.0.attention.self.query.weight"])


@pytest.mark.parametrize("spec, message", [
    ({"layers": [2]}, "layer 2 does not exist"),
    ({"layers": []}, "nothing to corrupt"),
    ({"layers": [0], "kind": "noise", "scale": 0}, "noise scale must be > 0"),
    ({"layers": [0], "kind": "noise", "scale": -1}, "noise scale must be > 0"),
    ({"layers": [0], "kind": "zero", "fraction": 1.5}, r"in \[0, 1\]"),
    ({"layers": [0], "kind": "zero", "fraction": -0.1}, r"in \[0, 1\]"),
    ({"layers": [0], "kind": "melt"}, "corruption kind must be one of"),
    ({"layers": [0], "init": "xavier"}, "re-initialisation must be one of kaiming-normal, linear-default"),
])
def test_bad_specs_are_refused_with_the_reason(spec, message):
    with pytest.raises(CorruptionError, match=message):
        check_spec(spec, num_layers=2)


def test_layer_groups_and_k_larger_than_the_model():
    assert group_layers("bottom", 2, 6) == [0, 1]
    assert group_layers("top", 2, 6) == [4, 5]
    with pytest.raises(CorruptionError, match="larger than the number of layers.*6 layers"):
        group_layers("top", 7, 6)


@pytest.mark.parametrize("changes, message", [
    ({"levels": [1, 3]}, "k=3 is larger than the number of layers"),
    ({"positions": []}, "the grid is empty"),
    ({"positions": ["bottom"], "levels": []}, "the grid is empty"),
    ({"seeds": []}, "the grid is empty: give at least one seed"),
    ({"corruption_kind": "noise", "scale": 0.0}, "noise scale must be > 0"),
    ({"corruption_kind": "zero", "fraction": 2.0}, r"fraction of weights to zero must be in \[0, 1\]"),
    ({"init": "xavier"}, "re-initialisation must be one of kaiming-normal, linear-default"),
    ({"positions": ["custom"]}, "custom position needs at least one layer"),
    ({"positions": ["custom"], "custom_layers": [4]}, "custom layer 4 does not exist"),
    ({"epochs": 0}, "epochs must be at least 1"),
])
def test_bad_grids_get_a_clear_message(changes, message):
    spec = GridSpec(**{"model": "tiny", "levels": [1, 2], **changes})
    with pytest.raises(ValueError, match=message):
        spec.check(num_layers=2)


def test_grid_cells_put_the_clean_baseline_first_for_each_seed():
    spec = GridSpec(model="tiny", positions=["bottom", "top", "custom", "embeddings"], levels=[1, 2],
                    custom_layers=[1], seeds=[0, 1], embeddings=False)
    cells = spec.cells(num_layers=2)
    labels = [(c.label, c.seed) for c in cells]
    assert labels[:7] == [("clean", 0), ("bottom-1", 0), ("bottom-2", 0), ("top-1", 0), ("top-2", 0),
                          ("custom 1", 0), ("embeddings", 0)]
    assert labels[7] == ("clean", 1) and len(cells) == 14
    assert cells[3].layers == (1,) and cells[1].layers == (0,)
    assert cells[0].corruption_spec(spec) is None
    assert cells[4].corruption_spec(spec) == {"layers": [0, 1], "embeddings": False, "kind": "reinit",
                                              "init": "kaiming-normal", "seed": 0}
    linear = GridSpec(model="tiny", levels=[1], init="linear-default")
    assert linear.cells(num_layers=2)[1].corruption_spec(linear)["init"] == "linear-default"


def test_recovery_metrics():
    assert area_under_curve([10, 20, 30], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    assert area_under_curve([10, 20], [0.5, 1.0]) == pytest.approx(0.75)
    assert area_under_curve([], []) is None
    assert steps_to_reach([5, 10, 15], [0.6, 0.8, 0.9], 0.95 * 0.84) == 10
    assert steps_to_reach([5, 10, 15], [0.6, 0.7, 0.75], 0.95 * 0.85) is None
    rows = [{"label": "bottom-1", "position": "bottom", "layers": 1, "embeddings": False, "status": "done",
             "final_accuracy": a, "recovery_ratio": a / 0.9, "auc": a - 0.1, "steps_to_95": s,
             "advglue_accuracy": 0.4} for a, s in ((0.8, 10), (0.7, None))]
    rows.append({**rows[0], "status": "cancelled", "final_accuracy": None})
    (entry,) = summarise_by_label(rows)
    assert entry["seeds"] == 2 and entry["final_accuracy_mean"] == pytest.approx(0.75)
    assert entry["final_accuracy_std"] == pytest.approx(np.std([0.8, 0.7], ddof=1))
    assert entry["steps_to_95_mean"] == 10 and entry["reached_95"] == 1


def test_linear_cka_is_one_for_the_same_space_and_low_for_unrelated_ones():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 20))
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert linear_cka(x, 3.0 * x @ q + 1.0) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(500, 20))) < 0.1
    assert 0.2 < linear_cka(x, x + rng.normal(size=(500, 20))) < 0.9


TINY = ["--model", "tiny", "--train-size", "32", "--epochs", "1", "--batch-size", "16", "--eval-every", "1",
        "--dev-size", "32"]


@pytest.mark.slow
def test_cli_runs_a_grid_and_prints_one_json_line(run_home, capsys):
    from engine.__main__ import main
    from engine.store.runs import RunStore, read_json

    code = main(["recover", "--positions", "bottom,top", "--layers", "1", "--seeds", "0", "--init", "linear-default",
                 *TINY, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1
    data = json.loads(out[0])
    assert data["status"] == "done"
    rows = {r["label"]: r for r in data["rows"]}
    assert set(rows) == {"clean", "bottom-1", "top-1"}
    store = RunStore(run_home)
    for row in rows.values():
        for key in ("position", "layers", "seed", "final_accuracy", "recovery_ratio", "auc", "steps_to_95",
                    "advglue_accuracy"):
            assert key in row
        scored = read_json(store.get(row["run_id"]).dir / "eval.json")   # the cell's own final evaluations
        assert scored["sst2-dev"]["n"] == 872 and row["final_accuracy"] == scored["sst2-dev"]["accuracy"]
        assert row["advglue_accuracy"] == scored["advglue-sst2"]["accuracy"]
    assert rows["bottom-1"]["layer_set"] == [0] and rows["top-1"]["layer_set"] == [1]
    assert rows["top-1"]["chance_accuracy"] == pytest.approx(444 / 872)     # the SST-2 dev majority rate
    expected = chance_corrected_ratio(rows["top-1"]["final_accuracy"], rows["clean"]["final_accuracy"], 444 / 872)
    assert rows["top-1"]["recovery_ratio"] == (None if expected is None else pytest.approx(expected))
    assert data["clean"]["0"]["final_accuracy"] == rows["clean"]["final_accuracy"]
    # curves come from the evaluations recorded while training: one per step here (eval_every 1)
    run = store.get(rows["bottom-1"]["run_id"])
    dev_steps = sorted({m["step"] for m in run.metrics() if m["split"] == "dev" and m["name"] == "accuracy"})
    assert dev_steps == [1, 2]
    assert "corrupted before training: reinit (linear-default) of layer 0 of 2" in run.log_text()
    assert store.get(data["grid_id"]).config["init"] == "linear-default"
    # probes: CKA per hidden state (embeddings + 2 layers) and drift per group
    probes = run.artifact("recovery")
    assert list(probes["layer_names"]) == ["embeddings", "layer 0", "layer 1"]
    assert probes["cka"].shape == (3,) and np.all((probes["cka"] > -1e-6) & (probes["cka"] <= 1 + 1e-6))
    assert probes["cka"][0] == pytest.approx(1.0, abs=1e-3)  # embeddings untouched and barely trained
    assert list(probes["drift_groups"]) == ["embeddings", "layer 0", "layer 1", "head"]
    assert np.all(probes["drift"] > 0)
    clean_probes = store.get(rows["clean"]["run_id"]).artifact("recovery")
    assert np.allclose(clean_probes["cka"], 1.0)


def test_cli_refuses_k_larger_than_the_model(run_home, capsys):
    from engine.__main__ import main

    assert main(["recover", "--positions", "top", "--layers", "3", *TINY]) == 2
    assert "k=3 is larger than the number of layers" in capsys.readouterr().err


def test_cancelling_a_grid_halfway_keeps_finished_runs_and_their_curves(run_home):
    from engine.execution import jobs
    from engine.recovery.grid import grid_config
    from engine.recovery.views import load_grid
    from engine.store.runs import RunStore

    store = RunStore(run_home)
    spec = GridSpec(model="tiny", positions=["bottom", "top"], levels=[1], seeds=[0], train_size=32, epochs=1,
                    batch_size=16, eval_every=1, dev_size=32)
    grid = store.create(grid_config(spec), kind="recover")
    state = {"stop": False}

    def progress(step: int, total: int, loss: float) -> None:
        if step >= 2 + 1:  # one step into the second cell (2 steps per cell)
            state["stop"] = True

    results = jobs.execute(store, grid, lambda: state["stop"], progress)
    assert results["status"] == "cancelled" and grid.status["status"] == "cancelled"
    view = load_grid(store, grid.id)
    assert [c["status"] for c in view.cells] == ["done", "cancelled", "not run"]
    clean, cancelled = view.cells[0]["run_id"], view.cells[1]["run_id"]
    assert store.get(clean).has_model() and view.curves[clean][0] == [1, 2]
    assert view.curves[cancelled][0] == [1]          # the curve up to the cancel is kept
    assert [r["status"] for r in view.rows] == ["done", "cancelled"]
    assert view.summary and view.summary[0]["label"] == "clean"


def test_heatmap_table_and_bottom_versus_top_verdicts():
    from engine.recovery.views import bottom_vs_top, heatmap_table

    def entry(label, position, k, ratio, emb=False):
        return {"label": label, "position": position, "layers": k, "embeddings": emb, "seeds": 2,
                "recovery_ratio_mean": ratio, "recovery_ratio_std": 0.01}

    summary = [entry("clean", "clean", 0, 1.0), entry("bottom-1", "bottom", 1, 0.90),
               entry("bottom-3", "bottom", 3, 0.70), entry("top-1", "top", 1, 0.95), entry("top-3", "top", 3, 0.65),
               entry("embeddings", "embeddings", 0, 0.8, True)]
    table = heatmap_table(summary, "recovery_ratio")
    assert table["rows"] == ["bottom", "top", "embeddings"] and table["levels"] == [0, 1, 3]
    assert table["values"] == [[None, 0.90, 0.70], [None, 0.95, 0.65], [0.8, None, None]]
    verdicts = bottom_vs_top(summary)
    assert [(v["k"], v["worse"]) for v in verdicts] == [(1, "bottom"), (3, "top")]
    assert verdicts[0]["difference"] == pytest.approx(0.05)
