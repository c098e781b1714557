"""The pages with a damaged run in the store (beside a good one): the Runs page lists it as damaged with its reason
and shows its details without curves; every other page draws, and the Playground never offers it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apptest_util import no_exception, page, read_as, texts

from engine.store.runs import RunStore


@pytest.fixture(scope="module")
def damaged_store(tiny_run, tmp_path_factory) -> tuple[Path, str, str]:
    """Copies of the tiny run (which must stay as it is): one good, one whose status.json holds a list and whose
    metrics are binary. The store indexes both folders by itself: nothing else records them."""
    home = tmp_path_factory.mktemp("damaged") / "runs"
    source = tiny_run[1].dir
    good, damaged = home / source.name, home / f"{source.name[:-4]}dmgd"
    shutil.copytree(source, good)
    shutil.copytree(source, damaged)
    (damaged / "status.json").write_text("[]")
    (damaged / "metrics.jsonl").write_bytes(bytes(range(128, 256)) + b"\n")
    other = home / f"{source.name[:-4]}dmg2"     # its config and results unreadable, an artifact garbage
    shutil.copytree(source, other)
    (other / "config.json").write_text("[1]")
    (other / "results.json").write_text('{"dev_accuracy": "high"}')
    (other / "artifacts" / "drift.npz").write_bytes(b"PK garbage")
    (other / "log.txt").write_bytes(b"\xff\xfe binary log")
    rows = {row["id"]: row for row in RunStore(home).list()}
    assert rows[damaged.name]["status"] == rows[other.name]["status"] == "damaged"
    assert rows[good.name]["status"] == "done"
    return home, good.name, damaged.name


def test_the_runs_page_lists_and_shows_a_damaged_run(damaged_store, monkeypatch):
    home, good, damaged = damaged_store
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("runs.py")
    at.query_params["run"] = damaged
    no_exception(at.run())
    table = at.dataframe[0].value
    status = dict(zip(table["id"], table["status"]))
    assert status[good] == "done"
    assert status[damaged].startswith("damaged: status.json holds a list") and "metrics.jsonl" in status[damaged]
    errors = [read_as(e) for e in texts(at, "error")]
    assert any("Damaged: status.json holds a list" in e for e in errors), errors
    assert not at.get("plotly_chart")          # no curves drawn from files that cannot be trusted
    assert at.button(key="runs-delete") and at.get("download_button")
    at = page("runs.py")
    at.query_params["run"] = f"{damaged[:-4]}dmg2"
    no_exception(at.run())
    assert any("Damaged: config.json holds a list" in read_as(e) for e in texts(at, "error"))


@pytest.mark.parametrize("name", ["home.py", "train.py", "behaviour.py", "benchmark.py", "ode_stability.py",
                                  "recovery.py", "rose.py", "uegr.py", "match_tuning.py"])
def test_every_other_page_draws_beside_damaged_runs(damaged_store, monkeypatch, name):
    monkeypatch.setenv("ROBUSTLAB_HOME", str(damaged_store[0]))
    no_exception(page(name).run())


def test_the_playground_draws_and_never_offers_a_damaged_run(damaged_store, monkeypatch):
    home, good, damaged = damaged_store
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("playground.py")
    at.session_state["pg-run-a"] = good   # picked by hand: the tiny run stays at chance, never a default
    model = no_exception(at.run()).selectbox(key="pg-run-a")
    assert model.value == good and damaged not in model.options and model.options == [model.format_func(good)]
