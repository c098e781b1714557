"""The dashboard reads only what it owns, and no message repeats a file's content.

A page resolves a `csv:PATH` (an evaluation set, a suite file's "sentences") inside the upload and data folders
only, symlinks and `..` followed first; the command line reads any path its user names, but its errors name lines
and column names, never a cell. Uploads have a quota, and an uncaught exception shows no traceback in the browser.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_util import no_exception, page, read_as, texts
from cli_util import refused

from engine.data.csv_reading import read_csv, store_upload
from engine.data.text_dataset import DataError
from engine.paths import PROJECT_ROOT
from engine.store.owned_paths import OutsideRootsError, inside, page_roots, uploads_dir

try:
    from tomllib import loads as read_toml
except ModuleNotFoundError:   # Python 3.10: streamlit's own dependency reads it
    from toml import loads as read_toml

SECRET = "hunter2-TOP-SECRET"


@pytest.fixture
def secret_csv(tmp_path) -> Path:
    """A CSV outside every folder a page may read, whose first line is a secret (like /etc/passwd's)."""
    path = tmp_path / "private" / "secret.csv"
    path.parent.mkdir()
    path.write_text(f"{SECRET}:x:0:0\ntext,label\n")
    return path


# ---------------------------------------------------------------- the resolver

def test_a_file_in_the_upload_or_data_folder_resolves(run_home):
    uploads_dir().mkdir(parents=True)
    kept = uploads_dir() / "a.csv"
    kept.write_text("text,label\n")
    assert inside(kept, page_roots()) == kept.resolve()
    data_file = next(page_roots()[1].glob("*/*"))
    assert inside(data_file, page_roots()) == data_file.resolve()


def test_paths_outside_the_roots_are_refused_after_resolving(run_home, secret_csv):
    uploads_dir().mkdir(parents=True)
    escape = uploads_dir() / ".." / ".." / secret_csv.relative_to(run_home.parent)   # `..` out of the uploads
    link = uploads_dir() / "innocent.csv"
    link.symlink_to(secret_csv)                                                      # a symlink out of them
    for path in (secret_csv, escape, link, "/etc/passwd"):
        with pytest.raises(OutsideRootsError, match="outside the folders a page reads"):
            inside(path, page_roots())


def test_read_csv_with_roots_refuses_outside_without_reading(run_home, secret_csv):
    with pytest.raises(DataError) as err:
        read_csv(secret_csv, roots=page_roots())
    assert "outside the folders a page reads" in str(err.value) and SECRET not in str(err.value)


# ---------------------------------------------------------------- the Behaviour page

def test_the_behaviour_editor_refuses_an_evaluation_set_outside_the_roots(run_home, secret_csv):
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-suite-how").set_value("Write a test").run()
    at.radio(key="bh-ed-source").set_value("dataset").run()
    at.text_input(key="bh-ed-dataset").input(f"csv:{secret_csv}").run()
    errors = [read_as(e.value) for e in no_exception(at).error]
    assert any("outside the folders a page reads" in e for e in errors), errors
    assert not any(SECRET in t for kind in ("error", "caption", "markdown", "text") for t in texts(at, kind))
    assert not at.get("download_button")   # the suite is refused: nothing to download or run


def test_an_uploaded_suite_reading_a_file_outside_the_roots_is_refused(run_home, secret_csv):
    suite = {"tests": [{"name": "leak", "kind": "INV", "sentences": f"csv:{secret_csv}",
                        "perturbation": {"type": "typo"}}]}
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-suite-how").set_value("Upload a suite file").run()
    at.file_uploader(key="bh-file").set_value(("leak.json", json.dumps(suite).encode(), "application/json"))
    errors = [read_as(e.value) for e in no_exception(at.run()).error]
    assert any("test 'leak'" in e and "outside the folders a page reads" in e for e in errors), errors
    assert not any(SECRET in e for e in errors)


def test_an_uploaded_suite_file_over_the_size_limit_is_refused(run_home, monkeypatch):
    import app.behaviour.panels as panels

    monkeypatch.setattr(panels, "UPLOAD_FILE_BYTES", 100)
    at = no_exception(page("behaviour.py").run())
    at.radio(key="bh-suite-how").set_value("Upload a suite file").run()
    at.file_uploader(key="bh-file").set_value(("big.json", b'{"tests": []}' + b" " * 200, "application/json"))
    errors = [read_as(e.value) for e in no_exception(at.run()).error]
    assert errors == ["big.json is 0.0 MB; an upload may be at most 0.0 MB"], errors


# ---------------------------------------------------------------- the command line: no cell in a message

HOSTILE_CSVS = {
    "one class": f"text,label\na,{SECRET}\nb,{SECRET}\n",
    "mixed names and numbers": f"text,label\na,{SECRET}\nb,1\n",
    "near duplicates": f"text,label\na,{SECRET}\nb,{SECRET.upper()}\nc,x\n",
    "header is data": f"{SECRET},1\na,0\n",
    "integer ids with a gap": f"text,label\n{SECRET},0\nb,2\n",
    "negative id": f"text,label\na,0\nb,1\nc,-{len(SECRET)}\n",
    "too many fields": f"text,label\na,0\nb,1,{SECRET}\n",
    "no text": f"text,label\n,{SECRET}\nb,1\n",
}


@pytest.mark.parametrize("content", HOSTILE_CSVS.values(), ids=HOSTILE_CSVS.keys())
def test_cli_errors_on_a_csv_never_repeat_a_cell(run_home, tmp_path, capsys, content):
    path = tmp_path / "private.csv"
    path.write_text(content)
    line = refused(["train", "--model", "tiny", "--dataset", f"csv:{path}", "--train-size", "32"], capsys)
    assert line.startswith("error: --") and SECRET not in line and SECRET.upper() not in line, line
    assert f"-{len(SECRET)}" not in line, line


def test_cli_errors_against_a_models_labels_never_repeat_a_cell(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text(f"text,label\ngood,positive\nbad,{SECRET}\n")
    with pytest.raises(DataError) as err:
        read_csv(path, known_labels=["negative", "positive"])
    assert "line 3" in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(DataError) as err:
        read_csv(path, label_order=["positive", "neutral"])
    assert SECRET not in str(err.value) and "'neutral'" in str(err.value)


def test_column_names_are_cut_and_their_control_characters_shown(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("te\x1b[2Jxt," + "c" * 500 + "," + ",".join(f"col{i}" for i in range(30)) + "\na,b\n")
    with pytest.raises(DataError) as err:
        read_csv(path)
    message = str(err.value)
    assert "\x1b" not in message and "⟨U+001B⟩" in message, message
    assert "c" * 61 not in message and "(500 characters)" in message and "and 20 more" in message, message


# ---------------------------------------------------------------- uploads and the server's settings

def test_uploads_past_the_folder_quota_are_refused_and_nothing_is_kept(run_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_UPLOAD_QUOTA_BYTES", "1000")
    store_upload(b"text,label\n" + b"a,0\n" * 200, "first.csv")                # 811 bytes: fits
    with pytest.raises(DataError, match="the upload folder is full: it holds 0.0 MB"):
        store_upload(b"text,label\n" + b"b,1\n" * 100, "second.csv")           # 411 more: past 1,000
    assert [p.name.split("-", 1)[1] for p in uploads_dir().iterdir()] == ["first.csv"]
    assert store_upload(b"text,label\n" + b"a,0\n" * 200, "first.csv").exists()   # the same file again is free


def test_an_upload_larger_than_one_file_may_be_is_refused(run_home, monkeypatch):
    import engine.data.csv_reading

    monkeypatch.setattr(engine.data.csv_reading, "UPLOAD_FILE_BYTES", 100)
    with pytest.raises(DataError, match="an upload may be at most"):
        store_upload(b"x" * 101, "big.csv")
    assert not uploads_dir().exists() or not list(uploads_dir().iterdir())


def test_the_train_page_refuses_an_upload_past_the_quota(run_home, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_UPLOAD_QUOTA_BYTES", "100")
    at = page("train.py").run()
    at.selectbox(key="train-dataset").set_value("Upload CSV").run()
    content = b"text,label\n" + b"".join(f"sentence {i},{i % 2}\n".encode() for i in range(40))
    at.file_uploader(key="train-upload").set_value(("big.csv", content, "text/csv"))
    errors = texts(no_exception(at.run()), "error")
    assert any("big.csv cannot be used: the upload folder is full" in e for e in errors), errors
    assert not uploads_dir().exists() or not list(uploads_dir().iterdir())


def test_the_browser_is_shown_no_traceback():
    config = read_toml((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] in ("none", "type")
