"""The run index is a cache of the run folders: deleted, emptied or garbage, it is rebuilt from them (a garbage file
is moved aside, never deleted); a full disk still lists the runs; a worker killed between writing its results and
its status leaves a run that reads as done."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.__main__ import main
from engine.execution import jobs
from engine.execution.kinds import job_kind
from engine.store import index as run_index
from engine.store.runs import Run, RunStore, write_json

ROOT = Path(__file__).resolve().parent.parent


def finished_run(store: RunStore, method: str, dev: float, parent: str | None = None, kind: str = "train") -> Run:
    """A run folder as a finished job leaves it (no training: the index only reads these files)."""
    run = store.create({"method": method, "dataset": "sst2", "model": "tiny", "seed": 3}, kind=kind, parent=parent)
    write_json(run.dir / "results.json", {"run_id": run.id, "status": "done", "dev_accuracy": dev})
    run.append_metrics([{"step": 1, "split": "train", "name": "loss", "value": 0.69}])
    run.set_status("done", finished=time.time())
    store.update_index(run)
    return run


@pytest.fixture
def two_runs(run_home) -> tuple[RunStore, Run, Run]:
    store = RunStore(run_home)
    first = finished_run(store, "vanilla", 0.75)
    second = finished_run(store, "rose", 0.8, parent=first.id, kind="attack")
    return store, first, second


def indexed_ids(home: Path) -> set[str]:
    with sqlite3.connect(home / "index.sqlite") as db:
        return {r[0] for r in db.execute("select id from runs")}


def listed(store: RunStore) -> dict[str, dict]:
    return {row["id"]: row for row in store.list()}


def assert_both_listed(rows: dict[str, dict], first: Run, second: Run) -> None:
    assert set(rows) == {first.id, second.id}
    assert rows[first.id]["status"] == "done" and rows[first.id]["dev_accuracy"] == 0.75
    assert rows[second.id]["kind"] == "attack" and rows[second.id]["parent"] == first.id
    assert rows[first.id]["damage"] is None


def remove_index(home: Path) -> None:
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (home / name).unlink(missing_ok=True)


def test_a_deleted_index_is_rebuilt_from_the_folders(two_runs, run_home):
    store, first, second = two_runs
    remove_index(run_home)
    fresh = RunStore(run_home)
    assert_both_listed(listed(fresh), first, second)
    assert indexed_ids(run_home) == {first.id, second.id}   # written back, not only read
    # what a suite asks before retraining: the finished vanilla run is found again
    assert [r["id"] for r in fresh.list(kind="train", status="done", method="vanilla")] == [first.id]
    assert [r["id"] for r in fresh.list(parent=first.id)] == [second.id]


def test_an_index_truncated_to_nothing_is_rebuilt(two_runs, run_home):
    _, first, second = two_runs
    remove_index(run_home)
    (run_home / "index.sqlite").write_bytes(b"")
    assert_both_listed(listed(RunStore(run_home)), first, second)


def test_an_index_that_lost_its_rows_is_filled_again(two_runs, run_home):
    _, first, second = two_runs
    with sqlite3.connect(run_home / "index.sqlite") as db:
        db.execute("delete from runs")
    assert_both_listed(listed(RunStore(run_home)), first, second)


def test_a_garbage_index_is_moved_aside_and_rebuilt(two_runs, run_home):
    _, first, second = two_runs
    remove_index(run_home)
    garbage = b"this is no database\x00\xff" * 200
    (run_home / "index.sqlite").write_bytes(garbage)
    fresh = RunStore(run_home)
    aside = list(run_home.glob("index.sqlite.damaged-*"))     # opening the store repaired it, before any use
    assert len(aside) == 1 and aside[0].read_bytes() == garbage   # kept, byte for byte
    assert fresh.index.moved_aside == aside[0] and indexed_ids(run_home) == {first.id, second.id}
    assert_both_listed(listed(fresh), first, second)


def test_an_index_of_another_shape_is_moved_aside_and_rebuilt(two_runs, run_home):
    _, first, second = two_runs
    remove_index(run_home)
    with sqlite3.connect(run_home / "index.sqlite") as db:
        db.execute("create table runs (id text primary key, name text)")
        db.execute("insert into runs values ('x', 'y')")
    assert_both_listed(listed(RunStore(run_home)), first, second)
    assert len(list(run_home.glob("index.sqlite.damaged-*"))) == 1
    assert indexed_ids(run_home) == {first.id, second.id}


def test_an_index_turned_to_garbage_under_an_open_store_is_repaired(two_runs, run_home):
    store, first, second = two_runs
    remove_index(run_home)
    (run_home / "index.sqlite").write_bytes(b"\x13" * 4096)
    assert_both_listed(listed(store), first, second)     # the store opened before: repaired on first use
    assert len(list(run_home.glob("index.sqlite.damaged-*"))) == 1
    assert indexed_ids(run_home) == {first.id, second.id}


def test_runs_reindex_rebuilds_the_index(two_runs, run_home, capsys):
    _, first, second = two_runs
    with sqlite3.connect(run_home / "index.sqlite") as db:   # a stale row: the folder says done, dev 0.75
        db.execute("update runs set status='running', dev_accuracy=0.1 where id=?", (first.id,))
        db.execute("insert into runs (id, kind, status, created) values ('gone-run', 'train', 'done', 1)")
    assert main(["runs", "reindex", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["runs"] == 2 and out["damaged"] == {}
    with sqlite3.connect(run_home / "index.sqlite") as db:
        rows = {r[0]: (r[1], r[2]) for r in db.execute("select id, status, dev_accuracy from runs")}
    assert rows == {first.id: ("done", 0.75), second.id: ("done", 0.8)}


def test_runs_reindex_names_damaged_runs(two_runs, run_home, capsys):
    _, first, _ = two_runs
    (first.dir / "status.json").write_text("[]")
    assert main(["runs", "reindex", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(out["damaged"]) == [first.id] and "status.json holds a list" in out["damaged"][first.id]


# ---------------------------------------------------------------- a full disk

def disk_full(*_args, **_kwargs):
    raise sqlite3.OperationalError("disk I/O error")


def test_a_full_disk_still_lists_shows_and_opens_runs(two_runs, run_home, monkeypatch, capsys):
    """Simulated: every use of SQLite fails as it does on a full disk (the real one is the test below)."""
    _, first, second = two_runs
    monkeypatch.setattr(run_index.sqlite3, "connect", disk_full)
    store = RunStore(run_home)
    assert "disk I/O error" in store.index.problem
    assert_both_listed(listed(store), first, second)
    assert [r["id"] for r in store.list(kind="train", status="done")] == [first.id]
    assert store.get(first.id).results["dev_accuracy"] == 0.75
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert first.id in out and second.id in out
    assert main(["runs", "show", first.id, "--json"]) == 0


def mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_really_full_disk_still_lists_runs(tmp_path):
    """A 1 MiB tmpfs filled to the last byte: `runs list` (a fresh process, so SQLite must open the index) works."""
    home = tmp_path / "full"
    if not mount_tmpfs(home, "1m"):
        pytest.skip("mounting a tmpfs is not permitted here (the simulated test above still runs)")
    try:
        store = RunStore(home)
        first, second = finished_run(store, "vanilla", 0.75), finished_run(store, "rose", 0.8)
        dead = store.create({"method": "vanilla"})
        gone = subprocess.Popen(["true"])
        gone.wait()
        dead.set_status("running", pid=gone.pid)
        fill(home)
        assert os.statvfs(home).f_bavail == 0
        env = {**os.environ, "ROBUSTLAB_HOME": str(home)}
        done = subprocess.run([sys.executable, "-m", "engine", "runs", "list", "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        rows = {r["id"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])}
        assert set(rows) == {first.id, second.id, dead.id} and rows[first.id]["status"] == "done"
        assert rows[dead.id]["status"] == "failed"
        opened = RunStore(home).get(dead.id)     # recording it as failed needs a write: it fails, quietly
        assert opened.status["status"] == "running" and not list(dead.dir.glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(home)], capture_output=True, timeout=30)


# ---------------------------------------------------------------- killed between results and status

class Killed(BaseException):
    """The worker dies here: nothing after this line runs."""


def job_without_a_status(run, should_stop, progress):
    return {"value": 1.0}


def test_a_worker_killed_after_writing_its_results_leaves_a_done_run(run_home, monkeypatch):
    store = RunStore(run_home)
    run = store.create({"method": "vanilla", "dataset": "sst2", "model": "tiny"})
    monkeypatch.setattr(job_kind("train"), "run", job_without_a_status)
    set_status = Run.set_status

    def dying(self, status=None, **fields):
        if status in ("done", "cancelled", "failed"):
            raise Killed
        return set_status(self, status, **fields)

    monkeypatch.setattr(Run, "set_status", dying)
    with pytest.raises(Killed):
        jobs.execute(store, run, lambda: False)
    monkeypatch.undo()
    gone = subprocess.Popen(["true"])
    gone.wait()
    run.set_status(pid=gone.pid)            # the worker's pid, now dead
    assert run.status["status"] == "running" and (run.dir / "results.json").exists()
    assert listed(store)[run.id]["status"] == "done"
    assert store.get(run.id).status["status"] == "done"     # recorded so when opened
    assert "error" not in run.status
    with sqlite3.connect(run_home / "index.sqlite") as db:
        assert db.execute("select status from runs where id=?", (run.id,)).fetchone()[0] == "done"
