"""The Train page with a sentence-pair CSV: the text, second text and label columns are found by name and can be
picked, a GLUE task can be named, and the queued run's config holds them."""
from __future__ import annotations

import io

from apptest_util import no_exception, page, texts
from pair_data_util import rte_like_pairs, write_pair_csv


def upload(at, name: str, content: bytes):
    at.selectbox(key="train-dataset").set_value("Upload CSV").run()
    at.file_uploader(key="train-upload").set_value((name, content, "text/csv"))
    return no_exception(at.run())


def pair_content(tmp_path, header=("premise", "hypothesis", "label")) -> bytes:
    return write_pair_csv(tmp_path / "pairs.csv", rte_like_pairs(40), header).read_bytes()


def queue_runs(monkeypatch) -> list[dict]:
    from engine.execution import jobs

    queued: list[dict] = []
    monkeypatch.setattr(jobs, "submit", lambda store, config: queued.append(config) or store.create(config))
    return queued


def test_a_pair_csv_is_found_by_its_columns_and_its_task_is_stored(run_home, tmp_path, monkeypatch):
    queued = queue_runs(monkeypatch)
    at = upload(page("train.py").run(), "nli.csv", pair_content(tmp_path))
    assert at.selectbox(key="train-text-column").value == "premise"
    assert at.selectbox(key="train-text-column-b").value == "hypothesis"
    assert any("nli.csv: 40 rows of sentence pairs (premise / hypothesis), 2 classes" in m
               for m in texts(at, "success")), texts(at, "success")
    assert list(at.dataframe[0].value.columns) == ["label", "premise", "hypothesis"]
    at.selectbox(key="train-task").set_value("rte").run()
    assert "train-label-order" not in [w.key for w in at.text_input], "the task fixes the class order"
    at.radio(key="train-model").set_value("tiny").run()
    at.button(key="train-start").click().run()
    assert not texts(no_exception(at), "error")
    (config,) = queued
    assert {k: config[k] for k in ("text_column", "text_column_b", "label_column", "task")} == \
        {"text_column": "premise", "text_column_b": "hypothesis", "label_column": "label", "task": "rte"}


def test_the_second_column_is_picked_by_hand_or_left_out(run_home, tmp_path, monkeypatch):
    queued = queue_runs(monkeypatch)
    at = upload(page("train.py").run(), "odd.csv", pair_content(tmp_path, ("text", "claim", "label")))
    assert at.selectbox(key="train-text-column-b").value == "none: single sentences"
    assert any("odd.csv: 40 rows, 2 classes" in m for m in texts(at, "success")), texts(at, "success")
    at.selectbox(key="train-text-column-b").set_value("claim").run()
    assert any("40 rows of sentence pairs (text / claim)" in m for m in texts(no_exception(at), "success"))
    at.selectbox(key="train-text-column-b").set_value("text").run()
    assert any("column 'text' is chosen as both the text column and the second text column" in e
               for e in texts(no_exception(at), "error")), texts(at, "error")
    at.radio(key="train-model").set_value("tiny").run()
    at.button(key="train-start").click().run()
    assert queued == [], "a refused choice queues nothing"


def test_a_task_whose_class_has_no_rows_is_refused_on_the_page(run_home, tmp_path):
    rows = [(a, b, "entailment") for a, b, _ in rte_like_pairs(20)] + [("x y", "z", "contradiction")] * 4
    buffer = io.StringIO()
    buffer.write("premise,hypothesis,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    at = upload(page("train.py").run(), "nli.csv", buffer.getvalue().encode())
    at.selectbox(key="train-task").set_value("mnli").run()
    assert any("no row has the class 'neutral' of mnli" in e for e in texts(no_exception(at), "error")), \
        texts(at, "error")


def test_a_glue_pair_task_whose_files_are_missing_says_which_files_go_where(run_home, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_DATA", str(tmp_path / "empty"))
    at = no_exception(page("train.py").run())
    at.selectbox(key="train-dataset").set_value("mnli").run()
    errors = texts(no_exception(at), "error")
    assert any("the mnli files are not in the data folder" in e and "GLUE's MNLI/train.tsv" in e
               and "mnli/dev_matched.tsv" in e for e in errors), errors
