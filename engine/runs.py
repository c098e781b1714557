"""The run store: a folder per run, indexed by SQLite so a page can list thousands of runs at once.

    runs/index.sqlite           id, kind, method, dataset, model, seed, status, created, summary metrics
    runs/<id>/config.json       everything needed to reproduce the run
    runs/<id>/status.json       status (queued, running, done, failed, cancelled), pid, progress
    runs/<id>/metrics.jsonl     one line per scalar: step, split, name, value
    runs/<id>/results.json      final metrics
    runs/<id>/artifacts/*.npz   arrays recorded during training
    runs/<id>/model/            model.safetensors + tokenizer + config
    runs/<id>/log.txt           human-readable log

Every write is append-only or atomic (temporary file, then rename), so a killed worker never leaves a
half-written file behind.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.paths import runs_home
from engine.run_swap import recover_leftovers
from engine.user_text import quoted

ACTIVE = ("queued", "running")
WORKER_GONE = ("the worker process ended without finishing (killed or crashed); everything it recorded before that "
               "is kept")
NO_WORKER = "no worker ever started for this run"
# a Ray task on a store every node shares keeps its own index here: SQLite must not sit on a network filesystem
NODE_INDEX_VARIABLE = "ROBUSTLAB_NODE_INDEX"


class RunError(ValueError):
    """A run does not exist or cannot take the requested action; the message says why."""


# ---------------------------------------------------------------- atomic file helpers

def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def read_jsonl(path: Path) -> list[dict]:
    """The records of an append-only JSONL file; a torn last line (a killed writer) is skipped."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return rows


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stale_reason(status: dict) -> str | None:
    """Why a run recorded as queued or running is neither (its worker is gone, or never started), or None."""
    if status.get("status") not in ACTIVE:
        return None
    if status.get("host", socket.gethostname()) != socket.gethostname():
        return None   # a process on another machine (a cluster node): the job that started it records its end
    if status.get("pid"):
        return None if pid_alive(status["pid"]) else WORKER_GONE
    return NO_WORKER if time.time() - status.get("created", time.time()) > 120 else None


# ---------------------------------------------------------------- one run

@dataclass
class Run:
    """A handle on one run folder: read and append its files."""
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def config(self) -> dict:
        return read_json(self.dir / "config.json", {})

    @property
    def status(self) -> dict:
        return read_json(self.dir / "status.json", {"status": "unknown"})

    @property
    def results(self) -> dict:
        return read_json(self.dir / "results.json", {})

    def set_status(self, status: str | None = None, **fields: Any) -> dict:
        current = self.status
        if status:
            current["status"] = status
        current.update(fields, updated=time.time())
        write_json(self.dir / "status.json", current)
        return current

    def log(self, message: str) -> None:
        with open(self.dir / "log.txt", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def log_text(self) -> str:
        try:
            return (self.dir / "log.txt").read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def append_metrics(self, rows: list[dict]) -> None:
        if rows:
            with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
                f.flush()

    def metrics(self) -> list[dict]:
        """All logged scalars."""
        return read_jsonl(self.dir / "metrics.jsonl")

    def metrics_written(self) -> float | None:
        """When the logged scalars were last written (a Unix time), or None before the first."""
        try:
            return (self.dir / "metrics.jsonl").stat().st_mtime
        except FileNotFoundError:
            return None

    def artifact_names(self) -> list[str]:
        folder = self.dir / "artifacts"
        return sorted(p.stem for p in folder.glob("*.npz") if not p.name.startswith(".")) if folder.exists() else []

    def artifact(self, name: str) -> dict[str, np.ndarray]:
        path = self.dir / "artifacts" / f"{name}.npz"
        if not path.exists():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def write_artifact(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        (self.dir / "artifacts").mkdir(exist_ok=True)
        write_npz(self.dir / "artifacts" / f"{name}.npz", arrays)

    def has_model(self) -> bool:
        return (self.dir / "model" / "model.safetensors").exists()


# ---------------------------------------------------------------- the store

SCHEMA = """
create table if not exists runs (
    id text primary key, kind text, method text, dataset text, model text, seed integer,
    status text, created real, finished real, dev_accuracy real, advglue_sst2_accuracy real,
    summary text, parent text
)"""


class RunStore:
    """All runs under one home folder."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home) if home else runs_home()
        self.home.mkdir(parents=True, exist_ok=True)
        recover_leftovers(self.home)   # what a killed archive receive or run swap left behind
        with closing(self._db()) as db, db:
            db.execute(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(os.environ.get(NODE_INDEX_VARIABLE) or self.home / "index.sqlite", timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("pragma journal_mode=wal")
        return db

    # -- creating and finding

    def create(self, config: dict, kind: str = "train", parent: str | None = None) -> Run:
        label = config.get("method") or kind
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(2)}"
        run = Run(self.home / run_id)
        run.dir.mkdir(parents=True)
        write_json(run.dir / "config.json", {**config, "kind": kind, "run_id": run_id})
        run.set_status("queued", created=time.time(), pid=None, step=0, total_steps=None)
        with closing(self._db()) as db, db:
            db.execute("insert into runs (id, kind, method, dataset, model, seed, status, created, parent) "
                       "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, kind, config.get("method"), config.get("dataset"), config.get("model"),
                        config.get("seed"), "queued", time.time(), parent))
        return run

    def get(self, run_id: str) -> Run:
        run = Run(self.home / run_id)
        if not run_id or "/" in run_id or run_id.startswith(".") or not (run.dir / "config.json").exists():
            raise RunError(f"no run {quoted(run_id)} in {self.home}; `python -m engine runs list` shows the runs")
        self._reconcile_one(run)
        return run

    def update_index(self, run: Run) -> None:
        """Copy a run's status and summary metrics into the index."""
        status, results = run.status, run.results
        summary = {k: v for k, v in results.items() if isinstance(v, (int, float, str)) or v is None}
        with closing(self._db()) as db, db:
            db.execute("update runs set status=?, finished=?, dev_accuracy=?, advglue_sst2_accuracy=?, summary=? "
                       "where id=?",
                       (status.get("status"), status.get("finished"), results.get("dev_accuracy"),
                        results.get("advglue_sst2_accuracy"), json.dumps(summary), run.id))

    def sync(self, run_id: str) -> None:
        """Bring the index in line with a run folder written by another process (a cluster task): copy its
        status, or drop its row when the folder is gone."""
        run = Run(self.home / run_id)
        if (run.dir / "config.json").exists():
            self.update_index(run)
        else:
            with closing(self._db()) as db, db:
                db.execute("delete from runs where id=?", (run_id,))

    def list(self, kind: str | None = None, status: str | None = None, method: str | None = None,
             parent: str | None = None, model: str | None = None) -> list[dict]:
        """Index rows, newest first. Read-only: a run whose worker died shows as failed here, and is recorded
        as failed when it is opened (`get`) or the store is reconciled."""
        query, args = "select * from runs where 1=1", []
        for column, value in (("kind", kind), ("method", method), ("parent", parent), ("model", model)):
            if value is not None:
                query += f" and {column}=?"
                args.append(value)
        if status is not None:   # active rows too: one may really be failed
            query += f" and (status=? or status in ({', '.join('?' * len(ACTIVE))}))"
            args += [status, *ACTIVE]
        with closing(self._db()) as db:
            rows = [dict(r) for r in db.execute(query + " order by created desc", args)]
        shown = []
        for row in rows:
            if row["status"] in ACTIVE:
                run = Run(self.home / row["id"])
                if not run.dir.exists():
                    continue
                if stale_reason(run.status):
                    row["status"] = "failed"
            if status is None or row["status"] == status:
                row["summary"] = json.loads(row["summary"] or "{}")
                shown.append(row)
        return shown

    # -- lifecycle

    def reconcile(self) -> list[str]:
        """Mark runs recorded as queued or running whose process is gone as failed; keep all they wrote."""
        with closing(self._db()) as db:
            ids = [r["id"] for r in db.execute("select id from runs where status in ('queued', 'running')")]
        return [run_id for run_id in ids if self._reconcile_one(Run(self.home / run_id))]

    def _reconcile_one(self, run: Run) -> bool:
        status = run.status
        if not run.dir.exists():
            with closing(self._db()) as db, db:
                db.execute("delete from runs where id=?", (run.id,))
            return True
        reason = stale_reason(status)
        if reason is None:
            return False
        run.set_status("failed", finished=time.time(), error=reason)
        if reason == WORKER_GONE:
            run.log("marked failed: worker process is gone")
        self.update_index(run)
        return True

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        if run.status.get("status") in ACTIVE:
            raise RunError(f"run {run_id} is {run.status['status']}; cancel it first "
                           f"(`python -m engine cancel {run_id}`), then delete it")
        shutil.rmtree(run.dir)
        with closing(self._db()) as db, db:
            db.execute("delete from runs where id=?", (run_id,))

    def export_zip(self, run_id: str, out: Path | str) -> Path:
        """The whole run folder (config, metrics, artifacts, model) as one zip at `out`, or inside `out` when it
        is a folder: regular files only, never through a link, no temporary files (`engine.run_export`)."""
        from engine.run_export import export_run

        return export_run(self.get(run_id).dir, out)
