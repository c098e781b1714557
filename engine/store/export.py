"""A run folder as one zip for a person to download or keep (`runs export`, the Runs page's download button).

Only what `engine.store.files` lets out goes in: regular files, never through a link, no temporary files. A zip
holds dates from 1980 to 2107 only, so a file dated outside (a 1970 mtime from a copy tool) is stored at the
nearest end instead of failing the export. The zip is written beside its destination under a dot name and
renamed into place; a failure removes it, so no half zip or `.tmp` stays behind.
"""
from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

from engine.store.errors import RunError
from engine.store.files import is_real_run_dir, run_files
from engine.user_text import quoted

ZIP_FIRST = (1980, 1, 1, 0, 0, 0)
ZIP_LAST = (2107, 12, 31, 23, 59, 58)
COPY_BYTES = 1024 * 1024
PATH_CHARS = 240
LEFT_OUT_FILE = "LEFT-OUT.txt"
LEFT_OUT_HEADER = ("RobustLab exports only a run's own regular files. These were in the run folder and are not in "
                   "this zip:\n")   # a path is echoed whole unless it is absurd: its end says the most


def zip_date(mtime: float) -> tuple[int, int, int, int, int, int]:
    """A file time as a zip entry's local date, clamped to what a zip can hold."""
    try:
        date = tuple(time.localtime(mtime)[:6])
    except (OverflowError, OSError, ValueError):
        return ZIP_FIRST if mtime < 0 else ZIP_LAST
    return max(ZIP_FIRST, min(ZIP_LAST, date))


def zip_destination(out: Path | str, run_id: str) -> Path:
    """Where the zip goes: `out` itself, or RUN_ID.zip inside it when `out` is a folder (or is written as one,
    ending in a slash)."""
    text = str(out)
    path = Path(out)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / f"{run_id}.zip"
    return path


def export_run(run_dir: Path, out: Path | str) -> Path:
    """Write the run folder `run_dir` as a zip at `out` (see `zip_destination`); the zip's path."""
    run_id = run_dir.name
    if not is_real_run_dir(run_dir):
        raise RunError(f"run {quoted(run_id)} is not a folder of its own (a link?); it is not exported")
    out = zip_destination(out, run_id)
    if out.is_dir():
        raise RunError(f"cannot write the zip at {quoted(str(out), PATH_CHARS)}: a folder of that name is there")
    if (blocker := next((p for p in out.parents if p.exists()), None)) is not None and not blocker.is_dir():
        raise RunError(f"cannot write the zip at {quoted(str(out), PATH_CHARS)}: {quoted(str(blocker), PATH_CHARS)} "
                       "is a file, not a folder")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    left_out: list[str] = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, file, info in run_files(run_dir, left_out):
                entry = zipfile.ZipInfo(f"{run_id}/{name}", date_time=zip_date(info.st_mtime))
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                with zf.open(entry, "w", force_zip64=info.st_size > zipfile.ZIP64_LIMIT // 2) as sink:
                    left = info.st_size   # what the file held when looked at: a running run keeps appending
                    while left > 0 and (block := file.read(min(COPY_BYTES, left))):
                        sink.write(block)
                        left -= len(block)
            if left_out:   # said in the zip itself, so whoever opens it knows what it does not hold
                zf.writestr(f"{run_id}/{LEFT_OUT_FILE}", LEFT_OUT_HEADER + "".join(f"{n}\n" for n in left_out))
        os.replace(tmp, out)
    except OSError as err:
        raise RunError(f"cannot write the zip at {quoted(str(out), PATH_CHARS)}: {err.strerror or err}") from err
    finally:
        _remove(tmp)
    return out


def _remove(path: Path) -> None:
    """Remove a file if it is there (a path under a file, which makes unlink fail, has nothing to remove)."""
    try:
        path.unlink()
    except OSError:
        pass
