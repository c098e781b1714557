"""The files of a run folder that may leave it, in an export zip or a run archive: regular files only, found and
opened without ever following a link, and no temporary files.

A run folder holds what the store wrote, but anyone can put a link there: `log.txt -> ../OTHER/results.json` or
`x -> ../index.sqlite` would ship another run or the whole index. So a folder is walked with `os.fwalk` (which
never descends through a link), every file is checked with lstat and opened with O_NOFOLLOW, and the opened file
must be the one checked. A hard link (a file with a second name, perhaps outside the run) is left out too.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def is_real_run_dir(path: Path) -> bool:
    """A folder itself, not a link to one (nor a file): the only kind of run folder the store writes into,
    deletes, packs or exports. A link must be unlinked, never followed."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def is_temporary(name: str) -> bool:
    """A file being written (`.status.json.123.tmp`, `model.safetensors.tmp`) or hidden: never part of a run."""
    return name.startswith(".") or name.endswith(".tmp")


def run_files(run_dir: Path) -> Iterator[tuple[str, BinaryIO, os.stat_result]]:
    """(name relative to the run folder with '/', the open file, its stat) for each regular file, sorted by name
    within each folder. The file is closed when the next one is asked for. Nothing when `run_dir` is a link."""
    if not is_real_run_dir(run_dir):
        return
    for folder, dirs, names, dir_fd in os.fwalk(run_dir, follow_symlinks=False):
        dirs[:] = sorted(d for d in dirs if not is_temporary(d))
        prefix = Path(folder).relative_to(run_dir).as_posix()
        for name in sorted(names):
            if is_temporary(name):
                continue
            opened = _open_regular(name, dir_fd)
            if opened is None:
                continue
            with opened as f:
                yield (name if prefix == "." else f"{prefix}/{name}"), f, os.fstat(f.fileno())


def _open_regular(name: str, dir_fd: int) -> BinaryIO | None:
    """`name` in the folder `dir_fd` opened for reading when it is a regular file with one name, else None."""
    try:
        before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode) or before.st_nlink != 1:
            return None   # a link, fifo, device or socket (opening some has effects), or a hard link
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(after.st_mode):
        os.close(fd)
        return None   # swapped between the check and the open
    return os.fdopen(fd, "rb")
