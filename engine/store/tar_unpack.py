"""Unpack a run archive by our own rules, the same on every Python this project supports (3.10 to 3.13, with or
without the June 2025 tarfile fixes): tarfile only parses the headers here, it never writes a file.

Why not `extractall(filter="data")`: before the CVE-2025-4517 fixes that filter let a chain of links through
(an archive like CPython's `test_realpath_limit_attack` wrote outside the target), and Debian 12's Python 3.11.2
has no `filter` argument at all. The rules:

- only regular files and folders; no symbolic or hard links, devices, fifos, sparse or unknown members;
- every name relative, with no empty, `.`, `..` or dot-started part (`pack` leaves temporary files out), no
  deeper than `max_depth`, and its first part one of the run ids the caller expects (plain run-id names);
- no name twice, and no file where another member needs a folder;
- caps on the bytes, the number of members and the compression ratio, checked on each header before its data
  is read, and on the tar stream itself (no header over 4 MiB, no stream longer than the caps allow), so a bomb
  is refused after reading about as much as the caps allow, in data or in headers.

Every header is checked before anything is written; the files then go into a folder this module creates (it must
not exist yet), one `openat` at a time with O_NOFOLLOW and O_EXCL, never through a path the archive chose.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from lzma import LZMAError
from pathlib import Path
from typing import BinaryIO

from engine.user_text import quoted

# A run id as `RunStore.create` makes them (`20261207-225500-vanilla-1a2b`): a plain name, never `.`/`..`.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
MiB = 1024 * 1024
COPY_BYTES = MiB
HEADER_READ_BYTES = 4 * MiB      # the most read at once: a file's data is read in COPY_BYTES, a header is 512 bytes
HEADER_OVERHEAD_BYTES = 4096     # a member's header blocks, pax record and padding, as the stream cap counts them
COMPRESSED: tuple[tuple[bytes, Callable[[BinaryIO], BinaryIO]], ...] = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")), (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile))


class ArchiveError(ValueError):
    """An archive was refused (or could not be read); the message names the member and the rule."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on one archive, sized from a MiniLM run. Measured: its model folder plus config, status and 2,000
    metric lines is 91,732,095 bytes in 13 files (model/model.safetensors is 90,868,376: 22.7M float32 weights;
    tokenizer.json 466 KB, vocab.txt 232 KB); a trained run adds results, log and a few artifacts, about 20 files.
    Its tar is 91,750,400 bytes, packed and received in under 0.1 s each; gzip shrinks it 1.10x. An archive holds
    the one to three runs of one suite or grid item.

    - max_bytes 4 GiB: about 45 MiniLM runs, or a BERT-large run (1.34 GB of weights) with room to spare;
    - max_members 10,000: about 500 times a run's files; bounds the inodes and per-file work;
    - max_ratio 20 (above ratio_floor, 64 MiB): `pack` writes an uncompressed tar, whose files never add up to
      more than the archive (ratio at most 1); gzip shrinks weights about 1.1x and JSON or log text 5-10x, so only
      a bomb (a 1 MiB gzip declaring 1 GiB is 1024x) goes past 20;
    - max_depth 16: the deepest name a run writes is RUN/model/1_Pooling/config.json (4 parts).
    """
    max_bytes: int = 4 * 1024 * MiB
    max_members: int = 10_000
    max_ratio: float = 20.0
    ratio_floor: int = 64 * MiB
    max_depth: int = 16


DEFAULT_LIMITS = ArchiveLimits()


def is_run_id(name: str) -> bool:
    """A plain run-id name: no separator, not `.` or `..`, not hidden."""
    return bool(RUN_ID.fullmatch(name))


def checked_run_ids(run_ids: Iterable[str]) -> list[str]:
    """The expected run ids, each a plain run-id name (else ArchiveError before anything is read)."""
    ids = list(run_ids)
    for run_id in ids:
        if not isinstance(run_id, str) or not is_run_id(run_id):
            raise ArchiveError(f"{quoted(run_id)} is not a run id")
    return ids


def unpack(archive: Path, into: Path, run_ids: Iterable[str], limits: ArchiveLimits = DEFAULT_LIMITS) -> list[str]:
    """Unpack `archive` into the new folder `into` (created here; its parent must exist) by the rules above; the
    names of the files written. A refused archive raises ArchiveError, and `into` is then left as it was: every
    header is checked before `into` is made, and a failure while writing removes it again."""
    expected = set(checked_run_ids(run_ids))
    made = False
    try:
        size = os.stat(archive).st_size
        with _bounded_stream(archive, size, limits) as stream, tarfile.open(fileobj=stream, mode="r:") as tar:
            members = _checked_members(tar, expected, size, limits)
            os.mkdir(into, 0o755)
            made = True
            _write(tar, members, into, limits)
    except (ArchiveError, tarfile.TarError, EOFError, OSError, LZMAError) as err:   # zlib and bz2: OSError
        if made:
            shutil.rmtree(into, ignore_errors=True)
        what = str(err) if isinstance(err, ArchiveError) else \
            f"cannot unpack the run archive {quoted(str(archive), 240)}: {_reason(err)}"
        raise ArchiveError(f"{what}; nothing was unpacked") from err
    return [m.name for m in members if m.isreg()]


class _Bounded:
    """The tar stream (decompressed where the archive is compressed), refusing to go further than an archive
    within the caps can: tarfile reads a pax or GNU long-name header whole, in memory, before any member is
    returned, so a header declaring gigabytes must be stopped here, not after."""

    def __init__(self, raw: BinaryIO, inner: BinaryIO, stop: int) -> None:
        self.raw, self.inner, self.stop = raw, inner, stop

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > HEADER_READ_BYTES:
            raise ArchiveError(f"the run archive has a header of {size:,} bytes, more than {HEADER_READ_BYTES:,}")
        if self.inner.tell() + size > self.stop:
            raise ArchiveError(f"the run archive goes on past {self.stop:,} bytes, more than its caps allow")
        return self.inner.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self.inner.seek(offset, whence)
        if position > self.stop:
            raise ArchiveError(f"the run archive goes on past {self.stop:,} bytes, more than its caps allow")
        return position

    def tell(self) -> int:
        return self.inner.tell()

    def __enter__(self) -> _Bounded:
        return self

    def __exit__(self, *_: object) -> None:
        if self.inner is not self.raw:
            self.inner.close()
        self.raw.close()


def _bounded_stream(archive: Path, size: int, limits: ArchiveLimits) -> _Bounded:
    """The archive's tar stream, decompressed by its magic bytes (gzip, bzip2, xz) or as it is, bounded by what
    the caps allow: the files' bytes plus a few KiB of headers per member."""
    raw = open(archive, "rb")   # noqa: SIM115 (closed by _Bounded)
    magic = raw.read(6)
    raw.seek(0)
    opener = next((opener for prefix, opener in COMPRESSED if magic.startswith(prefix)), None)
    inner = opener(raw) if opener else raw
    content = min(limits.max_bytes, max(limits.max_ratio * size, limits.ratio_floor))
    return _Bounded(raw, inner, int(content) + limits.max_members * HEADER_OVERHEAD_BYTES + HEADER_READ_BYTES)


def _reason(err: BaseException) -> str:
    """The error in one line (tarfile lists each method it tried on lines of their own)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(":") if lines else type(err).__name__


def _checked_members(tar: tarfile.TarFile, expected: set[str], archive_bytes: int,
                     limits: ArchiveLimits) -> list[tarfile.TarInfo]:
    """Every member, checked header by header (caps before the next header is read, so before its data)."""
    members: list[tarfile.TarInfo] = []
    files: set[str] = set()
    folders: set[str] = set()
    total = 0
    allowed = max(limits.max_ratio * archive_bytes, limits.ratio_floor)
    while (member := tar.next()) is not None:
        name = member.name
        if len(members) >= limits.max_members:
            raise ArchiveError(f"the run archive has more than {limits.max_members:,} members (at {quoted(name)})")
        _check_name(name, member, expected, limits)
        if name in files or name in folders:
            raise ArchiveError(f"the run archive holds {quoted(name)} twice")
        parents = ["/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)]
        if clash := next((p for p in parents if p in files), None):
            raise ArchiveError(f"the run archive has a file {quoted(clash)} where {quoted(name)} needs a folder")
        if member.isdir():
            folders.add(name)
        else:
            if "/" not in name:
                raise ArchiveError(f"the run archive has a file {quoted(name)} where a run folder belongs")
            files.add(name)
            total += member.size
            if total > limits.max_bytes:
                raise ArchiveError(f"the run archive holds more than {limits.max_bytes:,} bytes (at {quoted(name)})")
            if total > allowed:
                raise ArchiveError(f"the run archive declares {total:,} bytes in {archive_bytes:,} "
                                   f"(at {quoted(name)}), more than {limits.max_ratio:g} times its size")
        folders.update(parents)
        members.append(member)
    return members


def _check_name(name: str, member: tarfile.TarInfo, expected: set[str], limits: ArchiveLimits) -> None:
    kind = _kind(member)
    if kind is not None:
        raise ArchiveError(f"the run archive holds {kind} {quoted(name)} (only files and folders are unpacked)")
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ArchiveError(f"the run archive holds {quoted(name)}, a name outside its run folders")
    if any(part.startswith(".") for part in parts) or "\0" in name:
        raise ArchiveError(f"the run archive holds {quoted(name)}, a hidden or temporary name")
    if parts[0] not in expected:
        raise ArchiveError(f"the run archive holds {quoted(name)}, outside the runs it was to bring "
                           f"({', '.join(quoted(r) for r in sorted(expected)) or 'none'})")
    if len(parts) > limits.max_depth:
        raise ArchiveError(f"the run archive holds {quoted(name)}, deeper than {limits.max_depth} folders")


def _kind(member: tarfile.TarInfo) -> str | None:
    """What a member is when it is not a plain regular file or folder (None when it is)."""
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and not member.issparse():
        return None
    if member.type == tarfile.DIRTYPE:
        return None
    return {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a device",
            tarfile.BLKTYPE: "a device", tarfile.FIFOTYPE: "a fifo"}.get(member.type, "an unsupported member")


def _write(tar: tarfile.TarFile, members: list[tarfile.TarInfo], into: Path, limits: ArchiveLimits) -> None:
    """Write the checked members under `into`, resolving every name one folder at a time from `into`'s own
    descriptor: no path is looked up through a link, and no file is opened that this call did not create."""
    root = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    written = 0
    try:
        for member in members:
            parts = member.name.split("/")
            folder_parts = parts if member.isdir() else parts[:-1]
            folder = _folder(root, folder_parts)
            try:
                if member.isreg():
                    written += _write_file(tar, member, parts[-1], folder, limits.max_bytes - written)
            finally:
                if folder != root:
                    os.close(folder)
    finally:
        os.close(root)


def _folder(root: int, parts: list[str]) -> int:
    """A descriptor of root/parts, each folder made here when missing and opened without following a link."""
    current = root
    for part in parts:
        try:
            os.mkdir(part, 0o755, dir_fd=current)
        except FileExistsError:
            pass
        try:
            opened = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
        finally:
            if current != root:
                os.close(current)
        current = opened
    return current


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, folder: int, room: int) -> int:
    """Copy one member's data into a file created here (O_EXCL: never an existing file or link); its size."""
    if member.size > room:
        raise ArchiveError(f"the run archive's {quoted(member.name)} goes past the byte cap")
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder)
    with os.fdopen(fd, "wb") as out:
        source = tar.extractfile(member)
        left = member.size
        while left > 0:
            block = source.read(min(COPY_BYTES, left))
            if not block:
                raise ArchiveError(f"the run archive ends inside {quoted(member.name)}")
            out.write(block)
            left -= len(block)
        out.flush()
        if 0 <= member.mtime < 2 ** 33:   # the run's own times (metrics_written), when they are plausible
            os.utime(fd, (member.mtime, member.mtime))
    return member.size
