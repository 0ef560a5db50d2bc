"""Finding a Docker engine, or starting one, for the sandbox and its tests.

On a fresh Debian machine the engine comes from the `docker.io` package and is started with the
default bridge disabled (`--bridge=none --iptables=false`) so no container can ever get a
network. DOCKER_HOST is honoured, so a remote engine works as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

DOCKERD_ARGS = ["--bridge=none", "--iptables=false"]


class EngineUnavailable(RuntimeError):
    pass


def _client() -> Any:
    import docker

    return docker.from_env(timeout=120)


def ping() -> bool:
    try:
        return bool(_client().ping())
    except Exception:
        return False


def ensure_engine(*, start: bool = True, wait_s: float = 30.0, log_path: Path | None = None) -> Any:
    """A client of a running engine; starts a local dockerd (as root) when allowed and needed."""
    if ping():
        return _client()
    if not start or os.environ.get("DOCKER_HOST"):
        raise EngineUnavailable("no Docker engine answers (is dockerd running? DOCKER_HOST?)")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineUnavailable("dockerd is not installed: apt-get install -y docker.io")
    if os.geteuid() != 0:
        raise EngineUnavailable("starting dockerd needs root; start it yourself")
    log = open(log_path or "/tmp/propensity-dockerd.log", "ab")
    subprocess.Popen([dockerd, *DOCKERD_ARGS], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if ping():
            return _client()
        time.sleep(0.5)
    raise EngineUnavailable(f"dockerd did not answer within {wait_s:g} s (see {log.name})")
