"""Resource facts read from a container's cgroup on the host (v1 and v2), not estimated.

The runtime resets the peak counters before each execution and reads deltas after it, so a
warm container that serves many executions still gives per-execution facts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupSnapshot:
    cpu_ns: int
    memory_peak: int
    oom_kills: int
    pids_current: int
    pids_limit_hits: int


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _field(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return _int(value)
    return 0


class CgroupReader:
    """The facts of one container's cgroup, the same API on cgroup v1 and v2.

    ``root`` is the cgroup file system and ``proc`` the proc file system (both replaceable, so
    the v1 and v2 layouts are tested on fake trees as well as on the machine's own)."""

    def __init__(self, pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> None:
        self.root = root
        lines = _read(proc / str(pid) / "cgroup").splitlines()
        if not lines:
            raise RuntimeError(f"cannot read the cgroup of process {pid}")
        self.v2 = (root / "cgroup.controllers").exists()
        self._paths: dict[str, Path] = {}
        for line in lines:
            _, controllers, rel = line.split(":", 2)
            rel = rel.lstrip("/")
            if self.v2 and controllers == "":
                self._unified = root / rel
            for controller in controllers.split(","):
                if controller:
                    self._paths[controller] = self._mount(controller) / rel
        self._peak_fd: int | None = None

    def _mount(self, controller: str) -> Path:
        direct = self.root / controller
        if direct.is_dir():
            return direct
        for entry in self.root.iterdir():
            if controller in entry.name.split(","):
                return entry
        return direct

    def _v1(self, controller: str, name: str) -> Path:
        return self._paths.get(controller, self.root / controller) / name

    def reset_peaks(self) -> None:
        if self.v2:
            # Since Linux 6.12 a write resets memory.peak for reads through the same descriptor.
            if self._peak_fd is None:
                try:
                    self._peak_fd = os.open(self._unified / "memory.peak", os.O_RDWR)
                except OSError:
                    return
            try:
                os.write(self._peak_fd, b"reset")
            except OSError:
                pass
            return
        for name in ("memory.max_usage_in_bytes", "memory.memsw.max_usage_in_bytes"):
            try:
                self._v1("memory", name).write_text("0")
            except OSError:
                pass

    def drop_cache(self) -> None:
        """Reclaim what the kernel can (page cache of files read earlier) so it is not counted
        as the next execution's memory: v1 ``memory.force_empty``, v2 ``memory.reclaim``."""
        try:
            if self.v2:
                (self._unified / "memory.reclaim").write_text("1G")
            else:
                self._v1("memory", "memory.force_empty").write_text("0")
        except OSError:
            pass  # nothing to reclaim (EAGAIN), or an older kernel without the file

    def _memory_peak_v2(self) -> int:
        if self._peak_fd is not None:
            try:
                return _int(os.pread(self._peak_fd, 64, 0).decode())
            except OSError:
                pass
        return _int(_read(self._unified / "memory.peak"))

    def snapshot(self) -> CgroupSnapshot:
        if self.v2:
            base = self._unified
            return CgroupSnapshot(
                cpu_ns=_field(_read(base / "cpu.stat"), "usage_usec") * 1000,
                memory_peak=self._memory_peak_v2(),
                oom_kills=_field(_read(base / "memory.events"), "oom_kill"),
                pids_current=_int(_read(base / "pids.current")),
                pids_limit_hits=_field(_read(base / "pids.events"), "max"),
            )
        return CgroupSnapshot(
            cpu_ns=_int(_read(self._v1("cpuacct", "cpuacct.usage"))),
            memory_peak=_int(_read(self._v1("memory", "memory.max_usage_in_bytes"))),
            oom_kills=_field(_read(self._v1("memory", "memory.oom_control")), "oom_kill"),
            pids_current=_int(_read(self._v1("pids", "pids.current"))),
            pids_limit_hits=_field(_read(self._v1("pids", "pids.events")), "max"),
        )

    def procs(self) -> list[int]:
        """Host pids of the processes in the cgroup (for per-process facts such as open files)."""
        path = self._unified / "cgroup.procs" if self.v2 else self._v1("pids", "cgroup.procs")
        return [int(p) for p in _read(path).split() if p.isdigit()]

    def pids_current(self) -> int:
        if self.v2:
            return _int(_read(self._unified / "pids.current"))
        return _int(_read(self._v1("pids", "pids.current")))

    def close(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
