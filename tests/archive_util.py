"""Real tar archives, good and hostile, built with tarfile (no mocks), and a snapshot of a folder tree to prove a
refused archive changed nothing. Standard library only: `test_run_archive` also runs these cases under every
other Python it finds (3.10 to 3.13, Debian's 3.11.2), where numpy is not installed.

Import it as `archive_util` (see apptest_util for why not `tests.archive_util`)."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

MiB = 1024 * 1024


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "",
        size: int | None = None, pax: int = 0) -> None:
    """One member as written, whatever its type or name (tarfile checks nothing when writing); `pax` bytes of
    comment in its pax header."""
    member = tarfile.TarInfo(name)
    if pax:
        member.pax_headers = {"comment": "c" * pax}
    member.type, member.linkname, member.mode, member.mtime = kind, link, 0o644, 1_700_000_000
    if kind == tarfile.DIRTYPE:
        member.mode = 0o777
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        member.devmajor, member.devminor = 1, 3
    member.size = len(data) if size is None else size
    tar.addfile(member, io.BytesIO(data) if member.isreg() else None)


def build(path: Path, members: Callable[[tarfile.TarFile], None], mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        members(tar)
    return path


def good_run(tar: tarfile.TarFile, run_id: str, marker: str = "new") -> None:
    """A finished run's files, as `pack` writes them (regular files only, no folder members)."""
    add(tar, f"{run_id}/config.json", b'{"method": "vanilla", "kind": "train", "run_id": "%s"}' % run_id.encode())
    add(tar, f"{run_id}/status.json", b'{"status": "done", "finished": 1700000000}')
    add(tar, f"{run_id}/results.json", b'{"dev_accuracy": 0.75, "marker": "%s"}' % marker.encode())
    add(tar, f"{run_id}/log.txt", f"{marker} log line\n".encode())
    add(tar, f"{run_id}/model/model.safetensors", os.urandom(4096))


def cve_2025_4517(tar: tarfile.TarFile, run_id: str, destination: Path) -> None:
    """CPython's test_realpath_limit_attack inside a run folder: folders and links whose expansion overflows
    PATH_MAX, a link that then points three levels above the run folder (out of the store), a hard link through
    it to a file out there, that file overwritten, and a new file created beside it."""
    steps = "abcdefghijklmnop"
    max_path = os.pathconf(destination.parent, "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096
    component = "d" * max(1, (max_path - len(str(destination)) - 1) // (len(steps) + 1))
    path, step_path = run_id, run_id
    for step in steps:
        add(tar, f"{path}/{component}", kind=tarfile.DIRTYPE)
        add(tar, f"{path}/{step}", kind=tarfile.SYMTYPE, link=component)
        path = f"{path}/{component}"
        step_path = f"{step_path}/{step}"
    link_path = f"{step_path}/{'l' * 254}"
    add(tar, link_path, kind=tarfile.SYMTYPE, link="/".join([".."] * len(steps)))
    add(tar, f"{run_id}/escape", kind=tarfile.SYMTYPE, link=f"{link_path[len(run_id) + 1:]}/../../..")
    add(tar, f"{run_id}/flaglink", kind=tarfile.LNKTYPE, link=f"{run_id}/escape/flag")
    add(tar, f"{run_id}/flaglink", b"overwrite")
    add(tar, f"{run_id}/escape/newfile", b"new")


def gzip_bomb(path: Path, run_id: str, declared: int = 1024 * MiB, kind: bytes = tarfile.REGTYPE) -> Path:
    """About 1 MiB of gzip whose tar declares (and really holds) `declared` bytes of zeros, as a file's data or (with
    kind XHDTYPE) as a pax header, which tarfile reads whole into memory: gzip members, each 1 MiB of zeros,
    concatenated (a gzip reader reads them as one stream), so it is built in no time."""
    header = tarfile.TarInfo(f"{run_id}/model/model.safetensors")
    header.size, header.mtime, header.type = declared, 1_700_000_000, kind
    zeros = gzip.compress(b"\0" * MiB, compresslevel=9)
    with open(path, "wb") as out:
        out.write(gzip.compress(header.tobuf(tarfile.USTAR_FORMAT)))
        for _ in range(declared // MiB):
            out.write(zeros)
        out.write(gzip.compress(b"\0" * (2 * tarfile.BLOCKSIZE)))
    return path


# name -> (build(folder, run_id, victim_id, outside) -> archive, words the refusal says, ArchiveLimits overrides)
HOSTILE: dict[str, tuple[Callable[[Path, str, str, Path], Path], str, dict]] = {
    "symlink": (lambda d, r, v, o: build(d / "a.tar", lambda t: (
        add(t, f"{r}/config.json", b"{}"),
        add(t, f"{r}/log.txt", kind=tarfile.SYMTYPE, link=f"../{v}/results.json"))),
        "a symbolic link '{r}/log.txt'", {}),
    "symlink_to_index": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(
        t, f"{r}/x", kind=tarfile.SYMTYPE, link="../index.sqlite")), "a symbolic link '{r}/x'", {}),
    "hardlink": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(
        t, f"{r}/results.json", kind=tarfile.LNKTYPE, link=f"{v}/results.json")),
        "a hard link '{r}/results.json'", {}),
    "absolute": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, str(o / "planted.txt"), b"x")),
                 "a name outside its run folders", {}),
    "dotdot": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, f"{r}/../../outside/planted.txt", b"x")),
               "'{r}/../../outside/planted.txt', a name outside its run folders", {}),
    "dotdot_into_victim": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, f"{r}/../{v}/results.json",
                                                                                 b"{}")),
                           "a name outside its run folders", {}),
    "device": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, f"{r}/null", kind=tarfile.CHRTYPE)),
               "a device '{r}/null'", {}),
    "fifo": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, f"{r}/pipe", kind=tarfile.FIFOTYPE)),
             "a fifo '{r}/pipe'", {}),
    "other_run": (lambda d, r, v, o: build(d / "a.tar", lambda t: (good_run(t, r), add(
        t, f"{v}/results.json", b'{"overwritten": true}'))), "'{v}/results.json', outside the runs", {}),
    "hidden_name": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, f"{r}/.status.json.9.tmp", b"{}")),
                    "a hidden or temporary name", {}),
    "duplicate": (lambda d, r, v, o: build(d / "a.tar", lambda t: (add(t, f"{r}/log.txt", b"a"),
                                                                    add(t, f"{r}/log.txt", b"b"))),
                  "'{r}/log.txt' twice", {}),
    "file_then_folder": (lambda d, r, v, o: build(d / "a.tar", lambda t: (add(t, f"{r}/model", b"a"),
                                                                           add(t, f"{r}/model/x", b"b"))),
                         "a file '{r}/model' where '{r}/model/x' needs a folder", {}),
    "run_as_file": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, r, b"a")),
                    "a file '{r}' where a run folder belongs", {}),
    "cve_2025_4517": (lambda d, r, v, o: build(d / "a.tar", lambda t: cve_2025_4517(t, r, o.parent / "runs")),
                      "a symbolic link '{r}/a'", {}),
    "gzip_bomb": (lambda d, r, v, o: gzip_bomb(d / "a.tar.gz", r), "more than 20 times its size", {}),
    "pax_header_bomb": (lambda d, r, v, o: gzip_bomb(d / "a.tar.gz", r, kind=tarfile.XHDTYPE),
                        "a header of 1,073,741,824 bytes", {}),
    "headers_past_caps": (lambda d, r, v, o: build(d / "a.tar", lambda t: [add(t, f"{r}/f{i}", b"x", pax=3 * MiB)
                                                                           for i in range(2)]),
                          "goes on past", {"max_members": 2, "max_bytes": 10}),
    "over_byte_cap": (lambda d, r, v, o: build(d / "a.tar", lambda t: (add(t, f"{r}/a", os.urandom(600)),
                                                                        add(t, f"{r}/b", os.urandom(600)))),
                      "more than 1,000 bytes (at '{r}/b')", {"max_bytes": 1000}),
    "too_many_members": (lambda d, r, v, o: build(d / "a.tar", lambda t: [add(t, f"{r}/f{i}", b"x")
                                                                          for i in range(11)]),
                         "more than 10 members (at '{r}/f10')", {"max_members": 10}),
    "too_deep": (lambda d, r, v, o: build(d / "a.tar", lambda t: add(t, f"{r}/" + "/".join("d" * 16), b"x")),
                 "deeper than 16 folders", {}),
    "not_a_tar": (lambda d, r, v, o: (d / "a.tar").write_bytes(os.urandom(5000)) and d / "a.tar",
                  "cannot unpack the run archive", {}),
    "truncated": (lambda d, r, v, o: truncated(build(d / "a.tar", lambda t: good_run(t, r))),
                  "cannot unpack the run archive", {}),
    "name_too_long": (lambda d, r, v, o: build(d / "a.tar", lambda t: (good_run(t, r), add(t, f"{r}/{'n' * 300}"))),
                      "File name too long", {}),   # passes every check, fails while writing: the folder goes
}


def truncated(path: Path) -> Path:
    """The archive cut inside its last file's data: every header reads, the data runs out while writing."""
    data = path.read_bytes()
    with tarfile.open(path) as tar:
        last = tar.getmembers()[-1]
    path.write_bytes(data[:last.offset_data + last.size // 2])
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: its kind, and a file's content hash or a link's target."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[rel] = ("dir",)
            else:
                seen[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return seen
