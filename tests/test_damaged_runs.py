"""A run with a file that cannot be read as what it should hold is listed as "damaged: REASON" and can still be
shown, exported and deleted; the other runs are untouched, and nothing raises."""
from __future__ import annotations

import json
import os
import shutil
import zipfile

import pytest
from test_run_index import finished_run

from engine.__main__ import main
from engine.store.runs import Run, RunError, RunStore, read_json, read_jsonl

NPZ_GARBAGE = b"PK\x03\x04 but no archive follows"

# file -> content -> the words the reason must hold
DAMAGE = {
    "status-list": ("status.json", b"[]", "status.json holds a list, not an object"),
    "status-null": ("status.json", b"null", "status.json holds null, not an object"),
    "status-not-json": ("status.json", b'{"status": "do', "status.json is not valid JSON"),
    "status-number": ("status.json", b'{"status": 3}', "status.json's status is a number"),
    "status-pid-text": ("status.json", b'{"status": "running", "pid": "1; rm -rf /", "created": 1}',
                        "status.json's pid is a string"),
    "status-created-text": ("status.json", b'{"status": "queued", "created": "yesterday"}',
                            "status.json's created is a string"),
    "results-list": ("results.json", b"[]", "results.json holds a list"),
    "results-dev-text": ("results.json", b'{"dev_accuracy": "high"}', "results.json's dev_accuracy is a string"),
    "config-list": ("config.json", b"[1, 2]", "config.json holds a list"),
    "config-not-utf8": ("config.json", b'{"method": "\xff\xfe"}', "config.json is not UTF-8 text"),
    "eval-list": ("eval.json", b"[]", "eval.json holds a list"),
    "eval-deep": ("eval.json", b"[" * 100_000, "eval.json"),
    "metrics-binary": ("metrics.jsonl", bytes(range(128, 256)) * 4 + b"\n", "metrics.jsonl line 1 is not UTF-8 text"),
    "metrics-garbage-line": ("metrics.jsonl", b'{"step": 1, "split": "train", "name": "loss", "value": 0.7}\n'
                             b"garbage\n{\"step\": 2, \"split\": \"train\", \"name\": \"loss\", \"value\": 0.6}\n",
                             "metrics.jsonl line 2 is not valid JSON"),
    "metrics-not-a-record": ("metrics.jsonl", b"[1, 2]\n", "metrics.jsonl line 1 holds a list, not a record"),
    "artifact-garbage": ("artifacts/drift.npz", NPZ_GARBAGE, "artifacts/drift.npz is not a readable array archive"),
}


@pytest.fixture
def store_with_good_run(run_home) -> tuple[RunStore, Run]:
    store = RunStore(run_home)
    return store, finished_run(store, "vanilla", 0.75)


def damaged_run(store: RunStore, variant: str) -> tuple[Run, str]:
    name, content, reason = DAMAGE[variant]
    run = finished_run(store, "rose", 0.8)
    run.write_artifact("drift", {"step": [1], "drift": [[0.1]]})
    (run.dir / "eval.json").write_text('{"sst2-dev": {"accuracy": 0.8, "n": 8}}')
    (run.dir / name).write_bytes(content)
    return run, reason


@pytest.mark.parametrize("variant", list(DAMAGE))
def test_a_damaged_run_is_listed_with_its_reason_beside_a_good_one(store_with_good_run, variant):
    store, good = store_with_good_run
    run, reason = damaged_run(store, variant)
    rows = {row["id"]: row for row in store.list()}
    assert rows[good.id]["status"] == "done" and rows[good.id]["damage"] is None
    assert rows[run.id]["status"] == "damaged" and reason in rows[run.id]["damage"], rows[run.id]["damage"]
    assert [r["id"] for r in store.list(status="damaged")] == [run.id]
    assert run.damage == rows[run.id]["damage"] and good.damage is None
    # every reader answers with what it could read, never an exception
    assert isinstance(run.config, dict) and isinstance(run.status, dict) and isinstance(run.results, dict)
    assert all(isinstance(m, dict) and "value" in m for m in run.metrics())
    assert isinstance(run.artifact("drift"), dict)
    assert store.reconcile() == []


@pytest.mark.parametrize("variant", list(DAMAGE))
def test_the_cli_lists_shows_exports_and_deletes_a_damaged_run(store_with_good_run, variant, run_home, capsys):
    store, good = store_with_good_run
    run, reason = damaged_run(store, variant)
    assert main(["runs", "list"]) == 0
    line = next(li for li in capsys.readouterr().out.splitlines() if li.startswith(run.id))
    assert "damaged" in line and reason in line
    assert main(["runs", "show", run.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reason in shown["damage"] and shown["run_id"] == run.id
    out = store.export_zip(run.id, run_home.parent / "damaged.zip")
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert f"{run.id}/{DAMAGE[variant][0]}" in names and f"{run.id}/config.json" in names
    assert main(["runs", "delete", run.id, "--json"]) == 0
    assert not run.dir.exists() and [r["id"] for r in store.list()] == [good.id]


def test_an_index_row_whose_folder_is_gone_is_left_out(store_with_good_run, capsys):
    store, good = store_with_good_run
    gone = finished_run(store, "rose", 0.8)
    shutil.rmtree(gone.dir)
    assert [r["id"] for r in store.list()] == [good.id]
    assert main(["runs", "list"]) == 0 and gone.id not in capsys.readouterr().out
    assert main(["runs", "delete", gone.id]) == 2
    assert "no run" in capsys.readouterr().err


def test_read_json_returns_the_default_for_another_type(tmp_path):
    path = tmp_path / "x.json"
    for content in ("[]", "null", "3", '"text"', "{", "\udcff"):
        path.write_bytes(content.encode("utf-8", "surrogateescape"))
        assert read_json(path, {}) == {} and read_json(path, {}, expect=dict) == {}
    path.write_text("[1]")
    assert read_json(path, []) == [1] and read_json(path, None, expect=list) == [1] and read_json(path) == [1]
    assert read_json(tmp_path / "missing.json", {"a": 1}) == {"a": 1}
    path.write_bytes(b"\x00\x01\x02\n{\"a\": 1}\n[2]\n{\"b\": 2}")
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]


def test_a_run_folder_that_is_a_link_is_never_followed_and_delete_removes_only_the_link(run_home):
    store = RunStore(run_home)
    linked, victim = store.create({"method": "vanilla"}), store.create({"method": "vanilla"})
    victim.set_status("done")
    before = {p.name: p.read_bytes() for p in victim.dir.iterdir()}
    shutil.rmtree(linked.dir)
    linked.dir.symlink_to(victim.dir.name)
    with pytest.raises(RunError, match="is a link to another folder, which RobustLab never follows"):
        store.get(linked.id)
    store.delete(linked.id)
    assert not os.path.lexists(linked.dir) and {row["id"] for row in store.list()} == {victim.id}
    assert {p.name: p.read_bytes() for p in victim.dir.iterdir()} == before
