"""Every page opened with a sentence-pair run in the store (beside a single-sentence one): no page fails on
it, the ODE probes read it on pairs, and a panel written for single sentences says so in plain words."""
from __future__ import annotations

import json

import pytest
from apptest_util import no_exception, page, texts
from pair_run_util import copy_run

PAGES = ["home.py", "runs.py", "benchmark.py", "ode_stability.py", "rose.py", "uegr.py", "match_tuning.py",
         "recovery.py", "playground.py"]


@pytest.fixture(scope="module")
def pair_home(pair_run, tiny_run, tmp_path_factory):
    """A store holding a copy of the pair run and of the single-sentence tiny run; the pair run is the newest."""
    home = tmp_path_factory.mktemp("pages_pairs") / "runs"
    copy_run(tiny_run[1], home)
    return copy_run(pair_run[1], home)


@pytest.mark.parametrize("name", PAGES)
def test_page_opens_with_a_pair_run(pair_home, monkeypatch, name):
    store, run = pair_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    at = no_exception(page(name).run())
    assert not at.error, texts(at, "error")


def test_runs_page_lists_the_pair_run(pair_home, monkeypatch):
    store, run = pair_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    at = no_exception(page("runs.py").run())
    assert any(run.id in str(df.value.to_dict()) for df in at.dataframe)


def test_ode_probes_a_pair_run_on_pairs_and_says_why_live_sentences_leave_it_out(pair_home, monkeypatch):
    import numpy as np

    from engine.data.registry import load_dataset
    from engine.models.loading import load_tokenizer
    from engine.probe import ode

    store, run = pair_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    at = page("ode_stability.py")
    at.session_state["ode-runs"] = [run.id]
    no_exception(at.run())
    assert not at.error, texts(at, "error")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Perturbation growth across layers, scale-free" in titles
    probe = store.get(run.id).artifact("probe")
    assert np.isfinite(probe["relative_growth"]).all()
    assert ode.probe_set(run.dir) == "advglue-rte"
    inputs, _ = ode.probe_texts(run.dir, 16, 0)
    assert all(pair in load_dataset("advglue-rte").inputs for pair in inputs)      # pairs of its own task
    batch = ode.sentence_batch(load_tokenizer("tiny"), inputs[:2])
    assert int(batch["token_type_ids"].max()) == 1                                   # read with segment ids
    captions = " ".join(texts(at, "caption"))
    assert "Sentence-pair runs are not offered here" in captions
    live_models = at.selectbox(key="ode-live-a").options
    assert len(live_models) == 1                                                     # the single-sentence run


def test_benchmark_offers_the_pair_runs_own_sets_to_attack(pair_home, monkeypatch):
    store, run = pair_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    at = page("benchmark.py")
    at.session_state["bench-dataset"] = "advglue-rte"
    no_exception(at.run())
    assert at.selectbox(key="bench-attack-set").options == ["advglue-rte"]     # its task's sets, each once
