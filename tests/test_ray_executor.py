"""Suites and recovery grids on a real Ray cluster of two nodes on this machine (`engine.execution.local_cluster`):
every item done and readable in the store and the report, in both storage modes; a node lost mid-suite and its item
retried; cancelling keeps what finished and a re-run reuses it; the cluster command; bad addresses and a missing ray.

The lost-node test kills the second node, so it runs last in this module."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from apptest_util import no_exception, page, read_as
from cli_util import refused

from engine.__main__ import main
from engine.execution.local_cluster import LocalRayCluster, free_ports
from engine.reporting.benchmark import AttackSpec, build_report
from engine.store.runs import RunStore, read_json
from engine.suite.job import suite_items, suite_train_runs

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--model", "tiny", "--train-size", "32", "--epochs", "1", "--batch-size", "16"]
SUITE = ["suite", "--methods", "vanilla,rose-second", "--seeds", "0,1", *TINY, "--attack-n", "2"]


@pytest.fixture(scope="module")
def cluster():
    """Started once for the module and stopped in teardown, also when a test failed."""
    ray_cluster = LocalRayCluster()
    try:
        yield ray_cluster.start()
    finally:
        ray_cluster.stop()


def engine_process(args: list[str], home: Path) -> subprocess.Popen:
    """`python -m engine ARGS` as its own process (the suite's driver), with its own run store. Its output goes to
    files beside the store, read with `said`: never a pipe nobody reads, which would stall it once full."""
    logs = Path(tempfile.mkdtemp(prefix="driver-", dir=home.parent))
    with open(logs / "out", "w") as out, open(logs / "err", "w") as err:
        driver = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT,
                                  env={**os.environ, "ROBUSTLAB_HOME": str(home)}, stdout=out, stderr=err, text=True)
    driver.logs = logs
    return driver


def said(driver: subprocess.Popen, stream: str = "err") -> str:
    """What a driver wrote so far to `out` or `err`."""
    return (driver.logs / stream).read_text()


def wait_for_suite(driver: subprocess.Popen, home: Path, ready, seconds: float = 240) -> dict:
    """Poll the only suite in `home` until `ready(status)`; its status. A timeout says what the driver wrote."""
    deadline = time.time() + seconds
    status: dict = {}
    while time.time() < deadline:
        assert driver.poll() is None, f"the driver ended early: {said(driver)}"
        suites = list(home.glob("*-suite-*/status.json"))
        status = read_json(suites[0], {}) if suites else {}
        if status and ready(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the suite never reached the awaited state in {seconds} s: {status or 'no suite folder'}; "
                         f"the driver wrote: {said(driver)[-3000:]}")


def assert_readable(store: RunStore, suite_id: str, attacked: bool = True) -> list[dict]:
    """Every item trained (and attacked), each run opened from the store with its model and evaluations, and the
    report built from them."""
    items = suite_items(store.get(suite_id))
    for item in items:
        assert item["train_status"] == "done", item
        run = store.get(item["train_run"])
        assert run.status["status"] == "done" and run.has_model() and read_json(run.dir / "eval.json")
        if attacked:
            assert item["attack_status"] == "done" and store.get(item["attack_run"]).results["n_requested"] == 2
    report = build_report(store, suite_train_runs(store, store.get(suite_id)),
                          AttackSpec("deepwordbug", "sst2-dev", 2) if attacked else None)
    assert [r["status"] for r in report["runs"]] == ["done"] * len(items)
    return items


# ---------------------------------------------------------------- no cluster needed

def test_an_unreachable_address_is_refused_before_anything_runs(run_home, capsys):
    port = free_ports(1)[0]
    started = time.time()
    line = refused([*SUITE, "--executor", "ray", "--address", f"127.0.0.1:{port}"], capsys)
    assert line.startswith("error: --address: cannot reach a Ray cluster at '127.0.0.1:") and time.time() - started < 20
    assert "not auto, host:port" in refused(["cluster", "--address", "no port here"], capsys)
    assert RunStore(run_home).list() == [], "a refused suite records nothing"


def test_without_ray_installed_the_message_says_how_to_install_it(run_home, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    line = refused(["recover", *TINY, "--positions", "bottom", "--layers", "1", "--executor", "ray"], capsys)
    assert "ray package, which is not installed here: pip install 'ray==2.60.0'" in line


# ---------------------------------------------------------------- on the cluster

@pytest.mark.ray
def test_the_cluster_command_lists_both_nodes(cluster, capsys):
    import ray

    assert main(["cluster", "--address", cluster.address, "--json"]) == 0
    offer = json.loads(capsys.readouterr().out)
    assert offer["ray_version"] == ray.__version__ and (offer["cpus"], offer["gpus"]) == (2, 0)
    assert len(offer["nodes"]) == 2 and all(n["cpus"] == 1 for n in offer["nodes"])


@pytest.mark.parametrize("page_file, key", [("benchmark.py", "bench"), ("recovery.py", "rec")])
@pytest.mark.ray
def test_the_pages_check_the_cluster_before_start(cluster, run_home, page_file, key):
    """"Ray cluster" with an address, then Check cluster: what it offers, or why it cannot be used."""
    at = page(page_file)
    at.session_state["bench-source"] = "Runs I choose"
    at = no_exception(at.run())
    assert at.radio(key=f"{key}-where").value == "this machine"
    at.radio(key=f"{key}-where").set_value("Ray cluster").run()
    at.text_input(key=f"{key}-address").input(cluster.address)
    at = no_exception(at.button(key=f"{key}-check").click().run())
    offers = [s.value for s in at.success]
    assert any(s.startswith("2 nodes, 2 CPUs (2 free), 0 GPUs") for s in offers), offers
    unreachable = f"127.0.0.1:{free_ports(1)[0]}"
    at.text_input(key=f"{key}-address").input(unreachable)
    at = no_exception(at.button(key=f"{key}-check").click().run())
    assert any(read_as(e.value).startswith(f"Cannot use this cluster: --address: cannot reach a Ray cluster at "
                                           f"'{unreachable}'") for e in at.error), [e.value for e in at.error]


@pytest.mark.ray
def test_a_cluster_too_small_for_an_item_is_refused(cluster, run_home, capsys):
    line = refused([*SUITE, "--executor", "ray", "--address", cluster.address, "--cpus-per-item", "5"], capsys)
    assert line == "error: --address: the Ray cluster has 2 CPUs in all; an item needs 5"


@pytest.mark.ray
def test_a_ray_version_mismatch_is_refused_with_both_versions(cluster, run_home, capsys, monkeypatch):
    """The cluster reports another Ray version than this machine's (its metadata, as Ray reads it while connecting)."""
    import ray
    from ray._common.usage import usage_lib

    reported = usage_lib.get_cluster_metadata

    def older_cluster(gcs_client):
        return {**(reported(gcs_client) or {}), "ray_version": "2.9.0"}

    monkeypatch.setattr(usage_lib, "get_cluster_metadata", older_cluster)
    line = refused([*SUITE, "--executor", "ray", "--address", cluster.address], capsys)
    assert line.startswith(f"error: --address: cannot connect to the Ray cluster at '{cluster.address}': the "
                           f"cluster runs another Ray or Python version than this machine (ray {ray.__version__}, "
                           "python "), line
    assert "The cluster was started with: Ray: 2.9.0" in line and f"Ray: {ray.__version__}" in line, line
    assert not ray.is_initialized() and RunStore(run_home).list() == []


@pytest.mark.ray
def test_shared_home_tasks_write_in_place(cluster, run_home, capsys, monkeypatch):
    """With a shared home no archive comes back: the runs are already where the store expects them."""
    def no_archives(*_):
        raise AssertionError("a shared home must not move archives")

    monkeypatch.setattr("engine.execution.ray_executor.receive", no_archives)
    assert main([*SUITE, "--executor", "ray", "--address", cluster.address, "--shared-home", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_trained"] == 4 and summary["n_failed"] == 0
    store = RunStore(run_home)
    items = assert_readable(store, summary["run_id"])
    assert {item["state"] for item in items} == {"finished"}
    assert len(store.list(kind="train")) == 4 and len(store.list(kind="attack")) == 4


@pytest.mark.ray
def test_recovery_grid_on_the_cluster(cluster, run_home, capsys):
    assert main(["recover", *TINY, "--positions", "bottom", "--layers", "1", "--eval-every", "1", "--dev-size", "32",
                 "--executor", "ray", "--address", cluster.address, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert (results["status"], results["cells_total"], results["cells_done"]) == ("done", 2, 2)
    store = RunStore(run_home)
    grid = store.get(results["grid_id"])
    assert {state["state"] for state in grid.status["cell_states"]} == {"finished"}
    for row in store.list(kind="train", parent=grid.id):
        child = store.get(row["id"])
        assert child.status["status"] == "done" and child.metrics()
        assert "recovery" in child.artifact_names(), "each cell is analysed against its clean run"


@pytest.mark.ray
def test_cancel_keeps_finished_items_and_a_rerun_reuses_them(cluster, tmp_path):
    home = tmp_path / "runs"
    args = ["suite", "--methods", "vanilla", "--seeds", "0,1,2,3", *TINY, "--recipe", "none", "--executor", "ray",
            "--address", cluster.address, "--json"]
    driver = engine_process(args, home)
    wait_for_suite(driver, home, lambda s: any(i.get("state") == "finished" for i in s.get("items", [])))
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=120) == 0, said(driver)
    assert json.loads(said(driver, "out").splitlines()[-1])["status"] == "cancelled"
    store = RunStore(home)
    suite = store.list(kind="suite")[0]
    items = suite_items(store.get(suite["id"]))
    finished = [i["train_run"] for i in items if i["train_status"] == "done"]
    assert finished and all(store.get(run_id).has_model() for run_id in finished)
    stopped = [i for i in items if i["train_status"] != "done"]
    assert stopped and {i["state"] for i in stopped} == {"cancelled"}, "outstanding tasks were cancelled"
    assert not [row for row in store.list() if row["status"] in ("queued", "running")], "nothing left running"
    rerun = engine_process(args, home)
    assert rerun.wait(timeout=240) == 0, said(rerun)
    again = suite_items(store.get(json.loads(said(rerun, "out").splitlines()[-1])["run_id"]))
    assert [i["train_run"] for i in again if i.get("reused")] == finished
    assert all(i["train_status"] == "done" for i in again)


@pytest.mark.ray
def test_a_killed_driver_is_resumed_by_a_rerun_that_reuses_finished_items(cluster, tmp_path):
    """SIGKILL of the suite's driver mid-suite: nothing records its end, yet a re-run reuses every item that finished
    (its runs came back into the store before the kill) and trains the rest."""
    home = tmp_path / "runs"
    args = ["suite", "--methods", "vanilla", "--seeds", "0,1,2,3", *TINY, "--recipe", "none", "--executor", "ray",
            "--address", cluster.address, "--json"]
    driver = engine_process(args, home)
    wait_for_suite(driver, home, lambda s: any(i.get("state") == "finished" for i in s.get("items", [])))
    driver.kill()
    driver.wait(timeout=30)
    store = RunStore(home)
    killed = store.list(kind="suite")[0]
    assert killed["status"] == "failed", "a suite whose driver is gone reads as failed, not running"
    finished = [i["train_run"] for i in suite_items(store.get(killed["id"])) if i.get("state") == "finished"]
    assert finished
    rerun = engine_process(args, home)
    assert rerun.wait(timeout=240) == 0, said(rerun)
    again = suite_items(store.get(json.loads(said(rerun, "out").splitlines()[-1])["run_id"]))
    reused = [i["train_run"] for i in again if i.get("reused")]
    assert set(finished) <= set(reused) and all(i["train_status"] == "done" for i in again)
    assert all(store.get(i["train_run"]).has_model() for i in again)


@pytest.mark.ray
def test_a_lost_node_retries_its_item_and_the_suite_finishes(cluster, tmp_path):
    """Runs last: the second node does not come back."""
    home = tmp_path / "runs"
    second = cluster.second_node_id()[:6]
    driver = engine_process([*SUITE, "--executor", "ray", "--address", cluster.address, "--json"], home)
    wait_for_suite(driver, home, lambda s: any(i.get("state") == "running" and second in (i.get("node") or "")
                                       for i in s.get("items", [])))
    cluster.kill_second_node()
    assert driver.wait(timeout=300) == 0, said(driver)
    summary = json.loads(said(driver, "out").splitlines()[-1])
    assert summary["status"] == "done" and summary["n_trained"] == 4 and summary["n_failed"] == 0
    items = assert_readable(RunStore(home), summary["run_id"])
    retried = [i for i in items if i.get("retried")]
    assert len(retried) == 1 and second not in retried[0]["node"], "retried once, on the node still alive"


def test_tasks_read_the_data_where_the_driver_s_data_folder_resolves(monkeypatch, tmp_path):
    """The data folder is not uploaded with the code: with ROBUSTLAB_DATA unset (a fresh clone's data/ link), the
    tasks are told the folder the link points to."""
    from engine import paths
    from engine.execution import cluster

    target = tmp_path / "shared_data"
    target.mkdir()
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "data").symlink_to(target)
    monkeypatch.delenv("ROBUSTLAB_DATA", raising=False)
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "project")
    assert cluster.runtime_env()["env_vars"]["ROBUSTLAB_DATA"] == str(target)
    monkeypatch.setenv("ROBUSTLAB_DATA", "/elsewhere")
    assert cluster.runtime_env()["env_vars"]["ROBUSTLAB_DATA"] == "/elsewhere"
