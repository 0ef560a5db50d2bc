"""Cgroup facts read the same way on v1 and v2, checked on fake cgroup trees (this machine has
only one of the two; the container tests exercise that one for real), and the host side of the
supervisor channel, which refuses any line that is not the reply to its request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.environments.cgroups import CgroupReader
from sandbox.environments.docker_env import DockerSandbox, SandboxError
from tools.execution import SandboxLimits

REL = "docker/abc123"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v1(tmp: Path) -> tuple[Path, Path]:
    root, proc = tmp / "cgroup", tmp / "proc"
    _write(
        proc / "42" / "cgroup",
        f"12:pids:/{REL}\n5:memory:/{REL}\n3:cpu,cpuacct:/{REL}\n1:name=systemd:/{REL}\n",
    )
    (root / "cpu,cpuacct").mkdir(parents=True)
    _write(root / "cpu,cpuacct" / REL / "cpuacct.usage", "2500000000\n")
    memory = root / "memory" / REL
    _write(memory / "memory.max_usage_in_bytes", "104857600\n")
    _write(memory / "memory.memsw.max_usage_in_bytes", "104857600\n")
    _write(memory / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    pids = root / "pids" / REL
    _write(pids / "pids.current", "7\n")
    _write(pids / "pids.events", "max 3\n")
    _write(pids / "cgroup.procs", "42\n43\n44\n")
    return root, proc


def _v2(tmp: Path) -> tuple[Path, Path]:
    root, proc = tmp / "cgroup", tmp / "proc"
    _write(proc / "42" / "cgroup", f"0::/{REL}\n")
    _write(root / "cgroup.controllers", "cpu memory pids\n")
    base = root / REL
    _write(base / "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    _write(base / "memory.peak", "104857600\n")
    _write(base / "memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n")
    _write(base / "pids.current", "7\n")
    _write(base / "pids.events", "max 3\n")
    _write(base / "cgroup.procs", "42\n43\n44\n")
    return root, proc


def test_v1_and_v2_give_the_same_facts(tmp_path: Path) -> None:
    facts = []
    for name, build in (("v1", _v1), ("v2", _v2)):
        root, proc = build(tmp_path / name)
        reader = CgroupReader(42, root=root, proc=proc)
        assert reader.v2 == (name == "v2")
        snapshot = reader.snapshot()
        facts.append((snapshot, reader.procs(), reader.pids_current()))
        reader.close()
    (v1, v2) = facts
    assert v1 == v2
    snapshot, procs, current = v1
    assert snapshot.cpu_ns == 2_500_000_000 and snapshot.memory_peak == 100 << 20
    assert snapshot.oom_kills == 2 and snapshot.pids_limit_hits == 3
    assert procs == [42, 43, 44] and current == 7


def test_peaks_are_reset_on_both_layouts(tmp_path: Path) -> None:
    root, proc = _v1(tmp_path / "v1")
    reader = CgroupReader(42, root=root, proc=proc)
    reader.reset_peaks()
    assert (root / "memory" / REL / "memory.max_usage_in_bytes").read_text() == "0"
    root, proc = _v2(tmp_path / "v2")
    reader = CgroupReader(42, root=root, proc=proc)
    reader.reset_peaks()  # v2: a write to memory.peak through the descriptor it is read from
    assert (root / REL / "memory.peak").read_text().startswith("reset")
    reader.close()


# -- the host side of the supervisor channel, without Docker ------------------------------------


class _Lines:
    """Stands in for the attach stream: hands out scripted supervisor lines."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    async def line(self) -> bytes:
        if not self.lines:
            await asyncio.sleep(3600)
        return self.lines.pop(0)


class _Writer:
    def write(self, data: bytes) -> None:
        self.last = data

    async def drain(self) -> None:
        return None


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([b'{"id": 7, "exit_code": 0, "stdout": "FORGED"}'], "out of order"),
        ([b'{"exit_code": 0, "stdout": "FORGED"}'], "out of order"),
        ([b"[1, 2, 3]"], "not an object"),
        ([b"not json at all"], "stopped answering"),
        ([], "stopped answering"),
    ],
)
async def test_any_unexpected_supervisor_line_marks_the_sandbox_broken(
    lines: list[bytes], reason: str
) -> None:
    sandbox = DockerSandbox(None, "image", SandboxLimits(), {})
    sandbox._frames = _Lines(list(lines))  # type: ignore[assignment]
    sandbox._writer = _Writer()  # type: ignore[assignment]
    with pytest.raises(SandboxError, match=reason):
        await sandbox._request({"op": "ping"}, 0.2)
    assert sandbox.broken and sandbox.broken_reason
    with pytest.raises(SandboxError, match="not usable"):
        await sandbox._request({"op": "ping"}, 0.2)


async def test_replies_are_matched_to_their_request_ids() -> None:
    sandbox = DockerSandbox(None, "image", SandboxLimits(), {})
    sandbox._frames = _Lines([b'{"id": 1, "pong": true}', b'{"id": 2, "pong": true}'])  # type: ignore[assignment]
    sandbox._writer = _Writer()  # type: ignore[assignment]
    assert (await sandbox._request({"op": "ping"}, 1.0))["pong"] is True
    assert (await sandbox._request({"op": "ping"}, 1.0))["id"] == 2
    assert not sandbox.broken
