"""A throwaway Ray cluster on this machine, for the executor tests and `benchmarks/executor_overhead.py`: a head
node and (optionally) a second node joining it, each with 1 CPU, on loopback ports chosen free, everything under
one temporary folder.

`ray stop` stops every Ray process of the machine; `LocalRayCluster.stop` ends only the process groups this
cluster's `ray start` calls created (each `ray start` runs in a session of its own, and its daemons and their
workers stay in that group; the groups are found by the cluster's temporary folder), by id.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# a lost node is noticed within a few seconds, not the default half minute
FAST_HEALTH_CHECKS = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3",
                      "RAY_health_check_initial_delay_ms": "0"}
# a loopback cluster without token authentication, whatever this machine holds: with RAY_AUTH_MODE unset, a head
# started while ~/.ray/auth_token exists (any local `ray.init()` writes one) turns token authentication on, and a
# node joining it without the mode set is refused
NO_TOKEN_AUTH = {"RAY_AUTH_MODE": "disabled"}


def free_ports(n: int) -> list[int]:
    """`n` loopback ports nothing listens on right now."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class LocalRayCluster:
    """A head and one more node, started by `start`, ended by `stop` (call it in a finally)."""

    def __init__(self) -> None:
        # Ray's sessions, sockets and logs; short, as a socket path must stay under 108 bytes
        self.temp = Path(tempfile.mkdtemp(prefix="rlray-", dir="/tmp"))
        self.port = 0
        self.groups: dict[str, set[int]] = {"head": set(), "second": set()}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, second: bool = True) -> LocalRayCluster:
        head = free_ports(8)
        self.port = head[0]
        self._ray_start("head", ["--head", "--port", str(head[0]), "--dashboard-port", str(head[1]),
                                 "--include-dashboard", "false", "--node-manager-port", str(head[2]),
                                 "--object-manager-port", str(head[3]), *self._agent_ports(head[4:])])
        if second:
            self._ray_start("second", ["--address", self.address, *self._agent_ports(free_ports(4))])
        return self

    def _agent_ports(self, ports: list[int]) -> list[str]:
        return ["--dashboard-agent-listen-port", str(ports[0]), "--dashboard-agent-grpc-port", str(ports[1]),
                "--metrics-export-port", str(ports[2]), "--runtime-env-agent-port", str(ports[3])]

    def _ray_start(self, name: str, flags: list[str]) -> None:
        before = self._our_groups()
        env = {**os.environ, **FAST_HEALTH_CHECKS, **NO_TOKEN_AUTH, "RAY_USAGE_STATS_ENABLED": "0"}
        done = subprocess.run([RAY, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
                               "--temp-dir", str(self.temp), "--object-store-memory", str(150 * 1024 ** 2),
                               "--disable-usage-stats", *flags],
                              env=env, capture_output=True, text=True, timeout=120, start_new_session=True)
        self.groups[name] = self._our_groups() - before
        assert done.returncode == 0, f"ray start ({name}) failed:\n{done.stdout}\n{done.stderr}"

    def _our_groups(self) -> set[int]:
        """Process groups of the processes whose command line names this cluster's folder."""
        import psutil

        groups = set()
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(str(self.temp) in part for part in proc.info["cmdline"] or ()):
                    groups.add(os.getpgid(proc.info["pid"]))
            except (psutil.Error, ProcessLookupError):
                continue
        return groups - {os.getpgid(0)}

    def second_node_id(self) -> str:
        """The Ray node id of the second node (from its raylet's command line)."""
        import psutil

        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                args = proc.info["cmdline"] or []
                if os.getpgid(proc.info["pid"]) in self.groups["second"]:
                    for arg in args:
                        if arg.startswith("--node_id="):
                            return arg.split("=", 1)[1]
            except (psutil.Error, ProcessLookupError):
                continue
        raise AssertionError("the second node's raylet is not running")

    def kill_second_node(self) -> None:
        """The second machine dies: every process of that node at once."""
        for group in self.groups["second"]:
            _kill_group(group)

    def stop(self) -> None:
        for group in self.groups["head"] | self.groups["second"] | self._our_groups():
            _kill_group(group)
        deadline = time.time() + 10
        while self._our_groups() and time.time() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.temp, ignore_errors=True)


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
