"""The ray executor on a multi-node Ray cluster (Ray's own test cluster: several nodes on this
machine): a node that dies while it runs a unit costs nothing: Ray reruns the unit on another
node and the result is the local executor's.

The run is the CLI in a subprocess, a driver connected to the cluster's address, as on a real
cluster; the test process only starts and removes nodes.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.config.load import parse_config
from pipeline.runner.run import run
from helpers.demo import dataset_of, demo_config, without_stages
from helpers.local_ray import LOCAL_ONLY, cli_env
from helpers.processes import children, survivors

pytestmark = [
    pytest.mark.ray, pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason='Ray is not installed: pip install -e ".[ray]" to run the ray '
                              "executor tests on a local Ray cluster"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                       reason="finds the node's worker processes through /proc (Linux)"),
]

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 2**20}


@pytest.fixture
def cluster():
    """A head node of one CPU (the driver's node), no dashboard, everything on 127.0.0.1."""
    saved = {k: os.environ.get(k) for k in LOCAL_ONLY}
    os.environ.update(LOCAL_ONLY)  # inherited by the nodes' processes
    from ray.cluster_utils import Cluster

    made = None
    try:
        made = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
        yield made
    finally:
        if made is not None:
            made.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def units_on(node) -> list[int]:
    """The worker processes of ``node`` running a unit right now (Ray titles them ray::<task>)."""
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    found = []
    for pid in children(raylet):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            continue
        if title.startswith("ray::_run_unit"):
            found.append(pid)
    return found


def test_a_node_that_dies_mid_run_costs_nothing(cluster, tmp_path):
    expected = run(parse_config(demo_config(tmp_path, "local")), progress=False)
    assert expected.exit_code == 0
    expected = dataset_of(tmp_path / "local")
    node = cluster.add_node(**NODE)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(demo_config(
        tmp_path, "ray", executor={"kind": "ray", "address": cluster.address})))
    command = [sys.executable, "-m", "pipeline", "run", str(config), "-q"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (victims := units_on(node)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victims, ("no unit ran on the second node", proc.poll())
    cluster.remove_node(node, allow_graceful=False)  # the node goes away, as if powered off
    # a unit's Ray worker notices its raylet is gone within about a second
    assert survivors(victims, within=5) == [], "the node's units died with it"
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "3 done" in out
    got = dataset_of(tmp_path / "ray")
    # the unit that died counts its stages finished before as skipped in the retry
    assert without_stages(got) == without_stages(expected)
    assert not list((tmp_path / "ray").glob("**/.*.tmp")), "no scratch of the dead unit is left"
    again = subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "(0 with new work, 3 already done)" in again.stdout, again.stderr
    assert without_stages(dataset_of(tmp_path / "ray")) == without_stages(expected)
