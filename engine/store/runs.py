"""The run store: a folder per run, indexed by SQLite so a page can list thousands of runs at once.

    runs/index.sqlite           a cache of the folders: id, kind, method, dataset, model, seed, status, created,
                                summary metrics (engine/store/index.py: rebuilt from the folders when lost or damaged)
    runs/<id>/config.json       everything needed to reproduce the run, with its kind, run_id and parent
    runs/<id>/status.json       status (queued, running, done, failed, cancelled), created, finished, pid, progress
    runs/<id>/metrics.jsonl     one line per scalar: step, split, name, value
    runs/<id>/results.json      final metrics and the final status
    runs/<id>/artifacts/*.npz   arrays recorded during training
    runs/<id>/model/            model.safetensors + tokenizer + config
    runs/<id>/log.txt           human-readable log

Every write is append-only or atomic (temporary file, then rename), so a killed worker never leaves a
half-written file behind. Every read distrusts the file (engine/store/health.py): a run with a file that cannot be read
as what it should hold is listed as "damaged" with the reason (`Run.damage`), and can still be shown, exported and
deleted.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.paths import runs_home
from engine.store.errors import RunError
from engine.store.export import export_run
from engine.store.health import FolderFacts, inspect_folder, load_arrays, load_json, load_jsonl, status_problems
from engine.store.index import RunIndex, row_of, rows_from_folders
from engine.store.swap import recover_leftovers
from engine.user_text import quoted

ACTIVE = ("queued", "running")
WORKER_GONE = ("the worker process ended without finishing (killed or crashed); everything it recorded before that "
               "is kept")
NO_WORKER = "no worker ever started for this run"
CANCELLED_GONE = "cancelled: the worker ended after Cancel without recording its end"
FINAL = ("done", "cancelled", "failed")
DAMAGED = "damaged"
ID_ATTEMPTS = 20
# a Ray task on a store every node shares keeps its own index here: SQLite must not sit on a network filesystem
NODE_INDEX_VARIABLE = "ROBUSTLAB_NODE_INDEX"


# ---------------------------------------------------------------- atomic file helpers

def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, default=_json_default))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)   # a full disk leaves no half-written temporary file behind
        raise


def read_json(path: Path, default: Any = None, expect: type | None = None) -> Any:
    """A JSON file's value, or `default` when it is missing, unreadable, not UTF-8, not JSON, or not of type
    `expect`. A dict or list `default` expects its own type: `read_json(path, {})` is never a list."""
    if expect is None and isinstance(default, (dict, list)):
        expect = type(default)
    value, _ = load_json(path, expect)
    return default if value is None else value


def read_jsonl(path: Path) -> list[dict]:
    """The records (JSON objects) of an append-only JSONL file; a torn last line (a killed writer), a line that is
    not UTF-8 or not a JSON object is skipped (`engine.store.health.load_jsonl` says which)."""
    return load_jsonl(path)[0]


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


def process_start(pid: int) -> float | None:
    """When process `pid` started, as the system counts it (Linux: clock ticks since boot, /proc/PID/stat field 22;
    elsewhere psutil's create_time); None when there is no such process. Together with the PID it names one
    process: a PID the system hands out again belongs to a process with another start."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return float(fields[19])   # field 22; the fields after the command name start at field 3
    except FileNotFoundError:
        return None
    except (OSError, IndexError, ValueError):
        pass
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:   # psutil.NoSuchProcess, AccessDenied, a platform without it
        return None


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """The status fields that name a worker process (this one by default): its PID and when it started."""
    pid = pid or os.getpid()
    return {"pid": pid, "pid_started": process_start(pid), "host": socket.gethostname()}


def pid_alive(pid: int | None, started: float | None = None) -> bool:
    """Whether process `pid` runs (a zombie does not). With `started` (recorded by `process_identity`), only the
    process that started then counts: a PID reused by another process reads as dead."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is not None and process_start(pid) != started:
        return False
    try:  # a zombie child of this process is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return started is None or process_start(pid) is not None


def worker_alive(status: dict) -> bool:
    """Whether the worker a run's status names is alive and is the process that was recorded; a pid or start
    that is not a number names no process of ours."""
    pid, started = status.get("pid"), status.get("pid_started")
    if type(pid) is not int or (started is not None and type(started) not in (int, float)):
        return False
    return pid_alive(pid, started)


def stale_reason(status: dict) -> str | None:
    """Why a run recorded as queued or running is neither (its worker is gone, or never started), or None.
    A run queued for the dispatcher (`waiting`) has no worker yet and is not stale."""
    if status.get("status") not in ACTIVE:
        return None
    if status.get("host", socket.gethostname()) != socket.gethostname():
        return None   # a process on another machine (a cluster node): the job that started it records its end
    if status.get("pid"):
        return None if worker_alive(status) else WORKER_GONE
    if status.get("status") == "queued" and status.get("waiting") == "dispatch":
        return None
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

    @property
    def damage(self) -> str | None:
        """Why some file of this run cannot be read as what it should hold (one line naming each), or None."""
        facts = inspect_folder(self.dir)
        return facts.damage if facts else "config.json is missing"

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
            return (self.dir / "log.txt").read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def append_metrics(self, rows: list[dict]) -> None:
        if rows:
            with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
                f.flush()

    def metrics(self) -> list[dict]:
        """All logged scalars (lines that are not a scalar's record are left out: `damage` names them)."""
        return load_jsonl(self.dir / "metrics.jsonl", ("step", "split", "name", "value"))[0]

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
        return load_arrays(self.dir / "artifacts" / f"{name}.npz")   # unreadable: {} (`damage` says so)

    def write_artifact(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        (self.dir / "artifacts").mkdir(exist_ok=True)
        write_npz(self.dir / "artifacts" / f"{name}.npz", arrays)

    def has_model(self) -> bool:
        return (self.dir / "model" / "model.safetensors").exists()


def finished_status(run: Run) -> str | None:
    """The final status a run's results.json records (done, cancelled, failed), or None. A job writes its results
    before its status: a worker killed in between left a complete run that this still reads as finished."""
    status = read_json(run.dir / "results.json", {}).get("status")
    return status if status in FINAL else None


def _plain_id(run_id: Any) -> bool:
    """An index row's id names a folder right under the store (the index file is not trusted either)."""
    return isinstance(run_id, str) and bool(run_id) and "/" not in run_id and not run_id.startswith(".")


def _shown_row(row: dict, facts: FolderFacts) -> dict:
    """An index row as `list` shows it: what the folder says wins; the index keeps what an unreadable config lost."""
    fresh = row_of(row["id"], facts)
    shown = {**row, **{k: v for k, v in fresh.items() if v is not None or k in ("status", "finished", "dev_accuracy",
                                                                              "advglue_accuracy")}}
    shown["summary"] = json.loads(fresh["summary"])
    shown["damage"] = facts.damage
    if facts.damage:
        shown["status"] = DAMAGED
    elif shown["status"] in ACTIVE and stale_reason(facts.status):
        final = facts.results.get("status")
        shown["status"] = final if final in FINAL else "failed"
    elif shown["status"] is None:
        shown["status"] = "unknown"
    shown["kind"] = shown.get("kind") or "unknown"
    return shown


# ---------------------------------------------------------------- the store

class RunStore:
    """All runs under one home folder: the folders hold everything, the index (`RunIndex`) is a cache of them."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home) if home else runs_home()
        self.home.mkdir(parents=True, exist_ok=True)
        recover_leftovers(self.home)   # what a killed archive receive or run swap left behind
        node_index = os.environ.get(NODE_INDEX_VARIABLE)
        self.index = RunIndex(Path(node_index) if node_index else self.home / "index.sqlite", self.home)
        self.index.open(sync=not node_index)

    # -- creating and finding

    def create(self, config: dict, kind: str = "train", parent: str | None = None) -> Run:
        run = self._new_run_folder(config.get("method") or kind)
        run_id = run.id
        write_json(run.dir / "config.json", {**config, "kind": kind, "run_id": run_id, "parent": parent})
        run.set_status("queued", created=time.time(), pid=None, step=0, total_steps=None)
        self.update_index(run)
        return run

    def _new_run_folder(self, label: str) -> Run:
        """A new, empty run folder: time, label and 32 random bits, made with an exclusive mkdir; a name another
        process took first is drawn again, so two creates never share a folder."""
        for _ in range(ID_ATTEMPTS):
            run = Run(self.home / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{secrets.token_hex(4)}")
            try:
                run.dir.mkdir()
                return run
            except FileExistsError:
                continue
        raise RunError(f"could not find a free run id in {self.home} after {ID_ATTEMPTS} tries")

    def get(self, run_id: str) -> Run:
        run = Run(self.home / run_id)
        if not run_id or "/" in run_id or run_id.startswith(".") or not (run.dir / "config.json").exists():
            raise RunError(f"no run {quoted(run_id)} in {self.home}; `python -m engine runs list` shows the runs")
        if run.dir.is_symlink():   # its writes would land in whatever it points at (another run, say)
            raise RunError(f"run {quoted(run_id)} is a link to another folder, which RobustLab never follows; "
                           f"`python -m engine runs delete {run_id}` removes the link (not what it points at)")
        self._reconcile_one(run)
        return run

    def update_index(self, run: Run) -> None:
        """Copy what a run's folder says (status, summary metrics, and its config's fields) into the index. The
        index is a cache: when it cannot be written (a full disk) the folder still holds everything."""
        facts = inspect_folder(run.dir)
        if facts is not None:
            self.index.upsert(run.id, facts)

    def sync(self, run_id: str) -> None:
        """Bring the index in line with a run folder written by another process (a cluster task): copy its
        status, or drop its row when the folder is gone."""
        run = Run(self.home / run_id)
        if (run.dir / "config.json").exists():
            self.update_index(run)
        else:
            self.index.delete(run_id)

    def reindex(self) -> dict[str, Any]:
        """Rebuild the index from the run folders (`python -m engine runs reindex`): how many runs it holds now,
        and which of them are damaged (id -> reason)."""
        count = self.index.reindex()
        if count is None:
            raise RunError(f"the index {self.index.path} could not be rebuilt: {self.index.problem}")
        damaged = {row["id"]: row["damage"] for row in self.list() if row["damage"]}
        return {"index": str(self.index.path), "runs": count, "damaged": damaged}

    def list(self, kind: str | None = None, status: str | None = None, method: str | None = None,
             parent: str | None = None, model: str | None = None) -> list[dict]:
        """Index rows, newest first, each brought in line with its folder: its status as the folder says (a run
        whose worker died shows as failed, or as done when its results were complete), `damage` (None, or why a
        file cannot be read; its status is then "damaged"). A row whose folder is gone is left out. Read-only:
        the dead worker's run is recorded as failed when it is opened (`get`) or the store is reconciled. When the
        index cannot be read (a full disk) the folders are read instead."""
        filters = {column: value for column, value in
                   (("kind", kind), ("method", method), ("parent", parent), ("model", model)) if value is not None}
        indexed = self.index.select(filters)
        if indexed is None:
            found = rows_from_folders(self.home)
        else:
            found = [(row, inspect_folder(self.home / row["id"])) for row in indexed if _plain_id(row["id"])]
        shown = []
        for row, facts in found:
            if facts is None:
                continue   # its folder is gone
            row = _shown_row(row, facts)
            if all(row[column] == value for column, value in filters.items()) and status in (None, row["status"]):
                shown.append(row)
        return shown

    # -- lifecycle

    def reconcile(self) -> list[str]:
        """Mark runs recorded as queued or running whose process is gone as failed (done, when they had written
        their results); keep all they wrote."""
        indexed = self.index.select({})
        ids = [row["id"] for row, _ in rows_from_folders(self.home)] if indexed is None else \
            [row["id"] for row in indexed if _plain_id(row["id"])]
        active = [run_id for run_id in ids
                  if (facts := inspect_folder(self.home / run_id)) and not facts.damage
                  and facts.status.get("status") in ACTIVE]
        return [run_id for run_id in active if self._reconcile_one(Run(self.home / run_id))]

    def _reconcile_one(self, run: Run) -> bool:
        if not run.dir.exists():
            self.index.delete(run.id)
            return True
        if run.damage:
            return False   # nothing is written into a run whose files cannot be trusted; `list` says it is damaged
        reason = stale_reason(run.status)
        if reason is None:
            return False
        final = finished_status(run)
        try:
            if final:
                run.set_status(final, finished=(run.dir / "results.json").stat().st_mtime)
                run.log(f"recorded as {final}: the worker ended after writing its results")
            elif reason == WORKER_GONE and run.status.get("kill_after") is not None:
                # a Cancel was asked for and the worker is gone (stopped, or killed by the Cancel's escalation,
                # which may be recording the same at this moment): cancelled, never "failed"
                run.set_status("cancelled", finished=time.time(), error=run.status.get("kill_sent") or CANCELLED_GONE)
                run.log("recorded as cancelled: the worker ended after Cancel without recording its end")
            else:
                run.set_status("failed", finished=time.time(), error=reason)
                if reason == WORKER_GONE:
                    run.log("marked failed: worker process is gone")
        except OSError:
            return False   # a full disk: `list` still shows what the folder means
        self.update_index(run)
        return True

    def delete(self, run_id: str) -> None:
        link = self.home / run_id
        if run_id and "/" not in run_id and not run_id.startswith(".") and link.is_symlink():
            link.unlink()   # the link only: what it points at is not this store's to delete
            self.index.delete(run_id)
            return
        run = self.get(run_id)
        status = run.status   # a status with a garbage pid or time says nothing about a worker: it does not block
        if status.get("status") in ACTIVE and not status_problems(status):
            raise RunError(f"run {run_id} is {run.status['status']}; cancel it first "
                           f"(`python -m engine cancel {run_id}`), then delete it")
        children = [row["id"] for row in self.list(parent=run_id) if row["status"] in ACTIVE]
        if children:
            raise RunError(f"run {run_id} has {len(children)} run(s) still working on it ({', '.join(children[:3])}); "
                           f"cancel them first (`python -m engine cancel {children[0]}`), then delete it")
        try:
            shutil.rmtree(run.dir)
        except OSError as err:
            raise RunError(f"run {run_id} could not be deleted entirely ({err.strerror or err}): {run.dir}") from err
        self.index.delete(run_id)

    def export_zip(self, run_id: str, out: Path | str) -> Path:
        """The whole run folder (config, metrics, artifacts, model) as one zip at `out`, or inside `out` when it
        is a folder: regular files only, never through a link, no temporary files (`engine.store.export`)."""
        return export_run(self.get(run_id).dir, out)
