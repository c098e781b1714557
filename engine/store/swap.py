"""Replacing a run folder in the store without ever leaving the run missing, and tidying up after a kill.

A swap renames the old folder aside (`.replaced-*`), renames the new one in, then removes the old: killed at any
point, the store holds the old run, the new run, or the new run and an aside to remove. A run the new state
lacks is renamed aside as `.removed-*` before it is deleted. The other leftovers are an unpacked archive
(`.incoming-*`) and a received archive file (`.archive-*.tar`).

Each leftover's name carries its owner (a hash of the host name and the process id) and the operation's token, so
`recover_leftovers` (run when a `RunStore` opens) touches only those of a process on this host that is gone:
it puts back a run set aside whose place is empty, and removes the rest. Leftovers of a live process (a suite
receiving archives right now) or of another host sharing the folder are left alone.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

from engine.store.tar_unpack import is_run_id

OWNED = re.compile(r"\.(?P<kind>incoming|archive|replaced|removed)-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})"
                   r"-(?P<token>[0-9a-f]{8})(?:-(?P<run_id>.+?))?(?P<tar>\.tar)?")
OLD_STYLE = (".incoming-", ".archive-")   # names of the versions before owners were recorded
OLD_STYLE_STALE_SECONDS = 24 * 3600


def host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def new_token() -> str:
    """One swap or receive: every leftover it may leave shares this."""
    return secrets.token_hex(4)


def leftover_name(kind: str, token: str, run_id: str | None = None) -> str:
    """`.incoming-HOST-PID-TOKEN`, `.archive-HOST-PID-TOKEN.tar`, `.replaced-HOST-PID-TOKEN-RUN_ID`."""
    name = f".{kind}-{host_tag()}-{os.getpid()}-{token}"
    if run_id is not None:
        name += f"-{run_id}"
    return name + (".tar" if kind == "archive" else "")


def remove_path(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder tree; a missing one is fine."""
    try:
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)   # fd-based: never follows a link inside
    except FileNotFoundError:
        pass


def replace_run(home: Path, run_id: str, new: Path | None, token: str) -> None:
    """Put the folder `new` at home/run_id (or, with None, take the run away); the old folder, or link, is renamed
    aside first and removed last, so the run is never missing."""
    target = home / run_id
    aside = None
    if os.path.lexists(target):
        aside = home / leftover_name("replaced" if new is not None else "removed", token, run_id)
        os.rename(target, aside)   # renames a link itself, never its target
    if new is not None:
        try:
            os.rename(new, target)
        except OSError:
            if aside is not None:
                os.rename(aside, target)
            raise
    if aside is not None:
        remove_path(aside)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    try:   # a zombie has ended
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def recover_leftovers(home: Path) -> list[str]:
    """Clear what killed receives and swaps left in `home`: a run set aside is put back where its place is empty,
    everything else is removed. What was done, one line each (for the tests and a log)."""
    done = []
    try:
        entries = [entry.name for entry in os.scandir(home) if entry.name.startswith(".")]
    except OSError:
        return done
    for name in entries:
        path = home / name
        try:
            owned = OWNED.fullmatch(name)
            if owned is None:
                if name.startswith(OLD_STYLE) and time.time() - os.lstat(path).st_mtime > OLD_STYLE_STALE_SECONDS:
                    remove_path(path)
                    done.append(f"removed {name}")
                continue
            if owned["host"] != host_tag() or _process_alive(int(owned["pid"])):
                continue
            if (owned["kind"] == "archive") != bool(owned["tar"]) or (owned["kind"] in ("replaced", "removed")) \
                    != bool(owned["run_id"]):
                continue   # not a name this module writes
            run_id = owned["run_id"]
            if owned["kind"] == "replaced" and is_run_id(run_id) and not os.path.lexists(home / run_id):
                os.rename(path, home / run_id)
                done.append(f"put back {run_id}")
            else:
                remove_path(path)
                done.append(f"removed {name}")
        except OSError:
            continue   # another process got there first, or no permission: the store still opens
    return done
