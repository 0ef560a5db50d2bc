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
from tools.execution import ExecutionFacts, SandboxInfrastructureError, SandboxLimits

SANDBOX_LABEL = "propensity.sandbox"
OWNER_LABEL = "propensity.owner"
RUN_LABEL = "propensity.run"
SUPERVISOR_GRACE_S = 5.0
# How long a lease waits for a free sandbox before the episode errors (never forever).
LEASE_TIMEOUT_S = 300.0
# The mounts the code can write to, each with its own cap, watched for their peak usage.
WATCHED_MOUNTS = ("work", "tmp", "dev/shm")
# Only these capabilities, for the supervisor (uid 0) to start code as uid 1000 and kill it.
SUPERVISOR_CAPS = ["SETUID", "SETGID", "KILL"]


class SandboxError(RuntimeError):
    pass


def _docker_client() -> Any:
    import docker

    return docker.from_env(timeout=120)


class _Frames:
    """Decodes Docker's multiplexed attach stream into lines of the supervisor's stdout.

    Bounded: a line longer than ``max_line`` bytes is an error (the supervisor never writes
    one), and at most the last 4 KiB of anything on stderr is kept."""

    def __init__(self, reader: asyncio.StreamReader, max_line: int) -> None:
        self.reader = reader
        self.max_line = max_line
        self.buffer = bytearray()
        self.stderr = bytearray()

    async def line(self) -> bytes:
        while True:
            index = self.buffer.find(b"\n")
            if index >= 0:
                line = bytes(self.buffer[:index])
                del self.buffer[: index + 1]
                return line
            if len(self.buffer) > self.max_line:
                raise SandboxError(f"supervisor line longer than {self.max_line} bytes")
            header = await self.reader.readexactly(8)
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = await self.reader.readexactly(size)
            if stream == 2:
                self.stderr.extend(payload[-4096:])
                del self.stderr[:-4096]
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
        self._next_id = 0
        self.broken = False
        # Why the sandbox was marked broken (for the record); None while it is usable.
        self.broken_reason: str | None = None

    def _create(self) -> Any:
        from docker.types import LogConfig, Ulimit

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
            tmpfs={"/work": f"{tmpfs_opts},mode=0755", "/tmp": f"{tmpfs_opts},mode=1777"},
            shm_size=f"{limits.tmpfs_mb}m",  # /dev/shm: the same cap as every writable mount
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            # The supervisor is uid 0 with three capabilities; the code it runs is uid 1000
            # with none, so the code can never reach the process that measures it.
            user="0:0",
            cap_drop=["ALL"],
            cap_add=SUPERVISOR_CAPS,
            # Nothing the container writes to its stdio goes to the host's disk.
            log_config=LogConfig(type=LogConfig.types.NONE),
            security_opt=["no-new-privileges"],
            ulimits=[
                Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                # No container-wide file-size limit: the supervisor sets it on the code (an
                # rlimit can always be lowered), and its own payload files must not hit it.
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
        # A reply holds at most the output cap of text (JSON-escaped: up to 6 bytes each).
        max_line = 6 * self.limits.output_bytes + (1 << 20)
        self._frames, self._writer = _Frames(reader, max_line), writer
        self.cgroup = CgroupReader(self._pid)
        ready = await self._receive(30.0)
        if not ready.get("ready") or ready.get("uid") != 0:
            raise SandboxError(f"supervisor did not start as expected: {ready}")

    def _break(self, reason: str) -> SandboxError:
        self.broken = True
        self.broken_reason = self.broken_reason or reason
        return SandboxError(reason)

    async def _receive(self, limit_s: float) -> dict[str, Any]:
        assert self._frames is not None
        async with asyncio.timeout(limit_s):
            line = await self._frames.line()
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise self._break(f"supervisor sent a line that is not an object: {line[:200]!r}")
        return reply

    async def _request(self, payload: dict[str, Any], limit_s: float) -> dict[str, Any]:
        """Send one request and take its reply; any other line marks the sandbox broken."""
        if self.broken or self._writer is None:
            raise SandboxError(f"sandbox is not usable ({self.broken_reason})")
        self._next_id += 1
        request_id = self._next_id
        try:
            self._writer.write(json.dumps({**payload, "id": request_id}).encode() + b"\n")
            await self._writer.drain()
            reply = await self._receive(limit_s)
        except SandboxError:
            raise
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise self._break(f"supervisor stopped answering: {type(exc).__name__}") from exc
        if reply.get("id") != request_id:
            raise self._break(
                f"supervisor reply out of order (expected id {request_id}, got "
                f"{str(reply.get('id'))[:40]!r})"
            )
        return reply

    async def _supervisor_oom_killed(self) -> bool:
        """Whether the container stopped because the kernel OOM-killed its PID 1 (Docker's
        record; the cgroup is gone with the container, so it cannot say)."""
        if self.container is None:
            return False
        try:
            await asyncio.to_thread(self.container.reload)
        except Exception:  # the container is already gone: no record to read
            return False
        state = self.container.attrs.get("State", {})
        return bool(state.get("OOMKilled")) and not state.get("Running", True)

    def _mount_used(self, mount: str) -> int | None:
        try:
            stats = os.statvfs(f"/proc/{self._pid}/root/{mount}")
        except OSError:
            return None
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize

    def _disk_used(self) -> dict[str, int]:
        return {m: used for m in WATCHED_MOUNTS if (used := self._mount_used(m)) is not None}

    def _file_at_least(self, mount: str, size: int, budget: int = 20_000) -> bool:
        """Whether a file of at least ``size`` bytes is in the mount (bounded walk, as root on
        the host, so the code's permissions cannot hide one)."""
        stack = [f"/proc/{self._pid}/root/{mount}"]
        seen = 0
        while stack and seen < budget:
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        seen += 1
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            if entry.stat(follow_symlinks=False).st_size >= size:
                                return True
            except OSError:
                continue
        return False

    def _open_files(self) -> int:
        """The most file descriptors any one process of the container holds now."""
        assert self.cgroup is not None
        most = 0
        for pid in self.cgroup.procs():
            if pid == self._pid:
                continue  # the supervisor
            try:
                most = max(most, len(os.listdir(f"/proc/{pid}/fd")))
            except OSError:
                continue
        return most

    async def execute(
        self, argv: list[str], payload: str | None = None, *, timeout_s: float | None = None
    ) -> ExecutionFacts:
        """Run ``argv`` (``payload`` on fd 3) and measure it; see ``ExecutionEnvironment``."""
        assert self.cgroup is not None
        timeout = timeout_s or self.limits.timeout_s
        # Reclaimable page cache left by earlier executions must not count as this one's memory.
        self.cgroup.drop_cache()
        disk_before = self._disk_used()
        peak_disk = dict(disk_before)
        self.cgroup.reset_peaks()
        before = self.cgroup.snapshot()
        peak_pids = peak_files = 0
        file_limit_hit = False
        fsize = self.limits.fsize_mb << 20
        stop = asyncio.Event()

        def sample(tick: int, final: bool = False) -> None:
            nonlocal peak_pids, peak_files, file_limit_hit
            assert self.cgroup is not None
            peak_pids = max(peak_pids, self.cgroup.pids_current())
            for mount, used in self._disk_used().items():
                peak_disk[mount] = max(peak_disk.get(mount, 0), used)
                # While running, only a mount holding the file-size limit is walked; at the
                # end every mount is (a sparse file can reach the limit using one page).
                if not file_limit_hit and (final or used >= fsize - 4096):
                    file_limit_hit = self._file_at_least(mount, fsize)
            if tick % 4 == 0:
                peak_files = max(peak_files, self._open_files())

        async def watch() -> None:
            """Peaks the cgroup does not keep: processes, each mount's usage, open files."""
            tick = 0
            while not stop.is_set():
                sample(tick)
                tick += 1
                try:
                    await asyncio.wait_for(stop.wait(), 0.005)
                except TimeoutError:
                    pass

        watcher = asyncio.create_task(watch())
        request: dict[str, Any] = {
            "op": "exec",
            "argv": argv,
            "timeout": timeout,
            "output_limit": self.limits.output_bytes,
            # Set on the code (the supervisor itself lifts them for its own work).
            "rlimits": {
                "RLIMIT_CORE": 0,
                "RLIMIT_FSIZE": self.limits.fsize_mb << 20,
                "RLIMIT_NOFILE": self.limits.nofile,
            },
        }
        if payload is not None:
            request["payload"] = payload
        error: str | None = None
        reply: dict[str, Any] = {}
        try:
            reply = await self._request(request, timeout + SUPERVISOR_GRACE_S)
            if "error" in reply:
                error = str(reply["error"])
                self._break(f"supervisor error: {error}")
        except SandboxError as exc:
            error = str(exc)
        finally:
            stop.set()
            await watcher
        after = self.cgroup.snapshot()
        oom = after.oom_kills > before.oom_kills
        if error is not None and (oom or await self._supervisor_oom_killed()):
            oom = True
            # The container ran out of memory and the kernel's OOM killer took the supervisor
            # (code can make itself look small by filling tmpfs): the fact is the OOM kill,
            # measured by the cgroup; the sandbox is replaced all the same.
            error = None
            reply = {"signal": signal.SIGKILL, "exit_code": -signal.SIGKILL}
        sample(0, final=True)
        disk_cap = self.limits.tmpfs_mb << 20
        # Full when any one mount reached its own cap (less one page of tmpfs slack).
        disk_full = any(used >= disk_cap - 4096 for used in peak_disk.values())
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
            bytes_written=sum(
                max(0, peak_disk.get(m, 0) - disk_before.get(m, 0)) for m in WATCHED_MOUNTS
            ),
            disk_used_bytes=max(peak_disk.values(), default=0),
            peak_pids=max(
                peak_pids, self.limits.pids if after.pids_limit_hits > before.pids_limit_hits else 0
            ),
            oom_killed=oom,
            pids_limited=after.pids_limit_hits > before.pids_limit_hits,
            disk_full=disk_full,
            file_size_limited=reply.get("signal") == signal.SIGXFSZ or file_limit_hit,
            open_files_limited=peak_files >= self.limits.nofile,
            peak_open_files=peak_files,
            strays_killed=int(reply.get("strays_killed", 0)),
            sandbox_error=error,
        )

    async def reset(self) -> None:
        """Back to a clean slate, checked by the supervisor; anything left means replace."""
        reply = await self._request({"op": "reset"}, 30.0)
        if not reply.get("reset") or not reply.get("clean"):
            raise self._break(f"reset left state behind: {reply.get('left') or reply}")

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
        self.lease_timeout_s = LEASE_TIMEOUT_S
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
        """A clean sandbox for one episode; reset (or replaced) when the episode is done.

        Raises ``SandboxInfrastructureError`` when none becomes free within the lease timeout
        (a pool whose replacements keep failing must not make an episode wait forever)."""
        try:
            async with asyncio.timeout(self.lease_timeout_s):
                sandbox = await self._idle.get()
        except TimeoutError:
            raise SandboxInfrastructureError(
                f"no sandbox became free within {self.lease_timeout_s:g} s "
                f"({len(self._all)} of {self.size} alive)"
            ) from None
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

    async def execute(
        self, argv: list[str], payload: str | None = None, *, timeout_s: float | None = None
    ) -> ExecutionFacts:
        async with self.sandbox() as sandbox:
            return await sandbox.execute(argv, payload, timeout_s=timeout_s)

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
