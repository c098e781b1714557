"""Talking to a Ray cluster: importing ray, connecting (with a reachability check first, so a wrong address
is a clear message in seconds, never a hang), shipping the code through Ray's runtime environment, and what the
cluster offers. Only a job's worker and `python -m engine cluster` call this; the Streamlit process never does.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any

from engine.executor import ExecutorError
from engine.paths import PROJECT_ROOT, data_dir
from engine.user_text import quoted

RAY_PIN = "ray==2.60.0"
CONNECT_SECONDS = 5.0
# what a task needs from the project: the code (data, runs, models and the environment stay behind)
WORKING_DIR_EXCLUDES = [".git", ".venv", "runs", "data", ".nltk_data", "**/__pycache__", ".pytest_cache",
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


def endpoint(address: str) -> tuple[str, int] | None:
    """The host and port an address names (`host:6379`, `ray://host:10001`); None for `auto`."""
    text = address.strip()
    if text == "auto":
        return None
    host, _, port = text.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"Ray address {quoted(address)} is not auto, host:port or ray://host:port")
    return host, int(port)


def check_reachable(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Refuse an address nothing answers on within `seconds`."""
    point = endpoint(address)
    if point is None:
        return
    try:
        socket.create_connection(point, timeout=seconds).close()
    except OSError as err:
        raise ExecutorError(f"cannot reach a Ray cluster at {quoted(address)} ({err.strerror or err}); "
                            "start one with `ray start --head` or check the address") from err


def runtime_env() -> dict[str, Any]:
    """The project's code as Ray's working directory (uploaded once per job, cached by the nodes) and the data
    settings a task needs: the data folder is not uploaded, so a task reads it where the driver's resolves to
    (ROBUSTLAB_DATA, else the project's data/ link followed)."""
    env = {k: os.environ[k] for k in PASSED_VARIABLES if os.environ.get(k)}
    env.setdefault("ROBUSTLAB_DATA", str(data_dir().resolve()))
    return {"working_dir": str(PROJECT_ROOT), "excludes": WORKING_DIR_EXCLUDES, "env_vars": env}


def connect(address: str, with_code: bool = True):
    """Connect this process to the cluster at `address`; ExecutorError with the reason when it cannot."""
    ray = import_ray()
    check_reachable(address)
    if ray.is_initialized():
        return ray
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray.init(address=address, runtime_env=runtime_env() if with_code else None, logging_level="ERROR",
                 log_to_driver=False, configure_logging=False)
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
