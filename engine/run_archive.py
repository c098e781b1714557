"""Run folders as one archive, the way a Ray task and the suite's process hand runs to each other when the
nodes do not share a filesystem: the task packs the folders it wrote, streams the archive back in chunks through
Ray's object store, and the suite's process unpacks it into the run store and re-indexes each run."""
from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.runs import RunStore

CHUNK_BYTES = 32 * 1024 * 1024   # one object-store object per chunk: a BERT-base model is a dozen of them


def pack(home: Path, run_ids: Iterable[str], out: Path) -> Path:
    """The folders of `run_ids` under `home` (those that exist) as an uncompressed tar at `out`: weights barely
    compress, and a tar is written as fast as the disk goes. Temporary files (dot names) are left out."""
    with tarfile.open(out, "w") as tar:
        for run_id in run_ids:
            folder = home / run_id
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not any(part.startswith(".") for part in path.relative_to(home).parts):
                    tar.add(path, arcname=str(path.relative_to(home)), recursive=False)
    return out


def pack_bytes(home: Path, run_ids: Iterable[str]) -> bytes:
    """`pack` held in memory (the few small folders a task starts from)."""
    with tempfile.TemporaryDirectory(prefix="robustlab-pack-") as tmp:
        return pack(home, run_ids, Path(tmp) / "runs.tar").read_bytes()


def chunks(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(size):
            yield block


def extract(archive: Path, into: Path) -> None:
    """Unpack an archive made by `pack` into `into` (no absolute paths or links: tarfile's data filter)."""
    with tarfile.open(archive, "r") as tar:
        tar.extractall(into, filter="data")


def receive(store: RunStore, archive: Path, run_ids: Iterable[str]) -> None:
    """Put the folders of `run_ids` from `archive` into the store, replacing what was there, and re-index each.
    A run the archive lacks was removed where it ran (a reserved run its item never started): it goes here too."""
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=store.home))
    try:
        extract(archive, incoming)
        for run_id in run_ids:
            target = store.home / run_id
            shutil.rmtree(target, ignore_errors=True)
            if (incoming / run_id).is_dir():
                (incoming / run_id).replace(target)
            store.sync(run_id)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
