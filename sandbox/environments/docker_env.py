"""Code execution in Docker containers with hard limits, through a warm pool.

Every container: no network, read-only root, size-capped tmpfs for /work and /tmp, memory and
swap capped together, a CPU quota, a pids limit, a non-root user, all capabilities dropped,
no-new-privileges, nofile/fsize ulimits, an empty environment, and labels so `propensity gc`
finds leftovers. Executions go to a supervisor process over the attached stdio (no
`docker exec`), and their resource facts are read from the container's cgroup on the host.
The Docker SDK is blocking, so every SDK call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sandbox.environments.cgroups import CgroupReader
from tools.execution import ExecutionFacts, SandboxLimits

SANDBOX_LABEL = "propensity.sandbox"
OWNER_LABEL = "propensity.owner"
RUN_LABEL = "propensity.run"
SUPERVISOR_GRACE_S = 5.0


class SandboxError(RuntimeError):
    pass


def _docker_client() -> Any:
    import docker

    return docker.from_env(timeout=120)


class _Frames:
    """Decodes Docker's multiplexed attach stream into lines of the supervisor's stdout."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buffer = bytearray()
        self.stderr = bytearray()

    async def line(self) -> bytes:
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                line = bytes(self.buffer[:index])
                del self.buffer[: index + 1]
                return line
            header = await self.reader.readexactly(8)
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = await self.reader.readexactly(size)
            if stream == 2:
                self.stderr.extend(payload[-4096:])
            else:
                self.buffer.extend(payload)


class DockerSandbox:
    """One running container and its supervisor."""

    def __init__(self, client: Any, image: str, limits: SandboxLimits, labels: dict[str, str]):
        self.client = client
        self.image = image
        self.limits = limits
        self.labels = labels
        self.container: Any = None
        self.cgroup: CgroupReader | None = None
        self._pid = 0
        self._frames: _Frames | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._socket: Any = None
        self.broken = False

    def _create(self) -> Any:
        from docker.types import Ulimit

        limits = self.limits
        tmpfs_opts = f"size={limits.tmpfs_mb}m,uid=1000,gid=1000,nosuid,nodev"
        container = self.client.containers.create(
            self.image,
            command=["python3", "-S", "-u", "/opt/propensity/supervisor.py"],
            detach=True,
            stdin_open=True,
            tty=False,
            network_mode="none",
            read_only=True,
            tmpfs={"/work": tmpfs_opts, "/tmp": tmpfs_opts},
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            user="1000:1000",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[
                Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                Ulimit(name="fsize", soft=limits.fsize_mb << 20, hard=limits.fsize_mb << 20),
                Ulimit(name="core", soft=0, hard=0),
            ],
            environment={},
            labels={SANDBOX_LABEL: "code-interpreter", **self.labels},
            working_dir="/work",
            hostname="sandbox",
        )
        socket = self.client.api.attach_socket(
            container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        container.start()
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        return container, socket, pid

    async def start(self) -> None:
        self.container, self._socket, self._pid = await asyncio.to_thread(self._create)
        raw = getattr(self._socket, "_sock", self._socket)
        reader, writer = await asyncio.open_unix_connection(sock=raw)
        self._frames, self._writer = _Frames(reader), writer
        self.cgroup = CgroupReader(self._pid)
        ready = await self._receive(30.0)
        if not ready.get("ready"):
            raise SandboxError(f"supervisor did not start: {ready}")

    async def _receive(self, limit_s: float) -> dict[str, Any]:
        assert self._frames is not None
        async with asyncio.timeout(limit_s):
            line = await self._frames.line()
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def _request(self, payload: dict[str, Any], limit_s: float) -> dict[str, Any]:
        if self.broken or self._writer is None:
            raise SandboxError("sandbox is not usable")
        try:
            self._writer.write(json.dumps(payload).encode() + b"\n")
            await self._writer.drain()
            return await self._receive(limit_s)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, json.JSONDecodeError) as exc:
            self.broken = True
            raise SandboxError(f"supervisor stopped answering: {type(exc).__name__}") from exc

    def _disk_used(self) -> int:
        used = 0
        for mount in ("work", "tmp"):
            try:
                stats = os.statvfs(f"/proc/{self._pid}/root/{mount}")
            except OSError:
                continue
            used += (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        return used

    async def execute(self, argv: list[str], *, timeout_s: float | None = None) -> ExecutionFacts:
        assert self.cgroup is not None
        timeout = timeout_s or self.limits.timeout_s
        disk_before = self._disk_used()
        self.cgroup.reset_peaks()
        before = self.cgroup.snapshot()
        peak_pids = 0
        stop = asyncio.Event()

        async def watch_pids() -> None:
            nonlocal peak_pids
            while not stop.is_set():
                peak_pids = max(peak_pids, self.cgroup.pids_current() if self.cgroup else 0)
                try:
                    await asyncio.wait_for(stop.wait(), 0.005)
                except TimeoutError:
                    pass

        watcher = asyncio.create_task(watch_pids())
        request = {
            "op": "exec",
            "argv": argv,
            "timeout": timeout,
            "output_limit": self.limits.output_bytes,
            "rlimits": {"RLIMIT_CORE": 0},
        }
        error: str | None = None
        reply: dict[str, Any] = {}
        try:
            reply = await self._request(request, timeout + SUPERVISOR_GRACE_S)
            if "error" in reply:
                error = str(reply["error"])
        except SandboxError as exc:
            error = str(exc)
        finally:
            stop.set()
            await watcher
        after = self.cgroup.snapshot()
        disk_after = self._disk_used()
        oom = after.oom_kills > before.oom_kills
        disk_cap = self.limits.tmpfs_mb << 20
        stderr = str(reply.get("stderr", ""))
        return ExecutionFacts(
            exit_code=reply.get("exit_code"),
            signal=reply.get("signal"),
            stdout=str(reply.get("stdout", "")),
            stderr=stderr,
            output_bytes=int(reply.get("output_bytes", 0)),
            output_capped=bool(reply.get("output_capped", False)),
            timed_out=bool(reply.get("timed_out", False)),
            wall_s=float(reply.get("wall_s", 0.0)),
            cpu_s=max(0, after.cpu_ns - before.cpu_ns) / 1e9,
            peak_memory_bytes=after.memory_peak,
            bytes_written=max(0, disk_after - disk_before),
            disk_used_bytes=disk_after,
            peak_pids=max(
                peak_pids, self.limits.pids if after.pids_limit_hits > before.pids_limit_hits else 0
            ),
            oom_killed=oom,
            pids_limited=after.pids_limit_hits > before.pids_limit_hits,
            disk_full=disk_after >= disk_cap * 0.98 or "No space left on device" in stderr,
            file_size_limited=reply.get("signal") == signal.SIGXFSZ or "File too large" in stderr,
            strays_killed=int(reply.get("strays_killed", 0)),
            sandbox_error=error,
        )

    async def reset(self) -> None:
        reply = await self._request({"op": "reset"}, 30.0)
        if not reply.get("reset"):
            self.broken = True
            raise SandboxError(f"reset failed: {reply}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.cgroup is not None:
            self.cgroup.close()
        if self.container is not None:
            container, self.container = self.container, None
            await asyncio.to_thread(_remove, container)


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


class WarmPool:
    """Pre-started sandboxes, reset between uses, so an execution never pays container start."""

    def __init__(
        self,
        image: str,
        limits: SandboxLimits | None = None,
        *,
        size: int = 2,
        run_id: str | None = None,
        client: Any = None,
    ) -> None:
        self.image = image
        self.limits = limits or SandboxLimits()
        self.size = size
        self.client = client
        self.labels = {OWNER_LABEL: str(os.getpid()), RUN_LABEL: run_id or uuid.uuid4().hex[:12]}
        self._idle: asyncio.Queue[DockerSandbox] = asyncio.Queue()
        self._all: set[DockerSandbox] = set()
        self._spawning: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> WarmPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.client is None:
            self.client = await asyncio.to_thread(_docker_client)
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    async def _spawn(self) -> None:
        sandbox = DockerSandbox(self.client, self.image, self.limits, self.labels)
        self._all.add(sandbox)
        try:
            await sandbox.start()
        except BaseException:
            self._all.discard(sandbox)
            await sandbox.close()
            raise
        self._idle.put_nowait(sandbox)

    def _replace(self, sandbox: DockerSandbox) -> None:
        self._all.discard(sandbox)
        task = asyncio.create_task(self._retire_and_spawn(sandbox))
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def _retire_and_spawn(self, sandbox: DockerSandbox) -> None:
        await sandbox.close()
        await self._spawn()

    @asynccontextmanager
    async def sandbox(self) -> AsyncIterator[DockerSandbox]:
        """A clean sandbox for one episode; reset (or replaced) when the episode is done."""
        sandbox = await self._idle.get()
        try:
            yield sandbox
        finally:
            if sandbox.broken:
                self._replace(sandbox)
            else:
                try:
                    await sandbox.reset()
                    self._idle.put_nowait(sandbox)
                except SandboxError:
                    self._replace(sandbox)

    async def execute(self, argv: list[str], *, timeout_s: float | None = None) -> ExecutionFacts:
        async with self.sandbox() as sandbox:
            return await sandbox.execute(argv, timeout_s=timeout_s)

    async def close(self) -> None:
        for task in list(self._spawning):
            try:
                await task
            except Exception:  # a replacement that failed to start leaves nothing to close
                pass
        await asyncio.gather(*(sandbox.close() for sandbox in list(self._all)))
        self._all.clear()


def collect_garbage(client: Any = None, *, only_orphans: bool = False) -> list[str]:
    """Remove sandbox containers left behind (after a crash); blocking, for `propensity gc`."""
    client = client or _docker_client()
    removed = []
    for container in client.containers.list(all=True, filters={"label": SANDBOX_LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        if only_orphans and owner_alive(owner):
            continue
        _remove(container)
        removed.append(container.name)
    return removed


def owner_alive(owner: str) -> bool:
    """Whether the process named in a container's owner label still runs (then it is in use)."""
    if not owner.isdigit():
        return False
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
