"""Ray kept on this machine: the environment its processes get, for the tests that start a local
Ray instance or cluster, or run the CLI against one."""
from __future__ import annotations

import os

# For Ray's own processes (the head's processes inherit the environment of ray.init's caller,
# workers that of the raylet). RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes a local instance use
# 127.0.0.1 as its node address; it is read when ray is imported.
LOCAL_ONLY = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
}


def cli_env(**extra: str) -> dict:
    """The environment of a ``python -m pipeline`` subprocess: this one's, local-only for Ray, and
    no ``RAY_ADDRESS`` (a run must not join a cluster the machine happens to point at)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, **LOCAL_ONLY, **extra}
