"""The Corruption & recovery page through AppTest: a tiny grid recorded in a temporary store is shown with all
its charts and its table; bad grids get clear messages; a grid is queued and cancelled from the page."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from apptest_util import chart_titles, no_exception, page, read_as

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for one script run: the first run imports torch and transformers


@pytest.fixture(scope="module")
def grid_home(tmp_path_factory) -> tuple[Path, str]:
    """One finished tiny grid (clean, bottom-1, top-1; seed 0), recorded by the real job."""
    from engine.execution import jobs
    from engine.recovery.grid import GridSpec, grid_config
    from engine.store.runs import RunStore

    home = tmp_path_factory.mktemp("recovery_runs")
    store = RunStore(home)
    spec = GridSpec(model="tiny", positions=["bottom", "top"], levels=[1], seeds=[0], train_size=32, epochs=1,
                    batch_size=16, eval_every=1, dev_size=32)
    grid = store.create(grid_config(spec), kind="recover")
    results = jobs.execute(store, grid, lambda: False)
    assert results["status"] == "done", grid.log_text()
    return home, grid.id


@pytest.mark.slow
def test_page_shows_every_view_of_a_recorded_grid(grid_home, monkeypatch):
    home, grid_id = grid_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("recovery.py").run())
    assert at.selectbox(key="rec-grid").value == grid_id
    titles = chart_titles(at)
    assert titles[0] == "Recovery curves"
    assert any("by position and level" in t for t in titles)
    assert any("linear CKA" in t for t in titles) and any("Weight drift" in t for t in titles)
    assert any("AdvGLUE" in t for t in titles)
    captions = [c.value for c in at.caption if c.value.startswith("How to read it")]
    assert len(captions) == 5
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [t["name"] for t in curves] == ["bottom-1", "top-1", "clean"]
    assert curves[-1]["line"]["dash"] == "dash" and curves[0]["x"] == [1, 2]
    table = at.dataframe[-1].value
    assert list(table["group"]) == ["clean", "bottom-1", "top-1"]
    assert "recovery ratio (chance-corrected)" in table.columns and "final accuracy" in table.columns
    assert len(at.get("download_button")) == 2
    # the tiny random model stays near chance in 2 steps: the page says the ratios mean nothing, gives no verdict
    # and never concludes as the paper does
    assert any("did not learn the task" in w.value for w in at.warning)
    assert any(m.value == "**Healing claim on this grid: inconclusive**" for m in at.markdown)
    assert not any("as the paper reports" in m.value for m in at.markdown)
    # chance lines: the dev set's majority-class rate on the curves, and AdvGLUE-SST2's on its bars
    assert chance_lines(at, 0) == pytest.approx([444 / 872])
    adv = next(i for i, t in enumerate(titles) if "AdvGLUE" in t)
    assert chance_lines(at, adv) == pytest.approx([444 / 872, 76 / 148])

    at.radio(key="rec-heat-metric").set_value("final_accuracy").run()
    assert any(t.startswith("Final dev accuracy by position") for t in chart_titles(no_exception(at)))
    at.toggle(key="rec-drift-relative").set_value(False).run()
    assert no_exception(at).get("plotly_chart")


def test_the_overview_shows_each_cells_node_and_state(grid_home, tmp_path, monkeypatch):
    """From the grid's recorded `cell_states`: the local job's (this machine, finished), then a cluster's (a node,
    and "retried" for a cell whose task was lost once)."""
    from engine.store.runs import Run

    home = tmp_path / "runs"
    shutil.copytree(grid_home[0], home)
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("recovery.py").run())
    runs = at.dataframe[0].value
    assert list(runs["node"]) == ["this machine"] * 3 and list(runs["state"]) == ["finished"] * 3
    grid = Run(home / grid_home[1])
    states = grid.status["cell_states"]
    states[1].update(node="127.0.0.1 (a1b2c3)", retried=True)
    states[2].update(node=None, state="retrying", retried=True)
    grid.set_status(cell_states=states)
    runs = no_exception(at.run()).dataframe[0].value
    assert list(runs["node"]) == ["this machine", "127.0.0.1 (a1b2c3)", ""]
    assert list(runs["state"]) == ["finished", "finished (retried)", "retrying (retried)"]


def chance_lines(at, index: int) -> list[float]:
    """The heights of the chance lines (dash-dot or dotted horizontal lines) of the page's `index`-th chart."""
    layout = json.loads(at.get("plotly_chart")[index].proto.spec)["layout"]
    return [shape["y0"] for shape in layout.get("shapes", []) if shape["line"].get("dash") in ("dashdot", "dot")
            and shape["y0"] == shape["y1"] and shape["line"].get("color") != "gray"]


@pytest.fixture
def synthetic_grids(run_home) -> dict[str, str]:
    """Two grids written by hand (3 seeds, k = 1..3): one whose numbers support the claim, one whose clean
    runs stayed at chance."""
    from recovery_util import fake_grid
    from test_healing import BOTTOM, TOP, accuracy_of

    from engine.store.runs import RunStore

    store = RunStore(run_home)
    at_chance = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}, {0: 0.52, 1: 0.51, 2: 0.55}),
                          seeds=[0, 1, 2])
    learned = fake_grid(store, accuracy_of({"bottom": BOTTOM, "top": TOP}), seeds=[0, 1, 2])
    return {"learned": learned.id, "at chance": at_chance.id}


def test_the_claim_panel_concludes_from_the_per_seed_verdict(synthetic_grids):
    at = no_exception(page("recovery.py").run())
    assert at.selectbox(key="rec-grid").value == synthetic_grids["learned"]
    overview = " ".join(m.value for m in at.markdown)
    assert "reinit (kaiming-normal weights) corruption of bottom and top layers, k = 1, 2, 3; seeds 0, 1, 2" in overview
    assert "2,000 training examples x 2 epoch(s) at learning rate 0.0002, batch 32" in overview
    assert any(m.value == "**Healing claim on this grid: supported**" for m in at.markdown)
    assert any("recovered less than top-layer, as the paper reports" in m.value for m in at.markdown)
    assert not at.warning
    table = at.dataframe[-1].value.set_index("group")
    from test_healing import BOTTOM

    ratios = [BOTTOM[s][0] for s in range(3)]
    assert table.loc["bottom-1", "recovery ratio (chance-corrected)"] == (f"{np.mean(ratios):.3f} ± "
                                                                          f"{np.std(ratios, ddof=1):.3f}")
    assert chance_lines(at, 0) == pytest.approx([444 / 872])

    at.selectbox(key="rec-grid").set_value(synthetic_grids["at chance"]).run()
    assert sum("did not learn the task" in w.value for w in no_exception(at).warning) == 3
    assert any(m.value == "**Healing claim on this grid: inconclusive**" for m in at.markdown)
    assert not any("as the paper reports" in m.value for m in at.markdown)
    assert any("does not settle whether bottom-layer corruption hurts more" in m.value for m in at.markdown)


def test_a_clean_baseline_that_did_not_learn_keeps_the_conclusion_from_agreeing_with_the_paper(run_home):
    """Seeds 0..2 learned and support the claim; seed 3's clean baseline stayed at chance and is left out. The page
    warns about it, so its conclusion speaks of the seeds that learned and claims no agreement with the paper."""
    from recovery_util import fake_grid
    from test_healing import BOTTOM, CLEAN, TOP, accuracy_of

    from engine.store.runs import RunStore

    fake_grid(RunStore(run_home), accuracy_of({"bottom": BOTTOM, "top": TOP}, {**CLEAN, 3: 0.52}), seeds=[0, 1, 2, 3])
    at = no_exception(page("recovery.py").run())
    assert sum("did not learn the task" in w.value for w in at.warning) == 1
    assert any(m.value == "**Healing claim on this grid: supported**" for m in at.markdown)
    assert not any("as the paper reports" in m.value for m in at.markdown)
    conclusion = [m.value for m in at.markdown if m.value.startswith("Bottom or top:")]
    assert conclusion == ["Bottom or top: bottom-layer corruption recovered less than top-layer on the 3 seeds whose "
                          "clean baseline learned."]


@pytest.mark.parametrize("changes, message", [
    ({}, "k=3 is larger than the number of layers: the model has 2 layers"),
    ({"rec-levels": "1", "rec-positions": []}, "the grid is empty"),
    ({"rec-levels": "1", "rec-seeds": ""}, "give at least one seed"),
    ({"rec-levels": "1", "rec-seeds": "0, x"}, "Seeds takes whole numbers"),
    ({"rec-levels": "1", "rec-kind": "noise", "rec-scale": 0.0}, "noise scale must be > 0"),
    ({"rec-levels": "1", "rec-kind": "zero", "rec-fraction": 1.5}, "must be in [0, 1]"),
    ({"rec-levels": "1", "rec-positions": ["custom"]}, "custom position needs at least one layer"),
])
def test_bad_grids_get_a_clear_message_and_cannot_be_queued(run_home, changes, message):
    at = no_exception(page("recovery.py").run())
    assert any("No recovery grids yet" in i.value for i in at.info)
    at.radio(key="rec-model").set_value("tiny").run()
    for key, value in changes.items():
        if key in ("rec-kind",):
            at.radio(key=key).set_value(value).run()
        elif key == "rec-positions":
            at.multiselect(key=key).set_value(value).run()
        elif key in ("rec-scale", "rec-fraction"):
            at.number_input(key=key).set_value(value).run()
        else:
            at.text_input(key=key).set_value(value).run()
    errors = " ".join(read_as(e.value) for e in no_exception(at).error)
    assert message in errors
    assert at.button(key="rec-queue").disabled


def test_the_corruption_choice_says_where_the_recipe_comes_from(run_home):
    at = no_exception(page("recovery.py").run())
    kind = at.radio(key="rec-kind")
    assert "RobustLab's reconstruction after a secondary summary" in kind.options[0]
    assert "own recipe was not available" in kind.help
    assert "nn.Linear's default" in " ".join(at.radio(key="rec-init").options)
    kind.set_value("noise").run()
    assert not [r for r in no_exception(at).radio if r.key == "rec-init"]     # re-initialisation only


def test_a_valid_grid_says_how_many_runs_it_is(run_home):
    at = no_exception(page("recovery.py").run())
    at.radio(key="rec-model").set_value("tiny").run()
    at.text_input(key="rec-levels").set_value("1, 2").run()
    at.text_input(key="rec-seeds").set_value("0, 1").run()
    assert not no_exception(at).error
    assert any("10 fine-tuning runs: 2 clean baselines and 8 corrupted" in i.value for i in at.info)
    assert not at.button(key="rec-queue").disabled


@pytest.mark.slow
def test_queue_a_grid_from_the_page_and_cancel_it(run_home):
    from engine.store.runs import ACTIVE, RunStore, pid_alive

    at = no_exception(page("recovery.py").run())
    at.radio(key="rec-model").set_value("tiny").run()
    at.multiselect(key="rec-positions").set_value(["bottom"]).run()
    at.text_input(key="rec-levels").set_value("1").run()
    at.number_input(key="rec-train").set_value(64).run()
    at.number_input(key="rec-batch").set_value(16).run()
    at.number_input(key="rec-dev").set_value(16).run()
    at.radio(key="rec-init").set_value("linear-default").run()
    at.button(key="rec-queue").click().run()
    assert any("Queued grid" in s.value for s in no_exception(at).success)
    store = RunStore(run_home)
    (row,) = store.list(kind="recover")
    grid = store.get(row["id"])
    assert [c["label"] for c in grid.config["cells"]] == ["clean", "bottom-1"]
    assert grid.config["init"] == "linear-default"
    deadline = time.time() + 240
    while grid.status.get("status") == "queued" and time.time() < deadline:
        time.sleep(0.5)          # the worker installs its cancel handler before it reports running
    assert grid.status.get("status") == "running", grid.status
    at.run()
    at.button(key=f"rec-cancel-{grid.id}").click().run()
    assert any("Cancel requested" in i.value for i in no_exception(at).info)
    while grid.status.get("status") in ACTIVE and time.time() < deadline:
        time.sleep(0.5)
    assert grid.status.get("status") == "cancelled", grid.log_text()
    while pid_alive(grid.status.get("pid")) and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    assert any("This grid was cancelled" in w.value for w in no_exception(at).warning)
