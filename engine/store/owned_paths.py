"""The folders a page may read a file from: the upload folder and the data folder, nothing else on the server.

The command line reads any file its user names (the user can read it anyway); a page is used by whoever reaches
the dashboard, so a `csv:PATH` typed there (an evaluation set, a suite file's "sentences") is resolved, symlinks
and `..` included, and refused unless it lies inside one of these folders. Otherwise a page would copy a private
file into a run's cases, which the page shows and exports.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from engine.paths import data_dir, runs_home
from engine.user_text import quoted


class OutsideRootsError(ValueError):
    """A path a page named lies outside the folders it may read."""


def uploads_dir() -> Path:
    """Where uploaded CSVs are kept, in the run store."""
    return runs_home() / "uploads"


def page_roots() -> tuple[Path, ...]:
    """The folders a page may read a named file from."""
    return uploads_dir(), data_dir()


def inside(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """`path` resolved (symlinks followed, `..` gone), when it lies inside one of `roots` (resolved too);
    OutsideRootsError otherwise."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as err:   # a symlink loop, a name too long
        raise OutsideRootsError(f"{quoted(os.fspath(path))} cannot be read from a page ({type(err).__name__})") \
            from None
    for root in roots:
        if resolved.is_relative_to(Path(root).expanduser().resolve()):
            return resolved
    raise OutsideRootsError(f"{quoted(os.fspath(path))} is outside the folders a page reads (the upload folder and "
                            f"the data folder); upload the file on the Train page, or use the command line")
