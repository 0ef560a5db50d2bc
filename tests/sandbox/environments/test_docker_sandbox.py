"""The container sandbox against a real Docker engine: every limit must really hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.environments import (
    SandboxLimits,
    WarmPool,
    collect_garbage,
    python_argv,
    shell_argv,
)
from sandbox.environments.docker_env import SANDBOX_LABEL

pytestmark = pytest.mark.slow


@pytest.fixture
async def pool(sandbox_image: str) -> AsyncIterator[WarmPool]:
    async with WarmPool(
        sandbox_image, SandboxLimits(memory_mb=128, pids=32, tmpfs_mb=32), size=1
    ) as p:
        yield p


async def test_print_and_isolation_facts(pool: WarmPool) -> None:
    facts = await pool.execute(
        *python_argv(
            "import os\n"
            "status = open('/proc/self/status').read()\n"
            "caps = 'CapEff:\\t0000000000000000' in status\n"
            "print(os.getuid(), caps, 'NoNewPrivs:\\t1' in status)\n"
            "try:\n open('/etc/x', 'w')\nexcept OSError as e: print('ro', e.errno)\n"
        )
    )
    assert facts.exit_code == 0, facts
    assert facts.stdout.split() == ["1000", "True", "True", "ro", "30"]
    assert facts.cpu_s > 0 and facts.peak_memory_bytes > 0 and facts.peak_pids >= 1


async def test_fork_bomb_stops_at_the_pids_cap(pool: WarmPool) -> None:
    async with pool.sandbox() as sandbox:
        facts = await sandbox.execute(*python_argv("import os\nwhile True:\n    os.fork()"))
        assert facts.pids_limited and facts.peak_pids >= 30, facts
        assert facts.strays_killed > 0
        after = await sandbox.execute(*shell_argv("ls /proc | grep -c '^[0-9]'"))
        assert after.exit_code == 0 and int(after.stdout) <= 4  # supervisor, sh, ls, grep


async def test_memory_balloon_is_oom_killed_and_reported(pool: WarmPool) -> None:
    facts = await pool.execute(
        *python_argv("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))")
    )
    assert facts.oom_killed and facts.signal == 9, facts
    assert facts.peak_memory_bytes >= 100 << 20
    assert (await pool.execute(*python_argv("print('alive')"))).stdout.strip() == "alive"


async def test_disk_filler_hits_the_tmpfs_cap(sandbox_image: str) -> None:
    limits = SandboxLimits(tmpfs_mb=16, fsize_mb=64, memory_mb=256)
    async with WarmPool(sandbox_image, limits, size=1) as pool:
        facts = await pool.execute(
            *python_argv(
                "with open('/work/fill', 'wb') as f:\n"
                "    while True:\n        f.write(b'x' * (1 << 20))"
            )
        )
    assert facts.disk_full and "No space left on device" in facts.stderr, facts
    assert 15 << 20 <= facts.bytes_written <= 16 << 20


async def test_infinite_printer_is_cut_at_the_output_cap(pool: WarmPool) -> None:
    facts = await pool.execute(*python_argv("while True:\n    print('spam' * 100)"))
    assert facts.output_capped and not facts.timed_out, facts
    assert len(facts.stdout) + len(facts.stderr) <= pool.limits.output_bytes


async def test_no_network(pool: WarmPool) -> None:
    facts = await pool.execute(
        *python_argv(
            "import socket\n"
            "try:\n    socket.create_connection(('127.0.0.1', 22), timeout=2)\n"
            "except OSError as e:\n    print('refused', e.errno)\n"
            "print(sorted(n for n in socket.if_nameindex()))"
        )
    )
    assert facts.stdout.startswith("refused"), facts
    assert "eth0" not in facts.stdout


async def test_host_environment_and_planted_key_are_invisible(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-fake-key-0123456789abcdef")
    facts = await pool.execute(*shell_argv("env; cat /proc/1/environ | tr '\\0' '\\n'"))
    assert "sk-planted" not in facts.stdout
    names = {line.split("=", 1)[0] for line in facts.stdout.splitlines() if "=" in line}
    assert names <= {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
                     "MPLBACKEND", "HOSTNAME", "PWD", "SHLVL", "_"}  # fmt: skip


async def test_daemons_and_timeouts_do_not_outlive_their_execution(pool: WarmPool) -> None:
    async with pool.sandbox() as sandbox:
        daemon = await sandbox.execute(
            *python_argv(
                "import os\n"
                "if os.fork() == 0:\n    os.setsid()\n"
                "    if os.fork() == 0:\n        import time; time.sleep(1000)\n"
                "print('parent done')"
            )
        )
        assert daemon.exit_code == 0 and daemon.strays_killed >= 1, daemon
        slow = await sandbox.execute(*shell_argv("sleep 100 & sleep 100"), timeout_s=1.0)
        assert slow.timed_out and 0.9 <= slow.wall_s < 3, slow
        left = await sandbox.execute(*shell_argv("ls /proc | grep -c '^[0-9]'"))
        assert int(left.stdout) <= 4


async def test_cpu_is_measured_and_capped(sandbox_image: str) -> None:
    async with WarmPool(sandbox_image, SandboxLimits(cpus=0.5), size=1) as pool:
        facts = await pool.execute(
            *python_argv(
                "import multiprocessing as m, time\n"
                "def spin():\n    end = time.time() + 1.5\n    while time.time() < end: pass\n"
                "ps = [m.Process(target=spin) for _ in range(2)]\n"
                "[p.start() for p in ps]; [p.join() for p in ps]"
            )
        )
    assert facts.exit_code == 0, facts
    # Two spinning processes for 1.5 s would use 3 s of CPU; the 0.5-CPU quota allows ~0.75 s.
    assert 0.3 < facts.cpu_s < 1.2, facts


async def test_containers_are_removed_and_gc_finds_leftovers(
    sandbox_image: str, docker_engine: Any
) -> None:
    client = docker_engine
    async with WarmPool(sandbox_image, size=2) as pool:
        run = pool.labels["propensity.run"]
        listed = client.containers.list(all=True, filters={"label": f"propensity.run={run}"})
        assert len(listed) == 2
    assert not client.containers.list(all=True, filters={"label": f"propensity.run={run}"})
    leftover = client.containers.create(sandbox_image, labels={SANDBOX_LABEL: "test"})
    assert leftover.name in collect_garbage(client)
    assert not client.containers.list(all=True, filters={"label": SANDBOX_LABEL})
