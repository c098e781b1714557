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


def run_files(run_dir: Path, left_out: list[str] | None = None) -> Iterator[tuple[str, BinaryIO, os.stat_result]]:
    """(name relative to the run folder with '/', the open file, its stat) for each regular file, sorted by name
    within each folder. The file is closed when the next one is asked for. Nothing when `run_dir` is a link.
    `left_out` gets "NAME (why)" for each entry that is not a temporary file and was left out, so an export can
    say what it does not hold."""
    if not is_real_run_dir(run_dir):
        return
    skipped = left_out if left_out is not None else []
    for folder, dirs, names, dir_fd in os.fwalk(run_dir, follow_symlinks=False):
        prefix = Path(folder).relative_to(run_dir).as_posix()
        base = "" if prefix == "." else f"{prefix}/"
        skipped += [f"{base}{d} (a link to a folder)" for d in sorted(dirs)
                    if not is_temporary(d) and _is_link(d, dir_fd)]
        dirs[:] = sorted(d for d in dirs if not is_temporary(d))
        for name in sorted(names):
            if is_temporary(name):
                continue
            opened, why = _open_regular(name, dir_fd)
            if opened is None:
                skipped.append(f"{base}{name} ({why})")
                continue
            with opened as f:
                yield f"{base}{name}", f, os.fstat(f.fileno())


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_regular(name: str, dir_fd: int) -> tuple[BinaryIO | None, str]:
    """`name` in the folder `dir_fd` opened for reading when it is a regular file with one name; else None and
    why it is not read."""
    try:
        before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(before.st_mode):
            return None, "a symbolic link"
        if not stat.S_ISREG(before.st_mode):
            return None, "not a regular file"   # a fifo, device or socket: opening some has effects
        if before.st_nlink != 1:
            return None, "a hard link: a second name of a file that may belong elsewhere"
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as err:
        return None, f"unreadable: {err.strerror or err}"
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(after.st_mode):
        os.close(fd)
        return None, "changed while it was opened"
    return os.fdopen(fd, "rb"), ""
