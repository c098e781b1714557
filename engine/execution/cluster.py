"""Talking to a Ray cluster: importing ray, connecting (with a reachability check first, so a wrong address
is a clear message in seconds, never a hang), shipping the code through Ray's runtime environment, and what the
cluster offers. Only a job's worker and `python -m engine cluster` call this; the Streamlit process never does.

Deadlines. An address that accepts TCP but is not Ray (any other server) makes `ray.init` retry for ever, so
`check_reachable` first asks it to speak Ray's protocol (gRPC, i.e. HTTP/2: a server answers a client's
preface with its SETTINGS frame) within `CONNECT_SECONDS`, and `ray.init` itself runs in a thread given
`init_seconds()` (`ROBUSTLAB_RAY_CONNECT_SECONDS`, default 60). A connect given up on leaves that thread behind
(`abandoned`): `python -m engine` then exits at once, without Ray's exit hooks that would wait on it.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import signal
import socket
import sys
import threading
from typing import Any

from engine.execution.executor import ExecutorError
from engine.paths import PROJECT_ROOT, data_dir
from engine.user_text import quoted

RAY_PIN = "ray==2.60.0"
RAY_CLIENT_PIN = "ray[client]==2.60.0"
CONNECT_SECONDS = 5.0
# what a client sends first on an HTTP/2 connection (gRPC's, so Ray's): the preface and an empty SETTINGS frame
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4
HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
# ray.init calls given up on in this process (their threads are still blocked inside Ray)
abandoned: list[str] = []
# what a task needs from the project: the code (data, runs, models and the environment stay behind); gitignore
# patterns, so the project's own folders are anchored ("/data", not "data": engine/data/ is code)
WORKING_DIR_EXCLUDES = ["/.git", "/.venv", "/runs", "/data", "/.nltk_data", "**/__pycache__", ".pytest_cache",
                        ".ruff_cache", "*.safetensors", "*.bin", "*.zip", "*.tar", "*.npz", "node_modules"]
# the driver's settings a task needs to find the same data offline
PASSED_VARIABLES = ("ROBUSTLAB_DATA", "NLTK_DATA", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
                    "HF_HOME", "ROBUSTLAB_DEVICE")


def import_ray():
    """The ray module, or an ExecutorError that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ExecutorError(f"the Ray executor needs the ray package, which is not installed here: "
                            f"pip install '{RAY_PIN}' (or `make setup`, which installs requirements.txt)") from err
    return ray


def init_seconds() -> float:
    """How long `ray.init` may take before the connect is given up (`ROBUSTLAB_RAY_CONNECT_SECONDS`, default 60)."""
    return max(1.0, float(os.environ.get("ROBUSTLAB_RAY_CONNECT_SECONDS", "60")))


def endpoint(address: str) -> tuple[str, int] | None:
    """The host and port an address names (`host:6379`, `ray://host:10001`, `[::1]:6379`); None for `auto`."""
    text = address.strip()
    if text == "auto":
        return None
    rest = text.removeprefix("ray://")
    shape = f"Ray address {quoted(address)} is not auto, host:port, [IPv6]:port or ray://host:port"
    if rest.startswith("["):
        host, bracket, port = rest[1:].partition("]:")
        if not bracket:
            raise ExecutorError(shape)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ExecutorError(f"{shape}: {quoted(host)} in brackets is not an IPv6 address") from None
    else:
        host, _, port = rest.rpartition(":")
        if ":" in host:
            raise ExecutorError(f"{shape}: write an IPv6 address in brackets, as [::1]:6379")
        problem = host_problem(host)
        if problem:
            raise ExecutorError(f"{shape}: {problem}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ExecutorError(f"{shape}: the port must be a number from 1 to 65535")
    return host, int(port)


PAGE_ADDRESSES_VARIABLE = "ROBUSTLAB_CLUSTER_ADDRESSES"


def page_address_problem(address: str) -> str | None:
    """Why a page may not use cluster `address`, or None. A dashboard reached by others must not make its server
    open a connection to any host:port a visitor types, so pages take only `auto`, a loopback host, and the
    addresses the operator lists in `ROBUSTLAB_CLUSTER_ADDRESSES` (comma-separated); the CLI takes any."""
    point = endpoint(address)      # an address of the wrong shape: its own ExecutorError
    allowed = [a.strip() for a in os.environ.get(PAGE_ADDRESSES_VARIABLE, "").split(",") if a.strip()]
    if point is None or address.strip() in allowed:
        return None
    host = point[0]
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host == "localhost":
            return None
    return (f"this dashboard connects only to auto, this machine (127.0.0.1, localhost, [::1]) and the cluster "
            f"addresses its operator lists in {PAGE_ADDRESSES_VARIABLE}; {quoted(address)} is not one of them "
            f"(`python -m engine suite|recover --executor ray --address ...` takes any)")


def host_problem(host: str) -> str | None:
    """Why `host` cannot be a host name or IPv4 address, or None."""
    if not host:
        return "the host is missing"
    if len(host) > 253:
        return f"the host is {len(host)} characters long; a host name has at most 253"
    if not all(HOST_LABEL.match(label) for label in host.removesuffix(".").split(".")):
        return "the host may hold only letters, digits, hyphens and dots, with 1 to 63 characters between dots"
    return None


def check_reachable(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Refuse an address nothing answers on within `seconds`, or whose server does not speak Ray's protocol
    (gRPC over HTTP/2) within that time: `ray.init` would wait on it for ever."""
    point = endpoint(address)
    if point is None:
        return
    try:
        conn = socket.create_connection(point, timeout=seconds)
    except OSError as err:
        raise ExecutorError(f"cannot reach a Ray cluster at {quoted(address)} ({err.strerror or err}); "
                            "start one with `ray start --head` or check the address") from err
    with conn:
        try:
            conn.sendall(HTTP2_PREFACE)
            head = _read(conn, 9)
        except TimeoutError:
            raise ExecutorError(f"the server at {quoted(address)} accepts connections but gave no answer within "
                                f"{seconds:g} s; it is not a Ray cluster (GCS port, usually 6379, or ray:// "
                                "client port, usually 10001)") from None
        except OSError as err:
            raise ExecutorError(f"the server at {quoted(address)} closed the connection ({err.strerror or err}); "
                                "it is not a Ray cluster") from err
    if len(head) < 9 or head[3] != HTTP2_SETTINGS:
        raise ExecutorError(f"the server at {quoted(address)} answered, but not as a Ray cluster (no gRPC); check "
                            "the address and port")


def _read(conn: socket.socket, size: int) -> bytes:
    """Up to `size` bytes, fewer if the other end closes first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def runtime_env() -> dict[str, Any]:
    """The project's code as Ray's working directory (uploaded once per job, cached by the nodes) and the data
    settings a task needs: the data folder is not uploaded, so a task reads it where the driver's resolves to
    (ROBUSTLAB_DATA, else the project's data/ link followed)."""
    env = {k: os.environ[k] for k in PASSED_VARIABLES if os.environ.get(k)}
    env.setdefault("ROBUSTLAB_DATA", str(data_dir().resolve()))
    return {"working_dir": str(PROJECT_ROOT), "excludes": WORKING_DIR_EXCLUDES, "env_vars": env}


def check_client_extra(address: str) -> None:
    """Refuse a `ray://` address where Ray's client extra (grpcio) is missing, saying how to install it."""
    if not address.strip().startswith("ray://"):
        return
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise ExecutorError(f"a ray:// address needs Ray's client extra, which is not installed here: pip install "
                            f"'{RAY_CLIENT_PIN}' (or `make setup`, which installs requirements.txt); or give the "
                            "head's GCS address, host:6379") from None


def connect(address: str, with_code: bool = True):
    """Connect this process to the cluster at `address`; ExecutorError with the reason when it cannot."""
    ray = import_ray()
    check_client_extra(address)
    check_reachable(address)
    if ray.is_initialized():
        return ray
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _init_within(ray, address, runtime_env() if with_code else None, init_seconds())
    except ExecutorError:
        raise
    except Exception as err:   # ConnectionError (no cluster), RuntimeError (version mismatch), ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "version mismatch" in str(err).lower():
            first = (f"the cluster runs another Ray or Python version than this machine (ray {ray.__version__}, "
                     f"python {sys.version.split()[0]}): {' '.join(str(err).split())}")
        raise ExecutorError(f"cannot connect to the Ray cluster at {quoted(address)}: {first}") from err
    finally:   # ray.init makes SIGTERM abort the process; a job's Cancel must still stop it at the next step
        if threading.current_thread() is threading.main_thread():
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    return ray


class _NotMainThreadNote(logging.Filter):
    """Drops Ray's note that it set no SIGTERM handler outside the main thread: this process keeps its own
    handlers on purpose (a job's Cancel), and a refusal stays one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is not the main thread" not in record.getMessage()


def _init_within(ray, address: str, env: dict[str, Any] | None, seconds: float) -> None:
    """`ray.init` in a thread of its own, given `seconds` to connect: ExecutorError naming the address when it
    has not answered by then (the thread is left behind, see `abandoned`), or ray.init's own exception."""
    outcome: dict[str, BaseException | None] = {}

    def connect_now() -> None:
        try:
            ray.init(address=address, runtime_env=env, logging_level="ERROR", log_to_driver=False,
                     configure_logging=False)
            outcome["error"] = None
        except BaseException as err:   # handed to the caller's thread
            outcome["error"] = err

    ray_worker_log = logging.getLogger("ray._private.worker")
    if not any(isinstance(f, _NotMainThreadNote) for f in ray_worker_log.filters):
        ray_worker_log.addFilter(_NotMainThreadNote())
    thread = threading.Thread(target=connect_now, name="ray-init", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        abandoned.append(address)
        raise ExecutorError(f"the Ray cluster at {quoted(address)} did not finish connecting within {seconds:g} s "
                            "(ROBUSTLAB_RAY_CONNECT_SECONDS); check that its head and this machine run the same "
                            "Ray version and can reach each other")
    if outcome.get("error") is not None:
        raise outcome["error"]


def summary(ray) -> dict[str, Any]:
    """What a connected cluster offers: its live nodes with their CPUs and GPUs, totals and what is free."""
    nodes = [{"node": node_label(n["NodeManagerAddress"], n["NodeID"]), "cpus": n["Resources"].get("CPU", 0.0),
              "gpus": n["Resources"].get("GPU", 0.0)} for n in ray.nodes() if n.get("Alive")]
    free = ray.available_resources()
    return {"ray_version": ray.__version__, "python": sys.version.split()[0], "nodes": nodes,
            "cpus": sum(n["cpus"] for n in nodes), "gpus": sum(n["gpus"] for n in nodes),
            "cpus_free": free.get("CPU", 0.0), "gpus_free": free.get("GPU", 0.0)}


def node_label(ip: str, node_id: str) -> str:
    """How a node is shown: its address and the start of its id (several nodes may share one machine)."""
    return f"{ip} ({node_id[:6]})"


def capacity_problem(offer: dict[str, Any], cpus: int) -> str | None:
    """Why a cluster cannot start an item needing `cpus` CPU threads now (none when it has a GPU), or None."""
    if offer["gpus"] >= 1:
        return None
    if offer["cpus"] < cpus:
        return f"the Ray cluster has {offer['cpus']:g} CPUs in all; an item needs {cpus}"
    if offer["cpus_free"] < cpus:
        return (f"the Ray cluster has no CPU free ({offer['cpus_free']:g} of {offer['cpus']:g} free; an item needs "
                f"{cpus}): wait for its other jobs or add nodes")
    return None


def probe(address: str) -> dict[str, Any]:
    """Connect without shipping code, say what the cluster offers, disconnect."""
    ray = connect(address, with_code=False)
    try:
        return {"address": address, **summary(ray)}
    finally:
        ray.shutdown()
