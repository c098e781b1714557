"""Derived runs (recovery-grid cells, runs on extra data, runs that did not learn) are never a page's default
pick and always say what they are, while a plain learned run is preselected."""
from __future__ import annotations

import shutil
import time

from apptest_util import no_exception, page, texts

from app.formatting import derived_marks
from engine.store.runs import RunStore, read_json, write_json

SST2_DEV_CHANCE = 444 / 872
CORRUPTION = {"layers": [5], "embeddings": False, "kind": "reinit", "init": "kaiming-normal", "seed": 0}


def copied_run(store: RunStore, trained, age: float, dev: float, **config) -> str:
    """A copy of the trained tiny run under a new id with `config` changes and a dev accuracy of `dev` (chance
    0.509), `age` seconds old: cheap, and its model still loads."""
    run = store.create({**trained.config, **config}, parent=config.get("parent"))
    for item in trained.dir.iterdir():
        if item.name not in ("config.json", "status.json"):
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, run.dir / item.name)
    results = read_json(run.dir / "results.json")
    write_json(run.dir / "results.json", {**results, "dev_accuracy": dev, "chance_accuracy": SST2_DEV_CHANCE,
                                          "learned": dev - SST2_DEV_CHANCE >= 0.1,
                                          "n_train": results.get("n_train", 64) + (120 if "extra_data" in config
                                                                                     else 0)})
    run.set_status("done", created=time.time() - age, finished=time.time() - age)
    store.update_index(run)
    return run.id


def derived_store(tiny_run, run_home) -> dict[str, str]:
    """One plain learned run (the oldest, scoring lowest) beside newer, higher-scoring derived ones."""
    _, trained = tiny_run
    store = RunStore(run_home)
    grid = store.create({"dataset": "sst2", "model": "tiny"}, kind="recover")
    grid.set_status("done")
    store.update_index(grid)
    return {
        "plain": copied_run(store, trained, 400, 0.80),
        "corrupted": copied_run(store, trained, 300, 0.95, parent=grid.id, corruption=CORRUPTION, train_size=64,
                                recovery={"position": "top", "k": 1, "label": "top-1", "seed": 0, "grid": grid.id}),
        "extra": copied_run(store, trained, 200, 0.93, extra_data="/somewhere/failures.csv", train_size=64),
        "stuck": copied_run(store, trained, 100, 0.52),
        "uegr-stuck": copied_run(store, trained, 50, 0.52, method="uegr"),   # a method page's only run
    }


def test_derived_marks_say_what_a_run_is():
    healed = {"corruption": CORRUPTION, "recovery": {"label": "top-1"}, "train_size": 2000, "epochs": 2}
    assert derived_marks(healed) == ["top-1 corrupted (reinit layer 5), healed 2,000 x 2"]
    assert derived_marks({"recovery": {"label": "clean"}, "parent": "g", "train_size": 2000, "epochs": 2}) == \
        ["clean baseline of a recovery grid, 2,000 x 2"]
    assert derived_marks({"extra_data": "/x/f.csv", "train_size": 100}, {"n_train": 130}) == \
        ["trained on +30 extra examples"]
    assert derived_marks({"extra_data": "/x/f.csv"}, {}) == ["trained on extra examples (f.csv)"]
    assert derived_marks({"method": "vanilla", "train_size": 2000, "epochs": 2}) == []


def labelled(options, run_id: str) -> str:
    return next(o for o in options if o.endswith(run_id) or o.endswith(run_id[-4:]))


def test_no_page_defaults_to_a_derived_run_and_each_says_what_it_is(tiny_run, run_home):
    ids = derived_store(tiny_run, run_home)

    play = no_exception(page("playground.py").run())
    picker = play.selectbox(key="pg-run-a")
    assert picker.value == ids["plain"]
    assert "top-1 corrupted (reinit layer 5), healed 64 x 1" in labelled(picker.options, ids["corrupted"])
    assert "trained on +120 extra examples" in labelled(picker.options, ids["extra"])
    assert "did not learn (chance 0.509)" in labelled(picker.options, ids["stuck"])
    assert not any(mark in labelled(picker.options, ids["plain"]) for mark in ("corrupted", "extra", "did not"))

    linked = page("playground.py")
    linked.query_params["run"] = ids["corrupted"]     # a person may still choose a derived run: by a link
    assert no_exception(linked.run()).selectbox(key="pg-run-a").value == ids["corrupted"]

    ode = no_exception(page("ode_stability.py").run())
    assert ode.multiselect(key="ode-runs").value == [ids["plain"]]
    assert ode.selectbox(key="ode-live-a").value == ids["plain"]
    bare = page("ode_stability.py")
    bare.session_state["ode-runs"] = []                # the live tab's own default, with nothing chosen above
    assert no_exception(bare.run()).selectbox(key="ode-live-a").value == ids["plain"]
    live = ode.selectbox(key="ode-live-a").options
    assert "top-1 corrupted (reinit layer 5)" in labelled(live, ids["corrupted"])
    assert "trained on +120 extra examples" in labelled(live, ids["extra"])
    assert "did not learn" in labelled(live, ids["stuck"])

    home = no_exception(page("home.py").run())
    shown = texts(home, "markdown")
    assert any("healed 64 x 1" in m for m in shown) and any("+120 extra examples" in m for m in shown)

    uegr = no_exception(page("uegr.py").run())
    assert uegr.selectbox(key="uegr-run").value is None
    assert "did not learn" in labelled(uegr.selectbox(key="uegr-run").options, ids["uegr-stuck"])

    runs = no_exception(page("runs.py").run())
    assert runs.selectbox(key="runs-detail").value is None   # the Runs page preselects only what a link names
    assert "top-1 corrupted" in labelled(runs.selectbox(key="runs-detail").options, ids["corrupted"])


def test_behaviour_columns_say_what_a_derived_run_is(tiny_run, run_home):
    from app.behaviour.panels import _tag

    ids = derived_store(tiny_run, run_home)
    rows = {row["id"]: row for row in RunStore(run_home).list()}
    assert "top-1 corrupted (reinit layer 5), healed 64 x 1" in _tag(rows[ids["corrupted"]])
    assert "trained on +120 extra examples" in _tag(rows[ids["extra"]])
    assert not any(mark in _tag(rows[ids["plain"]]) for mark in ("corrupted", "extra"))
