"""Run archives (what a Ray task and the suite's process hand each other) and run exports, against real tar and
zip files: a good archive is unpacked, swapped in and re-indexed; every hostile archive is refused with its
member named and changes nothing, in the store or outside it, on every Python this machine has; a kill mid-swap
is undone when the store next opens; an export holds only the run's own regular files."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from archive_util import HOSTILE, build, good_run, snapshot

from engine.__main__ import main
from engine.execution.executor import Work
from engine.execution.ray_executor import Event, _bring_in
from engine.recovery.grid import GridCell
from engine.store.archive import ArchiveError, ArchiveLimits, extract, pack, receive
from engine.store.runs import Run, RunError, RunStore
from engine.store.swap import host_tag, leftover_name

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(tmp_path):
    """A store holding RUN (finished, results marked "old") and VICTIM (finished), with files outside it that an
    escaping archive would reach: tmp_path/flag (where the CVE archive's chain points) and outside/secret."""
    store = RunStore(tmp_path / "runs")
    run, victim = (finished(store, marker) for marker in ("old", "victim"))
    (tmp_path / "flag").write_text("original flag")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret")
    (tmp_path / "archives").mkdir()
    return store, run, victim


def finished(store: RunStore, marker: str, status: str = "done") -> Run:
    run = store.create({"method": "vanilla"})
    (run.dir / "results.json").write_text(json.dumps({"dev_accuracy": 0.5, "marker": marker}))
    run.log(f"{marker} run")
    run.set_status(status, finished=1.0)
    store.update_index(run)
    return run


def leftovers(home: Path) -> list[str]:
    return sorted(name for name in os.listdir(home) if name.startswith("."))


# ---------------------------------------------------------------- receiving a good archive

def test_a_good_archive_replaces_the_run_and_is_indexed(world, tmp_path):
    store, run, victim = world
    reserved = store.create({"method": "vanilla"})   # the item's reserved run: queued in the index
    archive = build(tmp_path / "archives" / "good.tar", lambda t: good_run(t, reserved.id))
    receive(store, archive, [reserved.id])
    got = store.get(reserved.id)
    assert got.status["status"] == "done" and got.results["marker"] == "new"
    assert got.log_text() == "new log line\n" and got.has_model()
    with tarfile.open(archive) as tar:
        sent = tar.extractfile(f"{reserved.id}/model/model.safetensors").read()
    assert (got.dir / "model" / "model.safetensors").read_bytes() == sent
    row = next(r for r in store.list(status="done") if r["id"] == reserved.id)   # the index, not the folder
    assert row["dev_accuracy"] == 0.75 and row["summary"]["marker"] == "new"
    assert store.get(run.id).results["marker"] == "old" and leftovers(store.home) == []


def test_receive_reindexes_a_removed_run_and_a_replaced_one(world, tmp_path):
    """The re-index after unpacking (which only a 65 s two-node Ray test caught when it was removed): a run the
    archive lacks leaves the folder and the index; a run it brings is indexed as it now is."""
    store, run, victim = world
    archive = build(tmp_path / "archives" / "only-run.tar", lambda t: good_run(t, run.id))
    receive(store, archive, [run.id, victim.id])
    assert not victim.dir.exists()
    assert [r["id"] for r in store.list()] == [run.id]
    assert store.list()[0]["summary"]["marker"] == "new"


def test_pack_then_receive_carries_only_regular_files(world, tmp_path):
    """`pack` leaves out links (to the index, to another run), temporary files and a fifo; the result unpacks."""
    store, run, victim = world
    (run.dir / "model").mkdir()
    (run.dir / "model" / "model.safetensors").write_bytes(b"weights")
    (run.dir / "model" / "model.safetensors.tmp").write_bytes(b"half")
    (run.dir / "index").symlink_to("../index.sqlite")
    (run.dir / "other").symlink_to(f"../{victim.id}")
    os.link(victim.dir / "results.json", run.dir / "hard.json")
    os.mkfifo(run.dir / "pipe")
    archive = pack(store.home, [run.id, "../escape", victim.id + "/.."], tmp_path / "archives" / "packed.tar")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == sorted(f"{run.id}/{n}" for n in ("config.json", "status.json", "results.json", "log.txt",
                                                      "model/model.safetensors"))
    fresh = RunStore(tmp_path / "elsewhere")
    receive(fresh, archive, [run.id])
    assert (fresh.home / run.id / "model" / "model.safetensors").read_bytes() == b"weights"


# ---------------------------------------------------------------- hostile archives


def test_a_refused_archive_fails_its_item_and_keeps_its_runs(world, tmp_path):
    """The suite's side (`ray_executor._bring_in`): the item fails with the refusal as its reason, the archive
    file is removed, the runs stay as they were."""
    store, run, _ = world
    archive = HOSTILE["symlink"][0](tmp_path / "archives", run.id, "VICTIM", tmp_path / "outside")
    work = Work(task=GridCell(run.id), writes=[run.id], reads=[])
    reason = _bring_in(store, Event(item=None, work=work, kind="finished", fields={}, archive=archive))
    assert reason == ("its runs came back in an archive that was refused: the run archive holds a symbolic link "
                      f"'{run.id}/log.txt' (only files and folders are unpacked); nothing was unpacked")
    assert not archive.exists() and store.get(run.id).results["marker"] == "old"

@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_and_changes_nothing(world, tmp_path, case):
    store, run, victim = world
    make, words, limits = HOSTILE[case]
    archive = make(tmp_path / "archives", run.id, victim.id, tmp_path / "outside")
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as refused:
        receive(store, archive, [run.id], ArchiveLimits(**limits))
    message = str(refused.value)
    assert words.format(r=run.id, v=victim.id) in message and message.endswith("nothing was unpacked"), message
    assert "\n" not in message
    assert snapshot(tmp_path) == before
    assert store.get(run.id).results["marker"] == "old" and store.get(victim.id).results["marker"] == "victim"
    task_side = tmp_path / "task" / "runs"   # the task's own unpacking: nothing made, not even the folder
    task_side.parent.mkdir()
    with pytest.raises(ArchiveError):
        extract(archive, task_side, [run.id], ArchiveLimits(**limits))
    assert not task_side.exists()


def test_the_default_caps_refuse_a_gzip_bomb_before_reading_it(world, tmp_path):
    """1 MiB of gzip that declares 1 GiB: refused at its header (the cap is checked before the data is read)."""
    store, run, _ = world
    bomb = HOSTILE["gzip_bomb"][0](tmp_path / "archives", run.id, "", tmp_path)
    assert bomb.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(ArchiveError, match=r"declares 1,073,741,824 bytes"):
        receive(store, bomb, [run.id])


def test_run_ids_that_are_not_plain_names_are_refused(world, tmp_path):
    store, run, _ = world
    archive = build(tmp_path / "archives" / "good.tar", lambda t: good_run(t, run.id))
    for bad in ("..", ".", "", "a/b", ".hidden", "/abs"):
        with pytest.raises(ArchiveError, match="is not a run id"):
            receive(store, archive, [run.id, bad])
    assert store.get(run.id).results["marker"] == "old" and leftovers(store.home) == []


OTHER_PYTHON_CHECK = textwrap.dedent("""
    import json, os, sys, tarfile, tempfile
    from pathlib import Path
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
    from archive_util import HOSTILE, build, good_run, snapshot
    from engine.store.tar_unpack import ArchiveError, ArchiveLimits, unpack
    out = {}
    for case, (make, words, limits) in sorted(HOSTILE.items()):
        root = Path(tempfile.mkdtemp())
        for folder in ("runs/RUN", "outside", "archives"):
            (root / folder).mkdir(parents=True)
        (root / "flag").write_text("flag")
        archive = make(root / "archives", "RUN", "VICTIM", root / "outside")
        before = snapshot(root)
        try:
            unpack(archive, root / "runs" / ".incoming", ["RUN"], ArchiveLimits(**limits))
            out[case] = "accepted"
        except ArchiveError as err:
            out[case] = "refused" if words.format(r="RUN", v="VICTIM") in str(err) else "wrong: " + str(err)
        if snapshot(root) != before:
            out[case] += ", changed files"
    root = Path(tempfile.mkdtemp())
    unpack(build(root / "good.tar", lambda t: good_run(t, "RUN")), root / "in", ["RUN"])
    out["good"] = sorted(str(p.relative_to(root / "in")) for p in (root / "in").rglob("*") if p.is_file())
    print(json.dumps(out))
""")


def other_pythons() -> list[str]:
    """Python 3.10 to 3.13 interpreters on this machine other than the one running the tests (Debian's
    /usr/bin/python3 3.11.2 has no tarfile filters at all; pyenv's carry 3.10 and 3.12-3.13)."""
    candidates = ["/usr/bin/python3", *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.1*/bin/python3"))]
    found, seen = [], {os.path.realpath(sys.executable)}
    for path in candidates:
        real = os.path.realpath(path)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        version = subprocess.run([real, "-c", "import sys; print(sys.version_info[:2] >= (3, 10))"],
                                 capture_output=True, text=True)
        if version.stdout.strip() == "True":
            found.append(real)
    return found


@pytest.mark.parametrize("python", other_pythons() or [pytest.param(None, marks=pytest.mark.skip("no other"))])
def test_the_same_rules_hold_on_other_pythons(python):
    """Our own rules, not tarfile's filters: every hostile case refused, nothing changed, the good one unpacked,
    whatever the interpreter's tarfile has (or lacks)."""
    done = subprocess.run([python, "-c", OTHER_PYTHON_CHECK, str(ROOT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result.pop("good") == ["RUN/config.json", "RUN/log.txt", "RUN/model/model.safetensors",
                                  "RUN/results.json", "RUN/status.json"]
    assert result == {case: "refused" for case in HOSTILE}


# ---------------------------------------------------------------- run folders that are links

def test_a_run_folder_that_is_a_link_is_replaced_never_followed(world, tmp_path):
    store, run, victim = world
    linked = store.home / "20261207-000000-vanilla-beef"
    linked.symlink_to(victim.dir.name)
    before = snapshot(victim.dir)
    archive = build(tmp_path / "archives" / "good.tar", lambda t: good_run(t, linked.name))
    receive(store, archive, [linked.name])
    assert not linked.is_symlink() and json.loads((linked / "results.json").read_text())["marker"] == "new"
    assert snapshot(victim.dir) == before and leftovers(store.home) == []
    linked2 = store.home / "20261207-000000-vanilla-cafe"
    linked2.symlink_to(victim.dir.name)
    receive(store, build(tmp_path / "archives" / "empty.tar", lambda t: None), [linked2.name])
    assert not os.path.lexists(linked2) and snapshot(victim.dir) == before and leftovers(store.home) == []


# ---------------------------------------------------------------- a kill mid-swap

def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def owned(kind: str, pid: int, token: str, run_id: str | None = None, host: str | None = None) -> str:
    name = leftover_name(kind, token, run_id).replace(f"-{os.getpid()}-", f"-{pid}-", 1)
    return name.replace(host_tag(), host, 1) if host else name


def test_a_kill_mid_swap_is_undone_when_the_store_opens(world, tmp_path):
    """The states a receive killed at each step leaves, written on disk, then a store opened on them: the run
    set aside before its replacement came in is put back whole; the rest is removed; a live process's and another
    host's leftovers are left alone."""
    store, run, victim = world
    home, gone = store.home, dead_pid()
    kept = snapshot(run.dir)
    hidden = home / owned("replaced", gone, "0000000a", run.id)
    run.dir.rename(hidden)                                      # killed between the two renames
    (home / owned("incoming", gone, "0000000a") / run.id).mkdir(parents=True)
    (home / owned("incoming", gone, "0000000a") / run.id / "results.json").write_text("{}")
    (home / owned("archive", gone, "0000000b")).write_bytes(b"half an archive")
    removed = home / owned("removed", gone, "0000000c", victim.id)
    (removed / "artifacts").mkdir(parents=True)                 # killed while deleting a run the archive lacked
    stale = home / owned("replaced", gone, "0000000d", victim.id)
    (stale / "model").mkdir(parents=True)                       # killed while removing the old copy: VICTIM is new
    mine = [home / owned("incoming", os.getpid(), "0000000e"), home / owned("replaced", os.getpid(), "0000000f",
                                                                          "20261207-000000-vanilla-0f0f")]
    theirs = home / owned("incoming", gone, "00000010", host="0123abcd" if host_tag() != "0123abcd" else "abcd0123")
    for folder in (*mine, theirs):
        folder.mkdir()
    reopened = RunStore(home)
    assert snapshot(run.dir) == kept and reopened.get(run.id).results["marker"] == "old"
    assert reopened.get(victim.id).results["marker"] == "victim"
    assert leftovers(home) == sorted(p.name for p in (*mine, theirs))
    assert {r["id"] for r in reopened.list()} == {run.id, victim.id}


def test_a_replaced_run_is_not_put_back_over_its_replacement(world, tmp_path):
    store, run, _ = world
    aside = store.home / owned("replaced", dead_pid(), "00000011", run.id)
    aside.mkdir()
    (aside / "results.json").write_text('{"marker": "older"}')
    RunStore(store.home)
    assert not aside.exists() and store.get(run.id).results["marker"] == "old"



def test_leftovers_of_the_version_before_owners_are_removed_after_a_day(world):
    """`.incoming-*`/`.archive-*.tar` as mkdtemp named them (no owner to ask): removed once a day old."""
    store, run, _ = world
    old, recent = store.home / ".incoming-k2j4_x9a", store.home / ".archive-q8w1z0p3.tar"
    old.mkdir()
    recent.write_bytes(b"tar")
    os.utime(old, (0, time.time() - 2 * 24 * 3600))
    RunStore(store.home)
    assert leftovers(store.home) == [recent.name] and store.get(run.id).results["marker"] == "old"

# ---------------------------------------------------------------- exports

def test_an_export_holds_only_the_run_s_regular_files(world, tmp_path):
    store, run, victim = world
    (run.dir / "model").mkdir()
    (run.dir / "model" / "model.safetensors").write_bytes(b"weights")
    (run.dir / "model" / "model.safetensors.tmp").write_bytes(b"half")
    (run.dir / ".status.json.7.tmp").write_text("{}")
    (run.dir / "x").symlink_to("../index.sqlite")
    (run.dir / "other").symlink_to(f"../{victim.id}")
    os.link(victim.dir / "results.json", run.dir / "hard.json")
    os.mkfifo(run.dir / "pipe")
    out = store.export_zip(run.id, tmp_path / "out" / "r.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted(f"{run.id}/{n}" for n in (
            "config.json", "status.json", "results.json", "log.txt", "model/model.safetensors", "LEFT-OUT.txt"))
        assert zf.read(f"{run.id}/model/model.safetensors") == b"weights"
        said = zf.read(f"{run.id}/LEFT-OUT.txt").decode().splitlines()[1:]
    assert said == ["other (a link to a folder)", "hard.json (a hard link: a second name of a file that may belong "
                    "elsewhere)", "pipe (not a regular file)", "x (a symbolic link)"]
    assert os.listdir(tmp_path / "out") == ["r.zip"]


def test_an_export_keeps_a_file_dated_1970(world, tmp_path):
    store, run, _ = world
    os.utime(run.dir / "results.json", (0, 0))
    os.utime(run.dir / "log.txt", (-10 ** 12, -10 ** 12))
    with zipfile.ZipFile(store.export_zip(run.id, tmp_path / "r.zip")) as zf:
        entry = zf.getinfo(f"{run.id}/results.json")
        assert entry.date_time == (1980, 1, 1, 0, 0, 0)
        assert json.loads(zf.read(entry))["marker"] == "old"
        assert zf.getinfo(f"{run.id}/log.txt").date_time == (1980, 1, 1, 0, 0, 0)


def test_export_out_a_folder_puts_the_zip_inside(world, tmp_path, monkeypatch, capsys):
    store, run, _ = world
    monkeypatch.setenv("ROBUSTLAB_HOME", str(store.home))
    folder = tmp_path / "downloads"
    folder.mkdir()
    assert main(["runs", "export", run.id, "--out", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["zip"] == str(folder / f"{run.id}.zip")
    assert os.listdir(folder) == [f"{run.id}.zip"]
    (folder / f"{run.id}.zip").unlink()
    (folder / f"{run.id}.zip").mkdir()   # the name inside is taken by a folder: refused in one line
    assert main(["runs", "export", run.id, "--out", str(folder)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: cannot write the zip at '{folder / run.id}.zip': a folder of that name is there"]
    assert os.listdir(folder) == [f"{run.id}.zip"]
    (tmp_path / "a-file").write_text("x")   # a path under a file: refused in one line, the file untouched
    assert main(["runs", "export", run.id, "--out", str(tmp_path / "a-file" / "r.zip")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: cannot write the zip at '{tmp_path / 'a-file' / 'r.zip'}': '{tmp_path / 'a-file'}' is a file, "
        "not a folder"]
    assert (tmp_path / "a-file").read_text() == "x"


def test_a_failed_export_leaves_nothing_behind(world, tmp_path):
    """The zip outgrows the file-size limit halfway: a one-line error, and no zip or .tmp is left."""
    store, run, _ = world
    (run.dir / "model").mkdir()
    (run.dir / "model" / "model.safetensors").write_bytes(os.urandom(2 * 1024 * 1024))
    out = tmp_path / "out"
    out.mkdir()

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, 512 * 1024))

    code = ("import sys; from engine.store.runs import RunStore, RunError\n"
            "try: RunStore(sys.argv[1]).export_zip(sys.argv[2], sys.argv[3])\n"
            "except RunError as err: print(err); sys.exit(2)")
    done = subprocess.run([sys.executable, "-c", code, str(store.home), run.id, str(out / "r.zip")], cwd=ROOT,
                          capture_output=True, text=True, preexec_fn=small_files, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == f"cannot write the zip at '{out / 'r.zip'}': File too large"
    assert os.listdir(out) == []


def test_exporting_a_run_folder_that_is_a_link_is_refused(world, tmp_path):
    store, run, victim = world
    linked = store.home / "20261207-000000-vanilla-abcd"
    linked.symlink_to(victim.dir.name)
    with pytest.raises(RunError, match="is a link to another folder"):
        store.export_zip(linked.name, tmp_path / "r.zip")
    assert not (tmp_path / "r.zip").exists()
