"""The Benchmark page through AppTest: a tiny suite recorded by the real job is compared and its claims judged;
an empty store, a bad suite, runs chosen by hand, a deleted run and a suite queued from the page; runs written
by hand for a run that did not learn, chance lines and the button that queues the seeds an open claim needs."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from apptest_util import chart_titles, no_exception, page
from benchmark_util import count_every_run, fake_run
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for one script run: the first run imports torch and transformers


def methods_frame(at: AppTest):
    return next(df.value for df in at.dataframe if "clean dev accuracy" in df.value.columns)


@pytest.fixture(scope="module")
def suite_home(tmp_path_factory) -> tuple[Path, str]:
    """A finished tiny suite: vanilla and rose-second, seeds 0 and 1, each attacked on 2 dev sentences."""
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.suite.job import SuiteSpec, suite_config

    home = tmp_path_factory.mktemp("bench_runs")
    store = RunStore(home)
    spec = SuiteSpec(methods=["vanilla", "rose-second"], seeds=[0, 1], model="tiny", train_size=32, epochs=1,
                     attack_n=2, train={"batch_size": 16})
    suite = store.create(suite_config(spec), kind="suite")
    results = jobs.execute(store, suite, lambda: False)
    assert results["status"] == "done", suite.log_text()
    return home, suite.id


@pytest.mark.slow
def test_page_compares_a_recorded_suite_and_judges_the_claims(suite_home, monkeypatch):
    count_every_run(monkeypatch)   # tiny runs stay near chance; these tests read how numbers are shown
    home, suite_id = suite_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("benchmark.py").run())
    assert at.selectbox(key="bench-suite").value == suite_id
    table = methods_frame(at)
    assert list(table["method"]) == ["vanilla", "rose-second"]
    assert list(table["runs"]) == [2, 2]
    assert all("±" in v for v in table["clean dev accuracy"])   # two seeds: a spread
    titles = chart_titles(at)
    assert {"clean dev accuracy", "AdvGLUE-SST2 accuracy", "attack success rate",
            "accuracy under attack"} <= set(titles)
    assert "Accuracy under attack against query budget" in titles
    markdown = " ".join(m.value for m in at.markdown)
    for paper in ("IM-BERT", "ROSE", "Match-Tuning", "UEGR", "Healing Powers"):
        assert paper in markdown
    assert "no finished im-bert runs" in markdown   # a method the suite lacks is named, not scored as 0
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Methods (CSV)", "Claims (CSV)", "Report (Markdown)", "Report (JSON)"]


def test_empty_store_and_impossible_suites_get_clear_messages(run_home):
    at = no_exception(page("benchmark.py").run())
    assert "Nothing to compare yet: choose runs above." in [i.value for i in at.info]   # no suite: runs I choose
    at.multiselect(key="bench-methods").set_value([]).run()
    assert any("at least one method" in e.value for e in at.error)
    assert at.button(key="bench-start").disabled
    at.multiselect(key="bench-methods").set_value(["vanilla"])
    at.text_input(key="bench-seeds").input("0, zero").run()
    assert any("seeds are whole numbers" in e.value for e in at.error)
    at.text_input(key="bench-seeds").input("1, 1").run()
    assert any("repeated" in e.value for e in at.error)


def test_runs_chosen_by_hand_and_missing_attacks(suite_home, monkeypatch):
    count_every_run(monkeypatch)   # tiny runs stay near chance; these tests read how numbers are shown
    home, _ = suite_home
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = page("benchmark.py")
    at.session_state["bench-source"] = "Runs I choose"
    at.run()
    at.multiselect(key="bench-whole").set_value(["vanilla"])
    at.number_input(key="bench-attack-read-n").set_value(5).run()   # no stored attack on 5 sentences
    no_exception(at)
    table = methods_frame(at)
    assert list(table["method"]) == ["vanilla"]
    assert table["attack success rate"][0] == "missing" and table["clean dev accuracy"][0] != "missing"
    assert any("lack the deepwordbug attack on 5" in w.value for w in at.warning)


def test_a_deleted_run_is_shown_as_deleted_not_as_zero(suite_home, tmp_path, monkeypatch):
    count_every_run(monkeypatch)   # tiny runs stay near chance; these tests read how numbers are shown
    from engine.store.runs import RunStore
    from engine.suite.job import suite_train_runs

    home = tmp_path / "copy"
    shutil.copytree(suite_home[0], home)
    store = RunStore(home)
    gone = suite_train_runs(store, store.get(suite_home[1]))[0]
    store.delete(gone)
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("benchmark.py").run())
    table = methods_frame(at)
    assert list(table["runs"][:2]) == [1, 2] and "(deleted runs)" in list(table["method"])
    assert "±" not in table["clean dev accuracy"][0]   # one seed left: no spread, and no zero averaged in
    assert any(gone in c.value and "deleted" in c.value for c in at.caption)


def test_reproduce_queues_a_suite_and_cancel_stops_it(run_home):
    from engine.store.runs import RunStore

    at = page("benchmark.py").run()
    at.multiselect(key="bench-methods").set_value(["vanilla"])
    at.text_input(key="bench-seeds").input("0")
    at.selectbox(key="bench-model").set_value("tiny")
    at.number_input(key="bench-train").set_value(32)
    at.number_input(key="bench-epochs").set_value(1)
    at.number_input(key="bench-attack-n").set_value(0).run()
    no_exception(at).button(key="bench-start").click().run()
    no_exception(at)
    suites = RunStore(run_home).list(kind="suite")
    assert len(suites) == 1 and at.selectbox(key="bench-suite").value == suites[0]["id"]
    from engine.execution import jobs

    jobs.cancel(RunStore(run_home), suites[0]["id"])
    deadline = time.time() + 60
    while RunStore(run_home).get(suites[0]["id"]).status["status"] in ("queued", "running"):
        assert time.time() < deadline, "the suite did not stop after cancel"
        time.sleep(0.5)


def test_a_link_with_a_suite_id_opens_that_suite(suite_home, tmp_path, monkeypatch):
    """The newest suite that has begun is shown first; the Runs page's link (?suite=ID) opens the one it names."""
    from engine.store.runs import RunStore
    from engine.suite.job import SuiteSpec, suite_config

    home = tmp_path / "copy"
    shutil.copytree(suite_home[0], home)
    waiting = RunStore(home).create(suite_config(SuiteSpec(methods=["vanilla"], seeds=[5], model="tiny",
                                                           train_size=32)), kind="suite")
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    assert no_exception(page("benchmark.py").run()).selectbox(key="bench-suite").value == suite_home[1]
    at = page("benchmark.py")
    at.query_params["suite"] = waiting.id
    assert no_exception(at.run()).selectbox(key="bench-suite").value == waiting.id


@pytest.mark.slow
def test_missing_evaluations_are_computed_once_on_request(suite_home, tmp_path, monkeypatch):
    """A run without its stored evaluation reads *missing* (never 0) until the button computes just that; another
    recipe than the suite's shows as a missing attack to queue."""
    count_every_run(monkeypatch)   # tiny runs stay near chance; these tests read how numbers are shown
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.suite.job import suite_train_runs

    home = tmp_path / "copy"
    shutil.copytree(suite_home[0], home)
    store = RunStore(home)
    first = suite_train_runs(store, store.get(suite_home[1]))[0]
    (store.get(first).dir / "eval.json").unlink()
    monkeypatch.setenv("ROBUSTLAB_HOME", str(home))
    at = no_exception(page("benchmark.py").run())
    assert any("1 run(s) lack a stored dev or AdvGLUE evaluation" in w.value for w in at.warning)
    assert "±" not in methods_frame(at)["clean dev accuracy"][0]   # vanilla: one seed left in the mean
    at.button(key="bench-fill").click().run()
    no_exception(at)
    assert {"sst2-dev", "advglue-sst2"} <= set(json.loads((store.get(first).dir / "eval.json").read_text()))
    assert not any("lack a stored" in w.value for w in at.warning)
    assert "±" in methods_frame(at)["clean dev accuracy"][0]
    at.selectbox(key=f"bench-recipe-read-{suite_home[1]}").set_value("pruthi").run()
    assert any("4 run(s) lack the pruthi attack" in w.value for w in no_exception(at).warning)
    at.button(key="bench-fill").click().run()   # queues 4 attack jobs; a second look must not queue them again
    queued = store.list(kind="attack", status="queued") + store.list(kind="attack", status="running")
    assert len(queued) == 4
    at.run()
    assert any("4 attack(s) queued or running" in i.value for i in no_exception(at).info)
    assert not any("lack the pruthi attack" in w.value for w in at.warning)
    for row in queued:
        jobs.cancel(store, row["id"])


def chart_spec(at: AppTest, title: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"]["title"]["text"] == title)


def hand_written_runs(home: Path) -> dict[str, list[str]]:
    """Vanilla and UEGR, seeds 0-2, all learned, plus one UEGR run (seed 3) that did not learn."""
    from engine.store.runs import RunStore

    store = RunStore(home)
    ids = {"vanilla": [fake_run(store, "vanilla", s, d, a, lr=2e-4).id
                       for s, d, a in ((0, 0.80, 0.40), (1, 0.86, 0.42), (2, 0.83, 0.41))],
           "uegr": [fake_run(store, "uegr", s, d, a, lr=2e-4).id
                    for s, d, a in ((0, 0.81, 0.43), (1, 0.82, 0.45), (2, 0.815, 0.44))]}
    ids["not learned"] = [fake_run(store, "uegr", 3, 0.52, 0.70, lr=2e-4).id]
    return ids


def open_runs(methods: list[str]) -> AppTest:
    at = page("benchmark.py")
    at.session_state["bench-source"] = "Runs I choose"
    at.run()
    at.multiselect(key="bench-whole").set_value(methods)
    at.selectbox(key="bench-recipe-read").set_value("none").run()
    return no_exception(at)


def test_claims_tab_leaves_out_a_run_that_did_not_learn(run_home):
    """The run is named with its reason on the Claims tab, counted nowhere (3 UEGR runs, not 4), and its AdvGLUE
    0.70 pulls no mean up; the charts draw the chance lines."""
    ids = hand_written_runs(run_home)
    at = open_runs(["vanilla", "uegr"])
    dropped = ids["not learned"][0]
    claims_tab = next(t for t in at.tabs if t.label == "Claims")
    warnings = [w.value for w in claims_tab.warning]
    assert any(dropped in w and "did not learn" in w and "within 10 points of chance" in w for w in warnings)
    table = methods_frame(at)
    assert list(table["method"]) == ["vanilla", "uegr"] and list(table["runs"]) == [3, 3]
    assert list(table["did not learn"]) == [0, 1]
    assert table["AdvGLUE-SST2 accuracy"][1].startswith("44.0")
    markdown = " ".join(m.value for m in claims_tab.markdown)
    assert "uegr 44.0 (n=3) vs vanilla 41.0 (n=3)" in markdown
    assert "dev accuracy: uegr no more than 1 point below vanilla" in markdown
    assert "Seeds needed:" in markdown
    dev_lines = [s["y0"] for s in chart_spec(at, "clean dev accuracy")["layout"]["shapes"]]
    assert dev_lines == [pytest.approx(444 / 872 * 100)]
    advglue_lines = [s["y0"] for s in chart_spec(at, "AdvGLUE-SST2 accuracy")["layout"]["shapes"]]
    assert len(advglue_lines) == 1 and 45 < advglue_lines[0] < 55


def test_the_extra_seeds_an_open_claim_needs_are_queued_in_one_click(run_home):
    from engine.execution import jobs
    from engine.store.runs import RunStore
    from engine.suite.job import SuiteSpec

    hand_written_runs(run_home)
    at = open_runs(["vanilla", "uegr"])
    assert any("new seeds 4" in m.value for m in at.markdown)   # uegr tried seed 3 already: new ones start at 4
    at.button(key="bench-extra-seeds").click().run()
    no_exception(at)
    store = RunStore(run_home)
    suites = store.list(kind="suite")
    assert suites and any("Queued" in s.value for s in at.success)
    for row in suites:
        spec = SuiteSpec.from_dict(store.get(row["id"]).config)
        assert spec.train["lr"] == 2e-4 and spec.model == "tiny" and spec.recipe is None
        assert {0, 1, 2} <= set(spec.seeds) and max(spec.seeds) >= 4
        jobs.cancel(store, row["id"])
