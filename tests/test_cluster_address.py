"""A Ray cluster address: parsed (IPv6 literals included) or refused with a clear line, and a server that is not
Ray, or a connect that never finishes, fails within its deadline naming the address, so the job queue moves on.
No Ray cluster is started here."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.execution import cluster, jobs
from engine.execution.executor import ExecutorError, ExecutorSpec
from engine.store.runs import RunStore
from engine.training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection and never says a word: not a Ray cluster."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("address, point", [
    ("[::1]:6379", ("::1", 6379)), ("ray://[fe80::1]:10001", ("fe80::1", 10001)),
    ("head-1.lab:6379", ("head-1.lab", 6379)), (" 10.0.0.2:6379 ", ("10.0.0.2", 6379)), ("auto", None)])
def test_addresses_are_parsed(address, point):
    assert cluster.endpoint(address) == point


@pytest.mark.parametrize("address, reason", [
    ("::1:6379", "write an IPv6 address in brackets, as [::1]:6379"),
    ("[::1]6379", "is not auto, host:port, [IPv6]:port or ray://host:port"),
    ("[not-v6]:6379", "'not-v6' in brackets is not an IPv6 address"),
    ("a" * 300 + ":6379", "the host is 300 characters long; a host name has at most 253"),
    ("x" * 70 + ".lab:6379", "with 1 to 63 characters between dots"),
    ("head lab:6379", "only letters, digits, hyphens and dots"),
    ("head:0", "the port must be a number from 1 to 65535"),
    ("head:70000", "the port must be a number from 1 to 65535"),
    (":6379", "the host is missing")])
def test_bad_addresses_get_a_clear_line(address, reason):
    with pytest.raises(ExecutorError) as refused:
        cluster.endpoint(address)
    message = str(refused.value)
    assert reason in message and "\n" not in message and len(message) < 300


@pytest.mark.slow
def test_a_server_that_is_not_ray_fails_the_cluster_check_in_seconds(silent_server):
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "engine", "cluster", "--address", silent_server, "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert time.time() - started < 40 and done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"error: --address: the server at '{silent_server}' accepts connections but gave no answer within 5 s; "
        "it is not a Ray cluster"), done.stderr


def test_a_connect_that_never_finishes_is_given_up_naming_the_address(monkeypatch):
    """Ray's own connect may wait for ever (a head that accepts gRPC but never completes the handshake)."""
    release = threading.Event()

    class HangingRay:
        def init(self, **_):
            release.wait(30)

    monkeypatch.setattr(cluster, "abandoned", [])
    started = time.time()
    try:
        with pytest.raises(ExecutorError, match="the Ray cluster at 'head:6379' did not finish connecting within "
                                                "1 s"):
            cluster._init_within(HangingRay(), "head:6379", None, 1.0)
    finally:
        release.set()
    assert time.time() - started < 5 and cluster.abandoned == ["head:6379"]


def test_a_ray_client_address_without_the_client_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "grpc", None)
    with pytest.raises(ExecutorError, match=r"pip install 'ray\[client\]==2.60.0'"):
        cluster.connect("ray://head:10001")


@pytest.mark.slow
def test_a_grid_on_a_server_that_is_not_ray_fails_and_the_queue_moves_on(run_home, silent_server, monkeypatch):
    """The only job slot: a recovery grid sent to the silent server, then a training run queued behind it."""
    from engine.recovery.grid import GridSpec, grid_config

    monkeypatch.setenv("ROBUSTLAB_MAX_JOBS", "1")
    store = RunStore(run_home)
    spec = GridSpec(model="tiny", positions=["bottom"], levels=[1], train_size=16, epochs=1, batch_size=16,
                    dev_size=16)
    grid = jobs.submit(store, grid_config(spec, ExecutorSpec(kind="ray", address=silent_server)), kind="recover")
    behind = jobs.submit(store, TrainConfig(model="tiny", train_size=16, epochs=1, batch_size=16, dev_size=16)
                         .to_dict())
    deadline = time.time() + 300
    while store.get(behind.id).status["status"] != "done" and time.time() < deadline:
        time.sleep(0.3)
    assert store.get(grid.id).status["status"] == "failed"
    assert silent_server in store.get(grid.id).status["error"], store.get(grid.id).status
    assert store.get(behind.id).status["status"] == "done", behind.log_text()


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:6379", "localhost:6379", "[::1]:6379", "ray://127.0.0.2:10001",
                                     "head.lab:6379"])
def test_a_page_may_use_auto_this_machine_and_the_listed_addresses(address, monkeypatch):
    monkeypatch.setenv(cluster.PAGE_ADDRESSES_VARIABLE, "head.lab:6379, ray://other:10001")
    assert cluster.page_address_problem(address) is None


@pytest.mark.parametrize("address", ["10.0.0.2:6379", "head.lab:6380", "ray://evil.example:10001", "[fe80::1]:6379"])
def test_a_page_may_not_make_the_server_connect_anywhere_else(address, monkeypatch):
    monkeypatch.setenv(cluster.PAGE_ADDRESSES_VARIABLE, "head.lab:6379")
    problem = cluster.page_address_problem(address)
    assert problem and f"'{address}' is not one of them" in problem and cluster.PAGE_ADDRESSES_VARIABLE in problem


@pytest.mark.parametrize("page_file, key, start", [("benchmark.py", "bench", "bench-start"),
                                                   ("recovery.py", "rec", "rec-queue")])
def test_the_pages_refuse_a_foreign_address_and_never_connect_to_it(run_home, monkeypatch, page_file, key, start):
    from apptest_util import no_exception, page, read_as

    monkeypatch.delenv(cluster.PAGE_ADDRESSES_VARIABLE, raising=False)
    opened = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: opened.append(a) or pytest.fail("connected"))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: opened.append(a) or pytest.fail("ran a cluster check"))
    at = page(page_file)
    at.session_state["bench-source"] = "Runs I choose"
    at = no_exception(at.run())
    at.radio(key=f"{key}-where").set_value("Ray cluster").run()
    at = no_exception(at.text_input(key=f"{key}-address").input("10.0.0.2:6379").run())
    errors = [read_as(e.value) for e in at.error]
    assert any("'10.0.0.2:6379' is not one of them" in e for e in errors), errors
    assert not [b for b in at.button if b.key == f"{key}-check"], "no Check button for an address a page may not use"
    assert at.button(key=start).disabled and opened == []
