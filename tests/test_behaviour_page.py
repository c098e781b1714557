"""The Behaviour page through AppTest, and the suite job's behaviour axis behind it: a tiny suite with
`--behaviour sentiment` stores each model's results; the page compares the methods (mean ± std over seeds), browses
and exports failing cases, opens one in the Playground, runs a test written in its editor on a run as a background
job, refuses a broken test with the line and problem, and shows hostile text escaped. The Benchmark page shows the
failure rates beside accuracy under attack."""
from __future__ import annotations

import json
import time

import pytest
from apptest_util import chart_titles, no_exception, page, read_as, texts
from benchmark_util import count_every_run

from engine.store.runs import RunStore


@pytest.fixture(scope="module")
def behaviour_home(tmp_path_factory):
    """A finished tiny suite: vanilla, seeds 0 and 1, no attack, the built-in sentiment suite on each model."""
    from engine.execution import jobs
    from engine.suite.job import SuiteSpec, suite_config

    home = tmp_path_factory.mktemp("behaviour_runs")
    store = RunStore(home)
    spec = SuiteSpec(methods=["vanilla"], seeds=[0, 1], model="tiny", train_size=32, epochs=1, recipe=None,
                     behaviour="sentiment", train={"batch_size": 16})
    suite = store.create(suite_config(spec), kind="suite")
    results = jobs.execute(store, suite, lambda: False)
    assert results["status"] == "done", suite.log_text()
    return home, suite.id


def frame_with(at, column: str):
    return next(df.value for df in at.dataframe if column in df.value.columns)


@pytest.mark.slow
def test_the_suite_job_stores_behaviour_results_per_model(behaviour_home):
    home, suite_id = behaviour_home
    store = RunStore(home)
    items = store.get(suite_id).results["items"]
    assert [i["behaviour_status"] for i in items] == ["done", "done"]
    for item in items:
        results = store.get(item["behaviour_run"]).results
        assert results["target"] == item["train_run"] and len(results["tests"]) >= 16


def test_page_compares_methods_browses_failures_and_opens_one(behaviour_home, monkeypatch):
    count_every_run(monkeypatch)   # tiny runs stay near chance; this test reads how the numbers are shown
    home, suite_id = behaviour_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-how").set_value("Whole methods of a suite").run()
    at.multiselect(key="bh-methods").set_value(["vanilla"]).run()
    no_exception(at)
    table = frame_with(at, "vanilla")
    assert len(table) >= 16 and all("±" in v for v in table["vanilla"] if v != "–")
    # CheckList counts every MFT and INV case and the DIR cases that can fail (was {"all cases", "correct originals
    # only"}: RobustLab's former rule, now the "· correct originals only" columns)
    assert set(table["counts"]) == {"all cases", "cases that can fail"}
    assert "Failure rate per capability" in chart_titles(at)
    for label in ("positive", "negative"):   # a tiny model near chance fails one of the two
        at.selectbox(key="bh-fail-test").set_value(f"{label}-adjectives").run()
        failing = [df.value for df in no_exception(at).dataframe if "expected" in df.value.columns]
        if failing:
            break
    [failing] = failing
    assert set(failing["expected"]) == {label} and (failing["prediction"] != label).all()
    export = [b for b in at.get("download_button") if b.proto.label.startswith("Export the")]
    assert export and not export[0].proto.disabled
    at.number_input(key="bh-fail-case").set_value(len(failing) - 1).run()
    assert failing["text"].iloc[-1] in texts(no_exception(at), "text")
    at.button(key="bh-open").click().run()
    assert at.session_state["pg-text"] == failing["text"].iloc[-1]
    assert at.session_state["pg-run-a"] == at.selectbox(key="bh-fail-run").value


def wait_for(store: RunStore, kind: str, count: int) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        rows = store.list(kind=kind)
        if len(rows) >= count and all(r["status"] not in ("queued", "running") for r in rows):
            return
        time.sleep(0.5)
    raise AssertionError(f"{kind} jobs still running")


@pytest.mark.slow
def test_a_test_written_in_the_editor_runs_as_a_job(tiny_run, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "runs"
    store = RunStore(home)
    source = tiny_run[1]
    run = store.create({k: v for k, v in source.config.items() if k not in ("kind", "run_id")})
    shutil.copytree(source.dir / "model", run.dir / "model")
    shutil.copy(source.dir / "results.json", run.dir / "results.json")
    run.set_status("done")
    store.update_index(run)
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("behaviour.py").run())
    at.multiselect(key="bh-runs").set_value([run.id]).run()
    at.radio(key="bh-suite-how").set_value("Write a test").run()
    no_exception(at)
    at.button(key="bh-run").click().run()
    wait_for(store, "behaviour", 1)
    at.run()
    table = frame_with(no_exception(at), "test")
    assert list(table["test"]) == ["my-test"] and list(table["cases"]) == [24]
    [job] = store.list(kind="behaviour")
    assert job["parent"] == run.id and store.get(job["id"]).results["tests"][0]["n_cases"] == 24


def test_a_broken_test_names_the_line_and_hostile_text_is_escaped(run_home):
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-suite-how").set_value("Write a test").run()
    at.text_area(key="bh-ed-lines").input("positive: The {thing} was {colour}.\nno label here").run()
    errors = [read_as(e.value) for e in no_exception(at).error]
    assert errors == ["templates, line 2: write it as label: text (got 'no label here')"]
    at.text_area(key="bh-ed-lines").input("positive: The {thing} was {colour}.").run()
    errors = [read_as(e.value) for e in no_exception(at).error]
    assert errors == ["test 1 ('my-test'): template 1 uses {colour}, which no word list defines (lists: neg, pos, "
                      "thing)"]
    hostile = "<img src=x onerror=alert(1)>[link](http://x)\u202e"
    at.text_input(key="bh-ed-name").input(hostile).run()
    at.number_input(key="bh-ed-n").set_value(10_000).run()
    shown = [e.value for e in no_exception(at).error]
    assert any("at most 2,000 cases" in s for s in shown)
    named = [s for s in shown if "img" in s]
    assert named and all("\\<img" in s and "\\[link" in s and "\u202e" not in s for s in named)   # escaped
    assert all("⟨U+202E⟩" in read_as(s) for s in named)


def test_benchmark_page_shows_failure_rates_beside_accuracy_under_attack(behaviour_home, monkeypatch):
    count_every_run(monkeypatch)
    home, suite_id = behaviour_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("benchmark.py").run())
    table = frame_with(at, "capability")
    assert table["capability"].iloc[0] == "accuracy under attack"
    assert {"Vocabulary", "Negation", "Fairness"} <= set(table["capability"])
    assert all("±" in v for v in table["vanilla"].iloc[1:] if v != "–")
    assert json.dumps(list(table.columns)) == json.dumps(["capability", "vanilla"])


@pytest.mark.slow
def test_train_on_failures_queues_a_run_on_the_data_plus_the_failing_cases(behaviour_home, monkeypatch):
    from engine.data.csv_reading import read_csv

    home, suite_id = behaviour_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    store = RunStore(home)
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-how").set_value("Whole methods of a suite").run()
    at.multiselect(key="bh-methods").set_value(["vanilla"]).run()
    original = at.selectbox(key="bh-train-run").value
    at.button(key="bh-train").click().run()
    new_id = no_exception(at).session_state["bh-trained"]
    wait_for(store, "train", 3)
    new = store.get(new_id)
    extra = read_csv(new.config["extra_data"], known_labels=["negative", "positive"])
    behaviour_run = next(r for r in store.list(kind="behaviour", parent=original, status="done"))
    failing = [c for c in store.get(behaviour_run["id"]).dir.joinpath("cases.jsonl").read_text().splitlines()
               if '"failed": true' in c]
    assert len(extra) == len(failing) > 0
    assert new.status["status"] == "done" and new.results["n_train"] == 32 + len(failing)
    own = ("extra_data", "run_id", "environment", "suite")
    assert {k: v for k, v in new.config.items() if k not in own} == {
        k: v for k, v in store.get(original).config.items() if k not in own}


def test_a_run_that_did_not_learn_is_left_out_of_every_number(behaviour_home, monkeypatch):
    """Tiny runs on 32 examples stay near chance: a model that answers one class would pass every INV test, so the
    page shows no failure rate for them and says why."""
    home, suite_id = behaviour_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-how").set_value("Whole methods of a suite").run()
    at.multiselect(key="bh-methods").set_value(["vanilla"]).run()
    no_exception(at)
    assert any("did not learn" in w.value for w in at.warning)
    assert set(frame_with(at, "vanilla")["vanilla"]) == {"–"}
