"""The ODE stability page: its test-equation maths, its figures, and the page itself under AppTest."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from apptest_util import no_exception, texts
from streamlit.testing.v1 import AppTest

from app.ode import figures as figs
from engine.probe import ode

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "ode_stability.py")
TIMEOUT = 120


# ---------------------------------------------------------------- the test equation

def test_euler_trajectories_follow_their_factors():
    t = ode.euler_trajectories(0.5, -5.0, 4)
    np.testing.assert_allclose(t["explicit"], (1 - 2.5) ** np.arange(5))
    np.testing.assert_allclose(t["implicit"], (1 + 2.5) ** -np.arange(5.0))
    assert float(t["explicit_factor"]) == pytest.approx(1.5) and float(t["implicit_factor"]) == pytest.approx(1 / 3.5)
    np.testing.assert_allclose(t["exact"][-1], np.exp(-5.0 * 2.0))


def test_implicit_is_stable_on_the_whole_left_half_plane_and_explicit_only_in_its_disc():
    g = ode.stability_grid(3.0, 121)
    z = g["re"][None, :] + 1j * g["im"][:, None]
    left = z.real < -1e-9
    assert (g["implicit"][left] < 1).all()
    # on the circle |1 + z| = 1 itself (z = -2, -1 ± i lie on the grid) the two sides differ only by rounding
    off_circle = np.abs(np.abs(1 + z) - 1) > 1e-9
    assert ((g["explicit"] <= 1) == (np.abs(1 + z) <= 1))[off_circle].all()
    assert (g["explicit"][left & (np.abs(1 + z) > 1.01)] > 1).all()


@pytest.mark.parametrize("args,needle", [((0.0, -1.0, 3), "h must be > 0"), ((0.5, -1.0, 0), "at least 1"),
                                         ((1.0, 1.0, 3), "1 - h lambda = 0")])
def test_bad_teaching_inputs_are_refused(args, needle):
    with pytest.raises(ValueError, match=needle):
        ode.euler_trajectories(*args)


def test_figures_draw_what_they_are_given():
    fig = figs.trajectory_figure(ode.euler_trajectories(0.5, complex(-1, 2), 6))
    assert len(fig.data) == 4 and len(fig.data[1].x) == 7
    fig = figs.stability_figure(ode.stability_grid(3.0, 41), complex(-1.5, 0.5))
    stars = [d for d in fig.data if d.type == "scatter"]
    assert [tuple(d.x) for d in stars] == [(-1.5,), (-1.5,)]
    probe = {"growth": [0.9, 0.8], "growth_fgm": [1.1, 1.2], "relative_growth": [0.7, 0.6],
             "relative_growth_fgm": [0.5, 0.4], "jacobian_top_sv": [1.5, 4.0], "h_lambda": [-0.5, 3.2],
             "scheme": ["implicit", "explicit"], "solver_residual": [0.01, None]}
    fig = figs.growth_figure({"a": probe})                   # scale-free unless asked
    assert [list(d.y) for d in fig.data] == [[1.0, 0.7, 0.6], [1.0, 0.5, 0.4]] and fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.title.text == "(||Δx_l|| / ||x_l||) / (||δ|| / ||x_0||)"
    fig = figs.growth_figure({"a": probe}, scale_free=False)
    assert [list(d.y) for d in fig.data] == [[1.0, 0.9, 0.8], [1.0, 1.1, 1.2]]
    assert fig.layout.yaxis.title.text == "||Δx_l|| / ||δ||" and fig.layout.title.text.endswith("absolute")
    fig = figs.amplification_figure({"a": probe})
    assert fig.layout.xaxis.range[1] >= 3.2 and fig.layout.yaxis.range[1] >= 4.0
    assert list(fig.data[-1].marker.symbol) == ["diamond", "circle"]
    assert "Rayleigh quotient" in fig.layout.xaxis.title.text and "singular vector" in fig.layout.xaxis.title.text
    rows = figs.summary_rows({"a": probe}, {"a": {"dev_accuracy": 0.8}})
    assert rows[0]["scale-free growth at last layer (FGM)"] == 0.4
    assert rows[0]["absolute growth at last layer (FGM)"] == 1.2
    assert rows[0]["solver residual (max)"] == 0.01


def test_captions_say_what_each_plot_shows_and_claim_no_damping():
    lower = "A lower line means the perturbation is a smaller part of that layer's hidden state."
    assert lower in figs.CAPTIONS["growth"]
    assert "hidden states are smaller overall" in figs.CAPTIONS["growth_absolute"]
    assert "not a measured eigenvalue" in figs.CAPTIONS["amplification"]
    assert not any("damps" in figs.CAPTIONS[k] for k in ("growth", "growth_absolute", "amplification"))


# ---------------------------------------------------------------- the page

def test_page_teaches_without_any_run(run_home):
    at = no_exception(AppTest.from_file(PAGE, default_timeout=TIMEOUT).run())
    assert "ODE stability" in texts(at, "title")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["explicit factor |1 + hλ|"] == "1.5" and metrics["implicit factor 1/|1 − hλ|"] == "0.286"
    assert len(at.get("plotly_chart")) == 2                 # trajectories and stability regions
    at.slider(key="ode-h").set_value(0.2).run()             # h lambda = -1: explicit is now stable
    metrics = {m.label: m.value for m in no_exception(at).metric}
    assert metrics["explicit factor |1 + hλ|"] == "0" and metrics["h·λ"].startswith("-1")
    at.slider(key="ode-re").set_value(2.0)
    at.slider(key="ode-h").set_value(0.5).run()
    assert any("1 - h lambda = 0" in e for e in texts(no_exception(at), "error"))   # h lambda = 1 exactly
    infos = texts(at, "info")
    assert "No trained runs yet: train one on the Train page first." in infos               # the live section
    assert any(i.startswith("No runs to choose from yet.") for i in infos)                   # the probes' picker


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A tiny vanilla and a tiny IM-BERT run in one store, plus a 'done' run whose model is missing."""
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore, write_json
    from engine.training.config import TrainConfig

    store = RunStore(tmp_path_factory.mktemp("ode_runs"))
    ids = []
    for method in ("vanilla", "im-bert"):
        config = TrainConfig(model="tiny", method=method, train_size=32, epochs=1, batch_size=16, dev_size=16,
                             record_every=1)
        run = store.create(config.to_dict())
        execute(store, run, lambda: False)
        assert run.status["status"] == "done", run.log_text()
        ids.append(run.id)
    broken = store.create(TrainConfig(model="tiny", method="ex-bert").to_dict())
    write_json(broken.dir / "results.json", {"status": "done"})
    broken.set_status("done")
    store.update_index(broken)
    return store, ids, broken.id


@pytest.mark.slow
def test_page_probes_runs_and_compares_sentences(two_runs, monkeypatch):
    store, (vanilla, im), broken = two_runs
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["ode-runs"] = [vanilla, im]
    no_exception(at.run())
    charts = at.get("plotly_chart")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts]
    assert "Perturbation growth across layers, scale-free" in titles
    assert "Where each layer sits on the amplification curves" in titles
    assert "Implicit solver residual per layer over training" in titles
    assert "How far the perturbed sentence drifts, layer by layer" in titles
    table = at.dataframe[0].value
    assert len(table) == 2 and table["scale-free growth at last layer (Gaussian)"].notna().all()
    assert table["absolute growth at last layer (Gaussian)"].notna().all()
    assert "probe" in store.get(im).artifact_names()        # stored with the run, computed once
    assert not at.error
    at.toggle(key="ode-growth-absolute").set_value(True).run()     # the absolute view, one click away
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in no_exception(at).get("plotly_chart")]
    assert "Perturbation growth across layers, absolute" in titles and not at.error

    at.text_input(key="ode-live-pert").set_value("   ").run()
    assert any("tokenises to nothing" in e for e in texts(no_exception(at), "error"))

    at.radio(key="ode-live-source").set_value("AdvGLUE-SST2 sentence with typos").run()
    no_exception(at)
    assert not at.error and any(t.key.startswith("ode-live-typo-") for t in at.text_input)

    at.multiselect(key="ode-runs").set_value([vanilla, broken]).run()
    errors = " ".join(texts(no_exception(at), "error"))
    assert "Cannot probe" in errors and "no saved model" in errors
