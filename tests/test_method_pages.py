"""The ROSE, UEGR and Match-Tuning pages, driven through AppTest against tiny runs recorded in the
test's own run store, and with an empty store (they must say how to make a run)."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest
from apptest_util import no_exception, page
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90  # seconds for one script run: the first run of a page imports torch and transformers
PAGES = {"rose.py": "rose-ensemble", "uegr.py": "uegr", "match_tuning.py": "match-tuning"}


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(data) -> np.ndarray:
    """A plotly array from the chart spec: a list, or the {"dtype", "bdata", "shape"} binary form."""
    if isinstance(data, dict) and "bdata" in data:
        flat = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        return flat.reshape([int(n) for n in str(data["shape"]).split(",")]) if "shape" in data else flat
    return np.asarray(data)


def texts(at: AppTest, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def opened(name: str, key: str, run_id: str) -> AppTest:
    """A method page on a run picked by hand: the tiny runs stay at chance, so none is a default pick."""
    at = page(name)
    at.session_state[key] = run_id
    return no_exception(at.run())


@pytest.fixture(scope="module")
def method_runs(tmp_path_factory):
    """One finished tiny run of each page's method plus the vanilla twin ROSE compares its drift with."""
    from engine.execution.jobs import execute
    from engine.store.runs import RunStore
    from engine.training.config import TrainConfig

    home = tmp_path_factory.mktemp("method_runs")
    store = RunStore(home)
    ids = {}
    for method in ("vanilla", "rose-ensemble", "uegr", "match-tuning"):
        config = TrainConfig(model="tiny", method=method, train_size=48, batch_size=16, epochs=1, dev_size=32,
                             record_every=1)
        run = store.create(config.to_dict())
        assert execute(store, run, lambda: False)["status"] == "done", run.log_text()
        ids[method] = run.id
    saved = os.environ.get("ROBUSTLAB_HOME")
    os.environ["ROBUSTLAB_HOME"] = str(home)
    yield ids
    if saved is None:
        os.environ.pop("ROBUSTLAB_HOME", None)
    else:
        os.environ["ROBUSTLAB_HOME"] = saved


@pytest.mark.parametrize("name, method", list(PAGES.items()))
def test_page_without_a_run_says_how_to_make_one(run_home, name, method):
    at = no_exception(page(name).run())
    assert f"no run of `{method}`" in texts(at, "info")
    assert f"python -m engine train --method {method}" in texts(at, "code")
    assert "[Open the Train page](/train)" in texts(at, "markdown")   # page_link's form when a page runs alone


@pytest.mark.slow
def test_rose_page_shows_masks_risks_shares_and_drift_against_vanilla(method_runs):
    at = opened("rose.py", "rose-run", method_runs["rose-ensemble"])
    assert at.selectbox(key="rose-run").value == method_runs["rose-ensemble"]
    figures = charts(at)
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert "Share of each layer's 8 weight tensors updated" in titles
    assert "Share of steps each tensor was updated" in titles
    assert any(t.startswith("First-order risk") for t in titles)
    assert any(t.startswith("Second-order risk") for t in titles)
    assert "Soft mask: share of tensors at 0, 0.5 and 1" in titles
    drift = figures[titles.index("Cumulative weight drift per layer")]
    assert any(trace["name"].startswith("vanilla") for trace in drift["data"])
    final = figures[titles.index("Drift at the end of training")]
    assert [trace["name"] for trace in final["data"]] == ["rose-ensemble", "vanilla"]
    heat = figures[titles.index("Share of each layer's 8 weight tensors updated")]["data"][0]
    assert values(heat["z"]).shape == (2, 3) and values(heat["x"]).tolist() == [1, 2, 3]   # 2 layers x 3 steps
    at.select_slider(key="rose-step").set_value(1).run()                        # no momentum at step 1
    assert "Adam has no momentum before the first update" in texts(no_exception(at), "info")


def test_uegr_page_shows_saliency_selection_and_loss_terms(method_runs):
    at = opened("uegr.py", "uegr-run", method_runs["uegr"])
    figures = charts(at)
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert "Saliency of the encoder's weights at step 3 (sampled elements)" in titles
    assert {"Share of each layer's weights selected", "Share of each kind of weight selected",
            "Share of the encoder's weights selected and moved",
            "Clean loss, adversarial loss and sub-model disagreement"} <= set(titles)
    hist = figures[titles.index("Saliency of the encoder's weights at step 3 (sampled elements)")]
    assert hist["layout"]["xaxis"]["title"]["text"] == "log10 saliency |θ·g|"    # the default, taylor
    moved = figures[titles.index("Share of the encoder's weights selected and moved")]
    selected, actual = (values(trace["y"]) for trace in moved["data"])
    assert np.all(actual <= selected + 1e-6)
    at.select_slider(key="uegr-step").set_value(1).run()
    titles = [f["layout"]["title"]["text"] for f in charts(no_exception(at))]
    assert "Saliency of the encoder's weights at step 1 (sampled elements)" in titles


def test_uegr_input_gradient_chart_overlays_a_vanilla_run(method_runs):
    at = opened("uegr.py", "uegr-run", method_runs["uegr"])
    assert at.selectbox(key="uegr-vanilla").value == method_runs["vanilla"]      # trained alike: first
    chart = next(f for f in charts(at) if f["layout"]["title"]["text"] == "Input-gradient norm at each dev evaluation")
    assert [t["name"] for t in chart["data"]] == [f"uegr · {method_runs['uegr']}",
                                                   f"vanilla · {method_runs['vanilla']}"]
    assert all(len(values(t["y"])) == 3 and np.all(values(t["y"]) > 0) for t in chart["data"])   # 2 evals + final
    at.selectbox(key="uegr-vanilla").set_value("none").run()
    chart = next(f for f in charts(no_exception(at)) if f["layout"]["title"]["text"].startswith("Input-gradient"))
    assert len(chart["data"]) == 1


def test_uegr_input_gradient_chart_says_when_there_is_no_vanilla_run(method_runs, monkeypatch):
    monkeypatch.setattr("app.methods.uegr.vanilla_runs_with", lambda *_args: [])
    at = opened("uegr.py", "uegr-run", method_runs["uegr"])
    assert "No finished vanilla run has recorded the input-gradient norm" in texts(at, "info")
    assert "--method vanilla" in texts(at, "code")


def test_match_page_animates_the_matrix_and_reports_both_modes(method_runs):
    at = opened("match_tuning.py", "match-run", method_runs["match-tuning"])
    matrix = charts(at)[0]
    assert [f["name"] for f in matrix["frames"]] == ["0", "1", "2", "3"]      # step 0 plus 3 recorded steps
    assert values(matrix["frames"][0]["data"][0]["z"]).shape == (16, 16)     # the 16-example probe batch
    assert np.allclose(values(matrix["frames"][-1]["data"][0]["z"]).sum(1), 1, atol=1e-4)
    assert [b["label"] for b in matrix["layout"]["updatemenus"][0]["buttons"]][0].endswith("play")
    labels = [m.label for m in at.metric]
    assert "Dev, matching bypassed" in labels and "Dev, in-batch matching" in labels
    assert "How to read it" in texts(at, "caption")


def test_a_page_follows_a_run_while_it_trains(method_runs):
    """A run still training: the job panel (with Cancel) and the method's charts, redrawn live."""
    import shutil

    from engine.store.runs import RunStore

    store = RunStore(os.environ["ROBUSTLAB_HOME"])
    done = store.get(method_runs["uegr"])
    live = store.create(done.config)
    shutil.copytree(done.dir / "artifacts", live.dir / "artifacts")
    live.set_status("running", pid=os.getpid(), step=2, total_steps=3, started=0)
    store.update_index(live)
    try:
        at = no_exception(page("uegr.py").run())
        assert at.selectbox(key="uegr-run").value == live.id
        assert any(b.label == "Cancel run" for b in at.button)
        titles = [f["layout"]["title"]["text"] for f in charts(at)]
        assert "Share of the encoder's weights selected and moved" in titles
    finally:
        live.set_status("cancelled")
        store.update_index(live)
        store.delete(live.id)
