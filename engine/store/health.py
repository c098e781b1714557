"""Reading a run folder's files without trusting them, and saying what in a folder is damaged.

A run folder is the truth about its run (the SQLite index is a cache of it), so everything here reads the folder
itself. Any file may have been truncated, overwritten by hand or by another program, or filled with bytes that
are not text: each reader returns what it could read and, separately, one line saying what it could not. A run
with any such problem is "damaged": it is still listed, shown, exported and deleted, never a traceback.

`inspect_folder` is what `RunStore.list` calls for every row, so it remembers its answer per folder until a file
in it changes (size, modification time or inode).
"""
from __future__ import annotations

import json
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# the JSON files of a run folder and the type each holds
JSON_FILES: dict[str, type] = {"config.json": dict, "status.json": dict, "results.json": dict, "eval.json": dict}
METRIC_FIELDS = ("step", "split", "name", "value")
CACHE_LIMIT = 20_000   # folders remembered by inspect_folder before it starts again

_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
               float: "a number", type(None): "null"}


def type_name(value: Any) -> str:
    """What a JSON value is, in words (`a list`, `null`)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def load_json(path: Path, expect: type | None = None) -> tuple[Any, str | None]:
    """(the value, None) for a readable JSON file holding `expect` (any type when None); (None, None) when the file
    does not exist; (None, why) when it cannot be read, is not UTF-8, is not JSON, or holds another type."""
    name = path.name
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError:
        return None, f"{name} is not UTF-8 text"
    except json.JSONDecodeError as err:
        return None, f"{name} is not valid JSON (line {err.lineno}: {err.msg})"
    except RecursionError:
        return None, f"{name} is nested too deeply to read"
    except OSError as err:
        return None, f"{name} cannot be read ({err.strerror or type(err).__name__})"
    if expect is not None and not isinstance(value, expect):
        return None, f"{name} holds {type_name(value)}, not {_TYPE_NAMES.get(expect, expect.__name__)}"
    return value, None


def load_jsonl(path: Path, fields: tuple[str, ...] = ()) -> tuple[list[dict], str | None]:
    """The records (JSON objects having every one of `fields`) of an append-only JSONL file, and what was wrong
    with the first line that is not one (None when all are). A torn last line, one with no line end (a killed
    writer), is skipped without complaint."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], None
    except OSError as err:
        return [], f"{path.name} cannot be read ({err.strerror or type(err).__name__})"
    lines = data.split(b"\n")
    torn = lines.pop()   # b"" when the file ends with a line end
    records, problem = [], None
    for number, raw in enumerate([*lines, torn], start=1):
        if not raw.strip():
            continue
        record, why = _record(raw, fields)
        if record is not None:
            records.append(record)
        elif problem is None and not (number > len(lines) and why == "is not valid JSON"):
            problem = f"{path.name} line {number} {why}"
    return records, problem


def _record(raw: bytes, fields: tuple[str, ...]) -> tuple[dict | None, str]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except (json.JSONDecodeError, RecursionError):
        return None, "is not valid JSON"
    if not isinstance(value, dict):
        return None, f"holds {type_name(value)}, not a record"
    if any(field not in value for field in fields):
        return None, f"lacks one of {', '.join(fields)}"
    return value, ""


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a NumPy archive, or {} when it is missing or cannot be read as one (never a pickle)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return {}


def artifact_problem(path: Path) -> str | None:
    """Why an artifact file is not a readable NumPy archive (a zip of .npy arrays), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        return f"artifacts/{path.name} is not a readable array archive ({type(err).__name__})"
    if not names or any(not name.endswith(".npy") for name in names):
        return f"artifacts/{path.name} is not a readable array archive (it holds no arrays)"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def status_problems(status: dict) -> list[str]:
    """The fields of a status that deciding whether its worker is alive reads, with the wrong type: with any, a
    "running" status cannot be believed (and its pid must not be signalled)."""
    problems = []
    if status and not isinstance(status.get("status"), str):
        problems.append(f"status.json's status is {type_name(status.get('status'))}, not a string")
    for key in ("created", "finished", "pid"):
        if status.get(key) is not None and not _is_number(status[key]):
            problems.append(f"status.json's {key} is {type_name(status[key])}, not a number")
    return problems


def _field_problems(config: dict, status: dict, results: dict) -> list[str]:
    """Fields every reader relies on, with the wrong type."""
    problems = status_problems(status)
    if "kind" in config and not isinstance(config["kind"], str):
        problems.append(f"config.json's kind is {type_name(config['kind'])}, not a string")
    for key in ("dev_accuracy", "advglue_accuracy", "advglue_sst2_accuracy"):
        if results.get(key) is not None and not _is_number(results[key]):
            problems.append(f"results.json's {key} is {type_name(results[key])}, not a number")
    return problems


@dataclass(frozen=True)
class FolderFacts:
    """What a run folder says about its run: its config, status and results (each {} when unreadable), and
    `damage`, one line naming every file that could not be read as what it should hold (None when all could)."""
    config: dict
    status: dict
    results: dict
    damage: str | None
    config_written: float   # the config file's modification time: a creation time for a run whose status is lost


def read_facts(folder: Path) -> FolderFacts:
    """Read and check every file of a run folder (JSON files, metrics.jsonl, artifacts) now."""
    values, problems = {}, []
    for name, expect in JSON_FILES.items():
        values[name], problem = load_json(folder / name, expect)
        if problem:
            problems.append(problem)
    if values["status.json"] is None and not any(p.startswith("status.json") for p in problems):
        problems.append("status.json is missing")
    config, status, results = (values[n] or {} for n in ("config.json", "status.json", "results.json"))
    problems += _field_problems(config, status, results)
    problem = load_jsonl(folder / "metrics.jsonl", METRIC_FIELDS)[1]
    if problem:
        problems.append(problem)
    problems += [p for p in map(artifact_problem, _artifact_files(folder)) if p]
    try:
        written = (folder / "config.json").stat().st_mtime
    except OSError:
        written = 0.0
    return FolderFacts(config, status, results, "; ".join(problems) or None, written)


def _artifact_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in (folder / "artifacts").iterdir() if p.suffix == ".npz" and not p.name.startswith("."))
    except OSError:
        return []


def _signature(folder: Path) -> tuple | None:
    """What changes whenever a file inspect_folder reads changes; None when the folder holds no config.json."""
    stamps = []
    for path in [*(folder / name for name in (*JSON_FILES, "metrics.jsonl")), *_artifact_files(folder)]:
        try:
            stat = path.stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((path.name, stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return None if stamps[0] is None else tuple(stamps)


_cache: dict[str, tuple[tuple, FolderFacts]] = {}
_cache_lock = threading.Lock()


def inspect_folder(folder: Path) -> FolderFacts | None:
    """`read_facts(folder)`, remembered until a file in the folder changes; None when it is no run folder (no
    config.json: deleted, or never one)."""
    signature = _signature(folder)
    if signature is None:
        return None
    key = str(folder)
    with _cache_lock:
        known = _cache.get(key)
    if known and known[0] == signature:
        return known[1]
    facts = read_facts(folder)
    with _cache_lock:
        if len(_cache) >= CACHE_LIMIT:
            _cache.clear()
        _cache[key] = (signature, facts)
    return facts
