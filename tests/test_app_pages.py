"""The dashboard shell: navigation from page headers, Home, Train and Runs driven through AppTest,
including one real tiny-model run started from the Train page and followed to its end."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from apptest_util import TIMEOUT, no_exception, page, texts
from queue_util import slots_held
from streamlit.testing.v1 import AppTest

from app.figures import comparison_figure, loss_figure, robustness_points, series
from app.nav import discover, read_header
from app.train.uploads import accept_upload
from engine.data.text_dataset import DataError
from engine.models.device import describe, pick_device
from engine.store.runs import RunStore, read_json
from engine.training.evaluate import evaluate_run

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- navigation

def test_navigation_reads_page_headers(tmp_path):
    (tmp_path / "b.py").write_text("# title: Bee\n# icon: :material/star:\n# section: Methods\n# order: 5\nx = 1\n")
    (tmp_path / "a.py").write_text("# title: Aye\n# section: RobustLab\n# order: 20\n")
    (tmp_path / "h.py").write_text("# title: Home\n# section: RobustLab\n# order: 10\n")
    (tmp_path / "z.py").write_text("# title: Zed\n# section: Extras\n")
    (tmp_path / "r.py").write_text("# title: Rob\n# section: Robustness\n# order: 1\n")
    (tmp_path / "helper.py").write_text('"""no header: not a page"""\n# title: too late\n')
    sections = discover(tmp_path)
    assert list(sections) == ["RobustLab", "Methods", "Robustness", "Extras"]
    assert [p.title for p in sections["RobustLab"]] == ["Home", "Aye"]
    assert sections["Methods"][0].icon == ":material/star:" and sections["Methods"][0].order == 5
    assert read_header(tmp_path / "helper.py") is None


def test_main_builds_navigation_and_sidebar_footer(run_home):
    at = no_exception(AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=TIMEOUT).run())
    assert "RobustLab" in texts(at, "title")
    footer = " ".join(texts(at.sidebar, "caption"))
    assert "0 running, 0 queued" in footer and describe(pick_device()) in footer
    at.switch_page("../pages/runs.py").run()
    assert "Runs" in texts(no_exception(at), "title")


def test_the_favicon_is_a_file_of_the_project(run_home, monkeypatch):
    """An emoji or :material/...: icon is fetched from the internet by the browser; a file in assets/ is served by
    the app itself, so the icon shows offline."""
    import streamlit

    given = {}
    real = streamlit.set_page_config
    monkeypatch.setattr(streamlit, "set_page_config", lambda **kw: given.update(kw) or real(**kw))
    no_exception(AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=TIMEOUT).run())
    icon = Path(str(given["page_icon"]))
    assert icon.is_file() and icon.parent == ROOT / "assets", given
    from PIL import Image

    with Image.open(icon) as image:
        assert image.size[0] == image.size[1] >= 32


# ---------------------------------------------------------------- home

def test_home_renders_and_reports_the_machine(run_home):
    at = no_exception(page("home.py").run())
    assert "RobustLab" in texts(at, "title")
    body = " ".join(texts(at, "markdown"))
    assert "`tiny`" in body and "Device:" in body
    assert any("No runs yet" in i for i in texts(at, "info"))


def test_home_notes_absent_optional_pair_datasets_without_an_error(run_home, tmp_path, monkeypatch):
    """SST-2 and AdvGLUE there, no GLUE pair files (as the shared data folder is): nothing reads as missing."""
    def data_folder(name: str, files: tuple[str, ...]) -> None:   # a new folder each time: availability is cached
        for file in files:
            (tmp_path / name / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / file).write_text("")
        monkeypatch.setenv("ROBUSTLAB_DATA", str(tmp_path / name))

    data_folder("data", ("sst2/train.tsv", "sst2/dev.tsv", "advglue/dev.json"))
    at = no_exception(page("home.py").run())
    assert not any("datasets are missing" in w for w in texts(at, "warning")), texts(at, "warning")
    body = " ".join(texts(at, "markdown"))
    assert ":material/cancel:" not in body and "`sst2`" in body and "`rte`" not in body
    assert any(c.startswith("Optional, not in the data folder: rte, rte-dev, qnli,") for c in texts(at, "caption"))
    data_folder("no-dev", ("sst2/train.tsv", "advglue/dev.json"))   # a core set missing: still a warning
    at = no_exception(page("home.py").run())
    assert any("datasets are missing" in w for w in texts(at, "warning"))
    assert ":material/cancel:] `sst2-dev`" in " ".join(texts(at, "markdown"))


def test_home_explains_missing_data_and_nltk(run_home, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_DATA", str(tmp_path / "no-data"))
    nltk = tmp_path / "nltk"
    (nltk / "corpora" / "stopwords").mkdir(parents=True)
    (nltk / "MISSING.txt").write_text("wordnet: Debian wordnet-base not installable and npm unreachable\n")
    monkeypatch.setenv("NLTK_DATA", str(nltk))
    at = no_exception(page("home.py").run())
    errors = " ".join(texts(at, "error"))
    assert "No datasets found" in errors and "ROBUSTLAB_DATA" in errors
    warnings = " ".join(texts(at, "warning"))
    assert "PWWS" in warnings and "npm unreachable" in warnings


# ---------------------------------------------------------------- train: refusals

def test_invalid_config_shows_error_and_creates_no_run(run_home):
    at = no_exception(page("train.py").run())
    at.radio(key="train-model").set_value("tiny")
    at.number_input(key="train-size").set_value(32)
    at.number_input(key="train-batch").set_value(64)
    at.button(key="train-start").click().run()
    assert any("larger than the 32 training examples" in e for e in texts(no_exception(at), "error"))
    assert RunStore().list() == []
    assert "train-run-id" not in at.session_state


def test_malformed_csv_upload_is_refused(run_home):
    at = no_exception(page("train.py").run())
    at.selectbox(key="train-dataset").set_value("Upload CSV").run()
    at.file_uploader(key="train-upload").set_value(("bad.csv", b"words,score\nnice film,1\nawful,0\n", "text/csv"))
    at.run()
    assert any("no text column found" in e for e in texts(no_exception(at), "error"))
    at.button(key="train-start").click().run()
    assert any("Not started" in e for e in texts(at, "error"))
    assert RunStore().list() == [] and not list((run_home / "uploads").glob("*.csv"))
    good = "review,class\n" + "".join(f"line {i},{i % 2}\n" for i in range(20))
    at.file_uploader(key="train-upload").set_value(("good.csv", good.encode(), "text/csv"))
    at.run()
    assert any("20 rows, 2 classes" in m for m in texts(no_exception(at), "success"))
    assert not at.error and len(list((run_home / "uploads").glob("*.csv"))) == 1


def test_good_csv_upload_is_kept_and_previewed(run_home):
    content = "text,label\n" + "".join(f"sentence number {i},{i % 3}\n" for i in range(30))
    summary = accept_upload(content.encode(), "my reviews.csv")
    assert summary.rows == 30 and summary.num_labels == 3 and summary.path.exists()
    assert summary.class_counts["examples"].tolist() == [10, 10, 10]
    with pytest.raises(DataError, match="mixes names and numbers"):
        accept_upload(b"text,label\ngood,yes\nbad,0\n", "words.csv")
    with pytest.raises(DataError, match="at least two rows per class"):
        accept_upload(b"text,label\ngood,1\nbad,0\n", "tiny.csv")


def test_a_preset_fills_the_train_page_and_a_change_wins(run_home):
    """Choosing ROSE's README preset starts the method settings and the optimiser inputs at its numbers;
    a value changed afterwards stays as typed; no preset leaves RobustLab's defaults."""
    at = no_exception(page("train.py").run())
    at.selectbox(key="train-method").set_value("rose-second").run()
    assert no_exception(at).number_input(key="train-settings-rose-second-upper").value == 50.0
    at.selectbox(key="train-preset-rose-second").set_value("readme-sst2-base").run()
    upper = no_exception(at).number_input(key="train-settings-readme-sst2-base-rose-second-upper")
    assert upper.value == 30.0
    assert at.number_input(key="train-lr-0.0001-readme-sst2-base").value == 1e-4
    assert at.number_input(key="train-batch-readme-sst2-base").value == 32
    assert at.slider(key="train-warmup-readme-sst2-base").value == 0.0
    assert any("RoBERTa-base" in c for c in texts(at, "caption"))
    upper.set_value(35.0).run()
    assert no_exception(at).number_input(key="train-settings-readme-sst2-base-rose-second-upper").value == 35.0


def test_settings_form_renders_each_kind_of_setting():
    def script() -> None:
        import streamlit as st

        from app.components import settings_form
        from engine.methods.base import Method, Setting

        class Demo(Method):
            name = "demo"
            settings_spec = (Setting("rate", 0.3, "a share", 0.0, 1.0, low_open=True),
                             Setting("upper", 70.0, "a percentile", 0, 100),
                             Setting("layers", 2, "how many", 1, 6),
                             Setting("mode", "fast", "which", choices=("fast", "slow")),
                             Setting("flag", True, "on or off"),
                             Setting("picks", [1, 3], "layer list"))

        st.session_state["out"] = settings_form(Demo, key="t")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert no_exception(at).session_state["out"] == {"rate": 0.3, "upper": 70.0, "layers": 2, "mode": "fast",
                                                     "flag": True, "picks": [1, 3]}
    at.number_input(key="t-demo-layers").set_value(4)
    at.selectbox(key="t-demo-mode").set_value("slow").run()
    assert at.session_state["out"]["layers"] == 4 and at.session_state["out"]["mode"] == "slow"
    assert "Allowed: (0, 1]" in at.number_input(key="t-demo-rate").help
    at.number_input(key="t-demo-rate").set_value(0.0).run()
    assert any("outside its range (0, 1]" in e for e in texts(at, "error"))


def test_settings_form_defaults_build_every_registered_method():
    def script() -> None:
        import streamlit as st

        from app.components import settings_form
        from engine.methods import registry

        st.session_state["out"] = {name: settings_form(cls, key="all") for name, cls in registry().items()}

    at = no_exception(AppTest.from_function(script, default_timeout=TIMEOUT).run())
    from engine.methods import make_method, registry

    assert set(at.session_state["out"]) == set(registry())
    for name, values in at.session_state["out"].items():
        method = make_method(name, values)  # what the form returns untouched is a valid setting set
        assert method.settings == make_method(name).settings, name


# ---------------------------------------------------------------- a real run through the UI

def wait_until_finished(at: AppTest, store: RunStore, run_ids: list[str], limit: float = 300) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        states = [store.get(i).status.get("status") for i in run_ids]
        if all(s in ("done", "failed", "cancelled") for s in states):
            return
        time.sleep(2)
        no_exception(at.run())
    pytest.fail(f"runs still {states} after {limit}s: " + store.get(run_ids[-1]).log_text())


@pytest.mark.slow
def test_train_then_inspect_compare_and_delete_in_runs(run_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_MAX_JOBS", "2")  # both tiny runs at once (workers inherit it): a faster test
    store = RunStore()
    at = no_exception(page("train.py").run())
    at.radio(key="train-model").set_value("tiny")
    at.number_input(key="train-size").set_value(32)
    at.number_input(key="train-epochs").set_value(1)
    at.number_input(key="train-batch").set_value(16)
    with slots_held(run_home, 2):          # both runs wait, so what the page shows is known
        at.button(key="train-start").click().run()
        first = no_exception(at).session_state["train-run-id"]
        assert store.get(first).config["train_size"] == 32 and store.get(first).config["model"] == "tiny"
        assert [p.proto.text for p in at.get("progress")] == ["Starting: loading data and model…"]
        assert not any("at a time" in i for i in texts(at, "info"))
        at.number_input(key="train-seed").set_value(1)
        at.button(key="train-start").click().run()
        second = no_exception(at).session_state["train-run-id"]
        assert second != first and store.get(second).config["seed"] == 1
        assert [p.proto.text for p in at.get("progress")] == ["Waiting for a free worker slot: 1 run(s) ahead of it."]
        assert any("1 run(s) already queued or running" in i and "trains 2 at a time" in i
                   for i in texts(at, "info"))
        assert {store.get(i).status["status"] for i in (first, second)} == {"queued"}

    wait_until_finished(at, store, [first, second])
    at.run()
    for run_id in (first, second):
        run = store.get(run_id)
        assert run.status["status"] == "done", run.log_text()
        assert run.has_model()
        assert run.results["dev_accuracy"] == read_json(run.dir / "eval.json")["sst2-dev"]["accuracy"]
        recomputed = evaluate_run(store, run_id, ["sst2-dev"], force=True)["sst2-dev"]
        assert recomputed["n"] == 872 and recomputed["accuracy"] == run.results["dev_accuracy"]
    shown = {m.label: m.value for m in no_exception(at).metric}      # the finished panel shows the second run
    assert shown["Dev accuracy"] == f"{store.get(second).results['dev_accuracy']:.3f}"

    runs = no_exception(page("runs.py").run())
    assert set(runs.dataframe[0].value["id"]) == {first, second}
    runs.selectbox(key="runs-detail").set_value(first).run()
    assert len(no_exception(runs).get("plotly_chart")) == 2
    assert runs.query_params["run"] == first
    assert "vanilla · sst2 · tiny · seed 0" in texts(runs, "subheader")
    assert any(first in c for c in texts(runs, "caption"))

    runs.session_state["runs-view"] = "Compare"
    runs.run()
    runs.multiselect(key="runs-compare").set_value([first, second]).run()
    table = no_exception(runs).dataframe[-1].value
    assert set(table["run"]) == {first, second} and table["dev acc"].notna().all()
    assert len(runs.get("plotly_chart")) == 2

    runs.session_state["runs-view"] = "Details"
    runs.run()
    runs.button(key="runs-delete").click().run()
    assert any("cannot be undone" in w for w in texts(no_exception(runs), "warning"))
    runs.button(key="runs-delete-no").click().run()
    assert {r["id"] for r in store.list()} == {first, second}
    runs.button(key="runs-delete").click().run()
    runs.button(key="runs-delete-yes").click().run()
    assert any(f"Deleted run {first}" in s for s in texts(no_exception(runs), "success"))
    assert [r["id"] for r in store.list()] == [second] and not (run_home / first).exists()


# ---------------------------------------------------------------- failed and running runs

def test_failed_run_shows_its_error_and_curves(run_home):
    store = RunStore()
    run = store.create({"method": "vanilla", "dataset": "sst2", "model": "tiny", "seed": 0})
    gone = subprocess.Popen(["true"])
    gone.wait()
    run.set_status("running", pid=gone.pid, step=10, total_steps=40, started=time.time())
    run.append_metrics([{"step": s, "split": "train", "name": "loss", "value": 0.7 - s / 100} for s in (5, 10)])
    at = page("runs.py")
    at.query_params["run"] = run.id
    no_exception(at.run())
    assert store.get(run.id).status["status"] == "failed"
    assert any("worker process ended" in e for e in texts(at, "error"))
    assert len(at.get("plotly_chart")) == 1  # loss so far; no dev evaluation was reached


def test_running_run_cannot_be_deleted_but_can_be_cancelled(run_home):
    store = RunStore()
    run = store.create({"method": "vanilla", "dataset": "sst2", "model": "tiny", "seed": 0})
    worker = subprocess.Popen(["sleep", "60"])
    try:
        run.set_status("running", pid=worker.pid, step=0, total_steps=10, started=time.time())
        at = page("runs.py")
        at.query_params["run"] = run.id
        no_exception(at.run())
        assert at.button(key=f"cancel-{run.id}")  # the live job panel is shown for an active run
        at.button(key="runs-delete").click().run()
        at.button(key="runs-delete-yes").click().run()
        assert any("cancel it first" in e for e in texts(no_exception(at), "error"))
        at.button(key="runs-delete-cancel").click().run()
        assert any("Cancel requested (cancelling)" in i for i in texts(no_exception(at), "info"))
        assert worker.wait(timeout=10) != 0  # SIGTERM reached the worker
        assert (run_home / run.id).exists()
    finally:
        worker.kill()


# ---------------------------------------------------------------- cached model loading

@pytest.mark.slow
def test_model_loader_is_cached_per_run(tiny_run, monkeypatch):
    from app.state import load_model

    store, run = tiny_run
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    model, tokenizer, method = load_model(run.id)
    assert not model.training and method.name == "vanilla" and tokenizer.pad_token_id is not None
    assert load_model(run.id)[0] is model  # the second call is the cached object, not a reload


# ---------------------------------------------------------------- figures

def test_figures_follow_the_metrics_rows():
    rows = [{"step": 10, "split": "train", "name": "loss", "value": 0.5},
            {"step": 5, "split": "train", "name": "loss", "value": 0.7},
            {"step": 10, "split": "dev", "name": "accuracy", "value": 0.8},
            {"step": 10, "split": "advglue-sst2", "name": "accuracy", "value": 0.4}]
    assert series(rows, "train", "loss") == ([5, 10], [0.7, 0.5])
    assert robustness_points(rows) == {"advglue-sst2": (10, 0.4)}
    assert [t.name for t in loss_figure(rows).data] == ["train loss"]
    other = [dict(r, value=r["value"] / 2) for r in rows]
    fig = comparison_figure({"a": rows, "b": other, "empty": []}, "dev", "accuracy")
    assert [t.name for t in fig.data] == ["a", "b"] and list(fig.data[1].y) == [0.4]
    json.dumps(fig.to_plotly_json(), default=str)  # serialisable for st.plotly_chart
