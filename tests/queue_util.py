"""Waiting on the job queue in tests: hold every worker slot so submitted runs stay queued, and poll a condition.

Import it as `queue_util` (see browser_util for why not `tests.queue_util`)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def slots_held(home: Path, slots: int = 1) -> Iterator[None]:
    """Hold every worker slot's lock, so submitted runs stay queued until the block ends."""
    (home / ".slots").mkdir(parents=True, exist_ok=True)
    fds = [os.open(home / ".slots" / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR) for slot in range(slots)]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, poll: float = 0.3,
             about: str | Callable[[], str] = "") -> Any:
    """`predicate()` once it is truthy; an AssertionError saying `about` after `timeout` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting {about() if callable(about) else about}".rstrip())
