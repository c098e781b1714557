"""Run folders as one archive, the way a Ray task and the suite's process hand runs to each other when the
nodes do not share a filesystem: the task packs the folders it wrote, streams the archive back in chunks through
Ray's object store, and the suite's process unpacks it into the run store and re-indexes each run.

Neither side trusts the other's archive: `engine.store.tar_unpack` unpacks by our own rules (regular files and folders
inside the expected run folders, within caps), and `receive` swaps each run in with `engine.store.swap`, so a kill
never leaves a run missing and a refused archive changes nothing in the store."""
from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.store.files import is_real_run_dir, run_files
from engine.store.runs import RunStore
from engine.store.swap import leftover_name, new_token, remove_path, replace_run
from engine.store.tar_unpack import DEFAULT_LIMITS, ArchiveError, ArchiveLimits, checked_run_ids, is_run_id, unpack

__all__ = ["ArchiveError", "ArchiveLimits", "CHUNK_BYTES", "chunks", "extract", "new_archive_file", "pack",
           "pack_bytes", "receive"]

CHUNK_BYTES = 32 * 1024 * 1024   # one object-store object per chunk: a BERT-base model is a dozen of them


def pack(home: Path, run_ids: Iterable[str], out: Path) -> Path:
    """The folders of `run_ids` under `home` (those that exist as real folders) as an uncompressed tar at `out`:
    weights barely compress, and a tar is written as fast as the disk goes. Only regular files travel, never
    through a link, and no temporary files (`engine.store.files`)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for run_id in run_ids:
            folder = home / run_id
            if not is_run_id(run_id) or not is_real_run_dir(folder):
                continue
            for name, file, info in run_files(folder):
                member = tarfile.TarInfo(f"{run_id}/{name}")
                member.size, member.mtime, member.mode = info.st_size, max(0, int(info.st_mtime)), 0o644
                tar.addfile(member, file)
    return out


def pack_bytes(home: Path, run_ids: Iterable[str]) -> bytes:
    """`pack` held in memory (the few small folders a task starts from)."""
    with tempfile.TemporaryDirectory(prefix="robustlab-pack-") as tmp:
        return pack(home, run_ids, Path(tmp) / "runs.tar").read_bytes()


def chunks(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(size):
            yield block


def new_archive_file(home: Path) -> tuple[int, Path]:
    """A new file in the store for an archive coming back from a task: (descriptor open for writing, path). Its
    name says which process owns it, so a store opened after that process is killed removes it."""
    path = home / leftover_name("archive", new_token())
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), path


def extract(archive: Path, into: Path, run_ids: Iterable[str], limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Unpack an archive made by `pack` into the new folder `into`, refusing anything but the folders of `run_ids`
    (`engine.store.tar_unpack.unpack`; ArchiveError says which member and why)."""
    unpack(archive, into, run_ids, limits)


def receive(store: RunStore, archive: Path, run_ids: Iterable[str], limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Put the folders of `run_ids` from `archive` into the store, replacing what was there, and re-index each.
    A run the archive lacks was removed where it ran (a reserved run its item never started): it goes here too.
    A refused archive raises ArchiveError and leaves the store as it was."""
    run_ids = checked_run_ids(run_ids)
    token = new_token()
    incoming = store.home / leftover_name("incoming", token)
    try:
        unpack(archive, incoming, run_ids, limits)
        for run_id in run_ids:
            new = incoming / run_id
            replace_run(store.home, run_id, new if is_real_run_dir(new) else None, token)
            store.sync(run_id)
    finally:
        remove_path(incoming)
