"""Where a suite or a recovery grid runs: this machine, or a Ray cluster at an address, with a "Check cluster"
button that shows what the cluster offers before Start. The check runs `python -m engine cluster` as a
subprocess: the Streamlit process never connects to Ray itself."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import streamlit as st

from app.plain_text import markdown_text
from engine.execution.cluster import PAGE_ADDRESSES_VARIABLE, page_address_problem
from engine.execution.executor import ExecutorError, ExecutorSpec
from engine.paths import PROJECT_ROOT

HERE, CLUSTER = "this machine", "Ray cluster"
CHECK_SECONDS = 60


def cluster_offer(address: str) -> tuple[dict | None, str | None]:
    """What `python -m engine cluster --address ADDRESS --json` says: (offer, None), or (None, the reason)."""
    try:
        done = subprocess.run([sys.executable, "-m", "engine", "cluster", "--address", address, "--json"],
                              cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True,
                              timeout=CHECK_SECONDS)
    except subprocess.TimeoutExpired:
        return None, f"the cluster did not answer within {CHECK_SECONDS} seconds"
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1]), None
    lines = done.stderr.strip().splitlines()
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return None, errors[-1] if errors else (lines[-1] if lines else f"exit code {done.returncode}")


def executor_choice(key: str) -> ExecutorSpec:
    """The where-to-run inputs (keys start with `key`); returns the choice. Checking the cluster is a button,
    its answer kept in the session until the address changes. An address a page may not use (or of the wrong
    shape) raises ExecutorError, which the caller shows as why the job cannot run."""
    where = st.radio("Run on", [HERE, CLUSTER], horizontal=True, key=f"{key}-where",
                     help="**this machine**: one item after another in one background job. **Ray cluster**: each "
                          "(method, seed) or grid cell a Ray task on some node; the runs come back into this store.")
    if where == HERE:
        return ExecutorSpec()
    address = st.text_input("Cluster address", "auto", key=f"{key}-address",
                            help="auto (the cluster this machine belongs to), host:6379 or ray://host:10001. "
                                 f"Besides auto and this machine, only the addresses listed in "
                                 f"{PAGE_ADDRESSES_VARIABLE} when the dashboard was started.")
    problem = page_address_problem(address)
    if problem:   # never checked or used: the server opens no connection to it
        raise ExecutorError(problem)
    shared = st.checkbox("Every node mounts this run store at the same path", key=f"{key}-shared",
                         help="Tasks then write their runs in place; otherwise each run comes back as an archive.")
    checked = st.session_state.get(f"{key}-offer")
    if st.button("Check cluster", icon=":material/dns:", key=f"{key}-check"):
        with st.spinner("Asking the cluster what it offers…"):
            checked = (address, *cluster_offer(address))
        st.session_state[f"{key}-offer"] = checked
    if checked and checked[0] == address:
        _offer_view(*checked[1:])
    return ExecutorSpec(kind="ray", address=address, shared_home=shared)


def _offer_view(offer: dict | None, error: str | None) -> None:
    if offer is None:
        st.error(f"Cannot use this cluster: {markdown_text(error or 'no answer')}", icon=":material/error:")
        return
    versions = markdown_text(f"Ray {offer['ray_version']}, Python {offer['python']}")
    st.success(f"{len(offer['nodes'])} nodes, {offer['cpus']:g} CPUs ({offer['cpus_free']:g} free), "
               f"{offer['gpus']:g} GPUs ({offer['gpus_free']:g} free); {versions}.", icon=":material/dns:")
    st.dataframe(pd.DataFrame(offer["nodes"]), hide_index=True, width="stretch")
