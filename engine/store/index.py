"""The run store's SQLite index: a cache of the run folders, so a page can filter and sort thousands of runs.

The folders are the truth; everything here can be rebuilt from them (`rows_from_folders`, `RunIndex.rebuild`).
The index never stops a read: a file that is not an SQLite database is moved aside (`index.sqlite.damaged-<time>`,
never deleted) and rebuilt; an index that cannot be opened or written (a full disk, a read-only folder, a lock held
too long) makes `select` answer None, and the store reads the folders instead. WAL mode is set once, when the index
is created, so opening it never needs a write.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from engine.store.health import FolderFacts, inspect_folder

COLUMNS = ("id", "kind", "method", "dataset", "model", "seed", "status", "created", "finished", "dev_accuracy",
           "advglue_accuracy", "summary", "parent")
SCHEMA = """
create table if not exists runs (
    id text primary key, kind text, method text, dataset text, model text, seed integer,
    status text, created real, finished real, dev_accuracy real, advglue_accuracy real,
    summary text, parent text
)"""
# columns an older index named otherwise (old name -> new): such an index is upgraded in place and every row re-read
# from its folder (`RunIndex.upgrade`). advglue_sst2_accuracy was SST-2's only; advglue_accuracy is every task's.
RENAMED = {"advglue_sst2_accuracy": "advglue_accuracy"}
# what a run's config fixes: kept from the index when its config.json can no longer be read
_FROM_CONFIG = ("kind", "method", "dataset", "model", "seed", "created", "parent")
UPSERT = (f"insert into runs ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))}) on conflict(id) do "
          "update set " + ", ".join(f"{c}=coalesce(excluded.{c}, {c})" if c in _FROM_CONFIG else f"{c}=excluded.{c}"
                                    for c in COLUMNS[1:]))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _advglue(results: dict[str, Any]) -> float | None:
    """The run's own task's AdvGLUE accuracy as training stores it (`advglue_accuracy`); a results.json from before
    that field: an SST-2 run's `advglue_sst2_accuracy` (other tasks' old per-set keys are scored by
    `engine.data.advglue.results_accuracy` where a page reads them; the index, below the data layer, does not)."""
    value = results.get("advglue_accuracy", results.get("advglue_sst2_accuracy"))
    return _number(value)


def row_of(run_id: str, facts: FolderFacts) -> dict[str, Any]:
    """A run's index row, from what its folder says (a field of the wrong type is None)."""
    config, status, results = facts.config, facts.status, facts.results
    seed, created = config.get("seed"), _number(status.get("created"))
    summary = {k: v for k, v in results.items() if isinstance(v, (int, float, str)) or v is None}
    return {"id": run_id, "kind": _text(config.get("kind")), "method": _text(config.get("method")),
            "dataset": _text(config.get("dataset")), "model": _text(config.get("model")),
            "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            "status": _text(status.get("status")), "created": created if created is not None else facts.config_written,
            "finished": _number(status.get("finished")), "dev_accuracy": _number(results.get("dev_accuracy")),
            "advglue_accuracy": _advglue(results), "summary": json.dumps(summary),
            "parent": _text(config.get("parent"))}


def run_folders(home: Path) -> Iterator[Path]:
    """The folders under `home` that may be runs (hidden ones are the store's own: slots, incoming archives)."""
    try:
        entries = list(os.scandir(home))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


def rows_from_folders(home: Path) -> list[tuple[dict[str, Any], FolderFacts]]:
    """Every run folder's index row with what its folder says, newest first."""
    found = []
    for folder in run_folders(home):
        facts = inspect_folder(folder)
        if facts is not None:
            found.append((row_of(folder.name, facts), facts))
    return sorted(found, key=lambda pair: pair[0]["created"] or 0.0, reverse=True)


class WrongSchema(sqlite3.DatabaseError):
    """An SQLite file whose `runs` table is not this store's: as useless as garbage, and repaired the same way."""


def _columns(db: sqlite3.Connection) -> set[str]:
    return {r[1] for r in db.execute("pragma table_info(runs)")}


def _outdated(db: sqlite3.Connection, tables: set[str]) -> bool:
    """An index written before a column was renamed (`RENAMED`): upgraded, not treated as damaged."""
    if "runs" not in tables:
        return False
    columns = _columns(db)
    return any(old in columns and new not in columns for old, new in RENAMED.items())


def _check_schema(db: sqlite3.Connection, tables: set[str]) -> None:
    if "runs" in tables and not _outdated(db, tables):
        if missing := [c for c in COLUMNS if c not in _columns(db)]:
            raise WrongSchema(f"its runs table lacks the columns {', '.join(missing)}")


def _damaged(err: sqlite3.Error) -> bool:
    """True for an index file that is no SQLite database (garbage, or a corrupted page); False for one that is
    merely out of reach now (disk full or I/O error, read-only, locked)."""
    return isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError)


class RunIndex:
    """The index file of one store. Every method survives an unusable file: reads answer None, writes False."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path, self.home = Path(path), Path(home)
        self.problem: str | None = None   # why the last use of the index failed, for messages and tests
        self.moved_aside: Path | None = None
        self.sync = True

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def open(self, sync: bool = True) -> None:
        """Make sure the index exists (a file that is no database is moved aside and made again) and, with `sync`,
        that it holds a row for every run folder and none for a folder gone: a deleted, emptied or rebuilt index
        fills itself from the folders. Failing to write (a full disk) is no error: the store then reads the
        folders. A node's own index (a Ray task's) is opened without `sync`: it only ever holds the task's runs."""
        self.sync = sync
        try:
            self._prepare(sync)
        except sqlite3.Error as err:
            if not _damaged(err):
                self.problem = f"{type(err).__name__}: {err}"
                return
            self.repair(err)

    def _prepare(self, sync: bool) -> None:
        with closing(self._connect()) as db:
            tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
            _check_schema(db, tables)
            if _outdated(db, tables):
                self.upgrade(db)
                _check_schema(db, tables)   # an index older still, lacking other columns: damaged after all
            if "runs" not in tables:
                with db:
                    db.execute(SCHEMA)
                try:
                    db.execute("pragma journal_mode=wal")   # once, at creation: a reader never writes
                except sqlite3.OperationalError:
                    pass   # the default journal works too
            if not sync:
                return
            indexed = {r[0] for r in db.execute("select id from runs")}
            folders = {folder.name: folder for folder in run_folders(self.home)}
            missing = [folders[name] for name in folders.keys() - indexed]
            gone = indexed - folders.keys()
            if missing or gone:
                with db:
                    db.executemany("delete from runs where id=?", [(run_id,) for run_id in gone])
                    for folder in missing:
                        facts = inspect_folder(folder)
                        if facts is not None:
                            self._upsert(db, folder.name, facts)

    def upgrade(self, db: sqlite3.Connection) -> None:
        """Bring an index of an older schema up to this one: rename its columns (`RENAMED`) and re-read every run's
        row from its folder (an old column's values need not mean the new one's: advglue_sst2_accuracy was None
        for an RTE run). One process at a time; another may have done it meanwhile."""
        with self._lock():
            if not _outdated(db, {"runs"}):
                return
            with db:
                for old, new in RENAMED.items():
                    if old in _columns(db):
                        db.execute(f"alter table runs rename column {old} to {new}")
                for folder in run_folders(self.home):
                    facts = inspect_folder(folder)
                    if facts is not None:
                        self._upsert(db, folder.name, facts)

    def repair(self, err: sqlite3.Error) -> None:
        """Move a damaged index aside (kept for inspection, under `index.sqlite.damaged-<time>`) and rebuild it
        from the folders. Another process may have done it already: the file is only moved while still damaged."""
        with self._lock():
            try:
                with closing(self._connect()) as db:
                    _check_schema(db, {r[0] for r in db.execute("select name from sqlite_master where type='table'")})
                    if db.execute("pragma quick_check").fetchone()[0] == "ok":
                        return   # repaired meanwhile
            except sqlite3.Error as again:
                if not _damaged(again):
                    self.problem = f"{type(again).__name__}: {again}"
                    return
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
            n = 1
            while aside.exists():
                n += 1
                aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
            try:
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):   # a journal of the damaged file belongs with it
                    side = self.path.with_name(self.path.name + suffix)
                    if side.exists():
                        os.replace(side, aside.with_name(aside.name + suffix))
            except OSError as move_err:
                self.problem = f"the damaged index {self.path} could not be moved aside: {move_err}"
                return
            self.moved_aside = aside
            self.problem = f"the index was damaged ({err}); it was moved to {aside.name} and rebuilt"
        try:
            self._prepare(self.sync)
        except sqlite3.Error as again:
            self.problem = f"{type(again).__name__}: {again}"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One repair at a time among processes (none when the lock file cannot be made: a full disk)."""
        try:
            fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_CREAT | os.O_RDWR)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def rebuild(self, db: sqlite3.Connection) -> int:
        """Replace every row by what the folders say; returns how many runs were indexed."""
        found = rows_from_folders(self.home)
        with db:
            db.execute("delete from runs")
            for row, _ in found:
                db.execute(f"insert into runs ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})",
                           [row[c] for c in COLUMNS])
        return len(found)

    def _upsert(self, db: sqlite3.Connection, run_id: str, facts: FolderFacts) -> None:
        row = row_of(run_id, facts)
        db.execute(UPSERT, [row[c] for c in COLUMNS])

    def _use(self, action: str, *args: Any) -> Any:
        """Run one statement; on a damaged file repair and try once more; None when the index is out of reach."""
        for attempt in (1, 2):
            try:
                with closing(self._connect()) as db:
                    return getattr(self, action)(db, *args)
            except sqlite3.Error as err:
                if attempt == 1 and _damaged(err):
                    self.repair(err)
                    continue
                self.problem = f"{type(err).__name__}: {err}"
                return None
        return None

    # -- what the store asks

    def select(self, filters: dict[str, Any]) -> list[dict] | None:
        """Rows matching `filters` (column -> value), newest first; None when the index cannot be read."""
        return self._use("_select", filters)

    def _select(self, db: sqlite3.Connection, filters: dict[str, Any]) -> list[dict]:
        query, args = "select * from runs where 1=1", []
        for column, value in filters.items():
            if column not in COLUMNS:
                raise ValueError(f"no index column {column!r}")
            query += f" and {column}=?"
            args.append(value)
        return [dict(r) for r in db.execute(query + " order by created desc", args)]

    def upsert(self, run_id: str, facts: FolderFacts) -> bool:
        """Write a run's row from what its folder says; False when the index could not be written."""
        return self._use("_write_upsert", run_id, facts) is not None

    def _write_upsert(self, db: sqlite3.Connection, run_id: str, facts: FolderFacts) -> bool:
        with db:
            self._upsert(db, run_id, facts)
        return True

    def delete(self, run_id: str) -> bool:
        """Drop a run's row; False when the index could not be written."""
        return self._use("_delete", run_id) is not None

    def _delete(self, db: sqlite3.Connection, run_id: str) -> bool:
        with db:
            db.execute("delete from runs where id=?", (run_id,))
        return True

    def reindex(self) -> int | None:
        """Rebuild from the folders (`python -m engine runs reindex`); the number of runs, None when it failed."""
        return self._use("_rebuild_all")

    def _rebuild_all(self, db: sqlite3.Connection) -> int:
        db.execute("drop table if exists runs")   # every row is rewritten anyway; an older schema goes with them
        db.execute(SCHEMA)
        return self.rebuild(db)
