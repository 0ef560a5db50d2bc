"""Starting and stopping local model servers on demand, shared by agent, emulator and judge.

One server per model per process: the first user starts it (assembling and verifying the model
file if need be), later users share it, and the last release stops it. The server is our
module run under this interpreter, on a free port of 127.0.0.1; readiness is polled on
``/v1/models`` with a deadline, and a server that dies while starting is reported with the tail
of its log rather than as a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from sandbox.local_model.assemble import LocalModelError, prepare_model
from sandbox.local_model.catalog import LocalModelSpec, local_model

START_TIMEOUT_S = 180.0


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def require_llama_cpp() -> None:
    if not llama_cpp_available():
        raise LocalModelError(
            "local models need llama-cpp-python: set up with `scripts/bootstrap.sh --extra "
            "local` (builds llama.cpp, a few minutes the first time) or `pip install "
            "'propensity-sandbox[local]'`"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Server:
    spec: LocalModelSpec
    process: asyncio.subprocess.Process
    port: int
    log_path: Path
    users: int = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@dataclass
class LocalModelServers:
    log: Callable[[str], None] = print
    threads: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 2)))
    _servers: dict[str, _Server] = field(default_factory=dict)
    _lock: asyncio.Lock | None = None

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def running(self) -> list[str]:
        """Models whose server is up (for checks that nothing is left behind)."""
        return [n for n, s in self._servers.items() if s.process.returncode is None]

    async def acquire(self, name: str) -> str:
        """The api_base of a running server for ``name``, started if need be."""
        spec = local_model(name)
        async with self._guard():
            server = self._servers.get(spec.name)
            if server is None or server.process.returncode is not None:
                server = await self._start(spec)
                self._servers[spec.name] = server
            server.users += 1
            return server.api_base

    async def release(self, name: str) -> None:
        spec = local_model(name)
        async with self._guard():
            server = self._servers.get(spec.name)
            if server is None:
                return
            server.users -= 1
            if server.users <= 0:
                del self._servers[spec.name]
                await self._stop(server)

    async def close(self) -> None:
        async with self._guard():
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            await self._stop(server)

    async def _start(self, spec: LocalModelSpec) -> _Server:
        require_llama_cpp()
        path = await asyncio.to_thread(prepare_model, spec.name, log=self.log)
        port = _free_port()
        log_path = Path(tempfile.gettempdir()) / f"propensity-{spec.name}-{port}.log"
        self.log(f"starting the local model server for {spec.name} on 127.0.0.1:{port}")
        with log_path.open("wb") as log_file:
            # Isolated (-I: no current directory, script directory or PYTHON* variables on the
            # import path) and started in the model's own directory: a folder named `sandbox` or
            # `llama_cpp` where the user stands (a run directory among them) is never imported.
            # -u: unbuffered (PYTHONUNBUFFERED is ignored under -I).
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-u",
                "-m",
                "sandbox.local_model.server",
                "--model",
                str(path),
                "--alias",
                spec.name,
                "--port",
                str(port),
                "--n-ctx",
                str(spec.context_tokens),
                "--threads",
                str(self.threads),
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(path.parent),
            )
        server = _Server(spec, process, port, log_path)
        try:
            await self._wait_ready(server)
        except BaseException:
            await self._stop(server)
            raise
        return server

    async def _wait_ready(self, server: _Server) -> None:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        url = f"{server.api_base}/models"
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if server.process.returncode is not None:
                    tail = await asyncio.to_thread(_tail, server.log_path)
                    raise LocalModelError(
                        f"the local model server for {server.spec.name} exited "
                        f"({server.process.returncode}): {tail}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                if asyncio.get_running_loop().time() > deadline:
                    raise LocalModelError(
                        f"the local model server for {server.spec.name} did not answer within "
                        f"{START_TIMEOUT_S:.0f} s (log: {server.log_path})"
                    )
                await asyncio.sleep(0.5)

    async def _stop(self, server: _Server) -> None:
        if server.process.returncode is None:
            server.process.terminate()
            try:
                await asyncio.wait_for(server.process.wait(), timeout=10)
            except TimeoutError:
                server.process.kill()
                await server.process.wait()


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:].strip() or "(no output)"
    except OSError:
        return "(no log)"


# One registry per process: every agent, emulator and judge of a run shares its servers.
local_servers = LocalModelServers()
