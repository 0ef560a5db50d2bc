"""In-container execution supervisor (PID 1 of every code-interpreter container).

Why it exists: `docker exec` costs ~70 ms per execution, so the warm pool keeps one long-lived
process per container and talks to it over the attached stdin/stdout. It runs each request in a
fresh session with rlimits, enforces the timeout and the output cap by killing the whole process
group, then kills every other process left in the container (daemons that escaped the group),
so nothing outlives its execution. The host reads resource facts from the cgroup; this process
only reports what it alone can see (exit status, output, timings).

Protocol: one JSON object per line in, one per line out, on stdout only.
  {"op": "exec", "argv": [...], "timeout": 5.0, "output_limit": 65536}
  {"op": "reset"}     wipe /work and /tmp, kill strays
  {"op": "ping"}
Standard library only; runs as `python3 -S`.
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import sys
import time
from typing import Any

WORK_DIRS = ("/work", "/tmp")
CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/work",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
}


def reply(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_strays() -> int:
    """Kill every process in the container but this one; returns how many there were."""
    me = os.getpid()
    killed = 0
    for _ in range(20):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
        if not others:
            break
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
        reap()
    reap()
    return killed


def wipe() -> None:
    for root in WORK_DIRS:
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(root, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


def child_setup(limits: dict[str, int]) -> None:
    os.setsid()
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # the code, never the supervisor, is the OOM killer's victim
    except OSError:
        pass
    for name, value in limits.items():
        kind = getattr(resource, name, None)
        if kind is not None:
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):
                pass
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def run(request: dict[str, Any]) -> dict[str, object]:
    argv = request["argv"]
    timeout = float(request.get("timeout", 5.0))
    limit = int(request.get("output_limit", 65536))
    limits = request.get("rlimits", {})
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.close(out_w)
            os.close(err_w)
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.chdir("/work")
            child_setup({k: int(v) for k, v in limits.items()})
            os.execve(argv[0], argv, CHILD_ENV)
        except BaseException as exc:
            os.write(2, f"sandbox: cannot start {argv[0]}: {exc}\n".encode())
        os._exit(127)
    os.close(out_w)
    os.close(err_w)
    buffers = {out_r: bytearray(), err_r: bytearray()}
    open_fds = [out_r, err_r]
    timed_out = capped = False
    status: int | None = None
    deadline = started + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if open_fds:
            ready, _, _ = select.select(open_fds, [], [], min(remaining, 0.05))
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                    continue
                buffers[fd].extend(chunk)
                if len(buffers[out_r]) + len(buffers[err_r]) > limit:
                    capped = True
            if capped:
                break
        done, status = os.waitpid(pid, os.WNOHANG)
        if done and not open_fds:
            break
        if done:
            status_saved = status
            # The child is gone but a grandchild may still hold the pipes: drain briefly.
            end = time.monotonic() + 0.05
            while open_fds and time.monotonic() < end:
                ready, _, _ = select.select(open_fds, [], [], 0.01)
                for fd in ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        open_fds.remove(fd)
                    else:
                        buffers[fd].extend(chunk)
            status = status_saved
            break
        if not open_fds:
            time.sleep(0.002)
        status = None
    wall = time.monotonic() - started
    if status is None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
    strays = kill_strays()
    for fd in (out_r, err_r):
        os.close(fd)
    exit_code = os.waitstatus_to_exitcode(status)
    half = limit // 2
    stdout = bytes(buffers[out_r])
    stderr = bytes(buffers[err_r])
    return {
        "exit_code": exit_code,
        "signal": -exit_code if exit_code < 0 else None,
        "stdout": stdout[: max(half, limit - len(stderr))].decode("utf-8", "replace"),
        "stderr": stderr[: max(half, limit - len(stdout))].decode("utf-8", "replace"),
        "output_bytes": len(stdout) + len(stderr),
        "output_capped": capped,
        "timed_out": timed_out,
        "wall_s": wall,
        "strays_killed": strays,
    }


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    reply({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "exec":
                reply(run(request))
            elif op == "reset":
                strays = kill_strays()
                wipe()
                reply({"reset": True, "strays_killed": strays})
            elif op == "ping":
                reply({"pong": True})
            else:
                reply({"error": f"unknown op {op!r}"})
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
