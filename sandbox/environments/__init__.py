"""Execution environments: Docker containers with hard limits, a warm pool, cgroup facts."""

from sandbox.environments.cgroups import CgroupReader, CgroupSnapshot
from sandbox.environments.docker_env import DockerSandbox, SandboxError, WarmPool, collect_garbage
from sandbox.environments.engine import EngineUnavailable, ensure_engine
from tools.execution import ExecutionFacts, SandboxLimits, python_argv, shell_argv

__all__ = [
    "CgroupReader",
    "CgroupSnapshot",
    "DockerSandbox",
    "EngineUnavailable",
    "ExecutionFacts",
    "SandboxError",
    "SandboxLimits",
    "WarmPool",
    "collect_garbage",
    "ensure_engine",
    "python_argv",
    "shell_argv",
]
